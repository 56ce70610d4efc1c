//! Training losses written in burn tensor ops, so autodiff sees them. Each mirrors a function
//! of `edgegen_runtime::likelihood` (the definition used for evaluation), and a test checks
//! that the two agree.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};
use edgegen_runtime::likelihood::LOG_SCALE_MIN;

/// Stable `ln σ(t)`: `min(t, 0) − ln(1 + e^{−|t|})`.
pub fn log_sigmoid<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    let neg_abs = t.clone().abs().neg();
    relu(t.clone().neg()).neg() - neg_abs.exp().log1p()
}

/// `ln Σ exp` along `dim`, keeping the dimension.
pub fn log_sum_exp<const D: usize>(t: Tensor<D>, dim: usize) -> Tensor<D> {
    let max = t.clone().max_dim(dim).detach();
    (t - max.clone()).exp().sum_dim(dim).log() + max
}

/// Per-image log-likelihood (nats) of 8-bit images under a `K`-component discretized
/// logistic mixture head. `x` is the image on the network scale `[B, C, H, W]` (exact values
/// `k/127.5 − 1`), `params` the head `[B, 3K·C, H, W]` (per channel `c`, its `3K` planes at
/// `3K·c`). Returns `[B]`, summed over every sub-pixel.
///
/// Same maths as `edgegen_runtime::likelihood::mixture_image_log_prob`.
pub fn mixture_log_prob(x: Tensor<4>, params: Tensor<4>, k: usize) -> Tensor<1> {
    let [batch, c, _, _] = x.dims();
    if c > 1 {
        // Each channel is its own 1-channel problem: [B·C, 1, H, W] against [B·C, 3K, H, W].
        let [_, _, h, w] = params.dims();
        let per = mixture_log_prob(x.reshape([batch * c, 1, h, w]), params.reshape([batch * c, 3 * k, h, w]), k);
        return per.reshape([batch, c]).sum_dim(1).reshape([batch]);
    }
    let [b, _, h, w] = params.dims();
    let logits = params.clone().narrow(1, 0, k);
    let means = params.clone().narrow(1, k, k);
    let log_scales = params.narrow(1, 2 * k, k).clamp_min(LOG_SCALE_MIN);
    let inv_s = log_scales.neg().exp();
    let centered = x.clone() - means;
    let half_bin = 1.0 / 255.0;
    let plus_in = inv_s.clone() * (centered.clone() + half_bin);
    let min_in = inv_s.clone() * (centered - half_bin);
    let log_cdf_plus = log_sigmoid(plus_in);
    let log_one_minus_cdf_min = log_sigmoid(min_in.neg());
    // ln(1 − e^{−width}) with width = 2/255 · inv_s > 0.
    let width = inv_s * (2.0 * half_bin);
    let log_width_term = width.neg().exp().neg().add_scalar(1.0).clamp_min(1e-30).log();
    let interior = log_cdf_plus.clone() + log_one_minus_cdf_min.clone() + log_width_term;
    let is_low = x.clone().lower_elem(-0.999).expand([b, k, h, w]);
    let is_high = x.greater_elem(0.999).expand([b, k, h, w]);
    let per_component = interior.mask_where(is_low, log_cdf_plus).mask_where(is_high, log_one_minus_cdf_min);
    let weighted = per_component + log_softmax(logits, 1);
    log_sum_exp(weighted, 1).reshape([b, h * w]).sum_dim(1).reshape([b])
}

/// KL(q ‖ N(0, I)) per row for a diagonal Gaussian: `[B, L]` → `[B]`.
pub fn kl_to_standard_normal(mu: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    let [b, _] = mu.dims();
    (mu.powi_scalar(2) + logvar.clone().exp() - logvar).sub_scalar(1.0).sum_dim(1).mul_scalar(0.5).reshape([b])
}

/// Converts 8-bit Fashion-MNIST frames (`n · 28 · 28` values) into a network-scale tensor
/// `[n, 1, 28, 28]`.
pub fn images_to_tensor(pixels: &[u8], n: usize, device: &Device) -> Tensor<4> {
    frames_to_tensor(pixels, n, crate::data::FASHION_MNIST, device)
}

/// Converts `n` planar 8-bit frames of geometry `g` into a network-scale tensor
/// `[n, C, H, W]`.
pub fn frames_to_tensor(pixels: &[u8], n: usize, g: edgegen_runtime::image::Geometry, device: &Device) -> Tensor<4> {
    let scaled: Vec<f32> = pixels.iter().map(|&p| edgegen_runtime::image::scale_pixel(p)).collect();
    Tensor::from_data(TensorData::new(scaled, [n, g.channels as usize, g.height as usize, g.width as usize]), device)
}

/// Reads a tensor back as plain f32 values (row-major).
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("float tensor")
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgegen_runtime::{likelihood, rng::Rng};

    /// Gray 28×28 and colour non-square frames: the tensor loss equals the runtime's.
    #[test]
    fn tensor_loss_matches_runtime_definition() {
        let device = Device::flex();
        for g in [crate::data::FASHION_MNIST, edgegen_runtime::image::Geometry::new(3, 5, 7).unwrap()] {
            let (b, k, n, plane) = (3usize, 3usize, g.values(), g.plane());
            let mut rng = Rng::new(5);
            let pixels: Vec<u8> = (0..b * n)
                .map(|i| match i % 7 {
                    0 => 0,
                    1 => 255,
                    _ => (rng.next_u32() % 256) as u8,
                })
                .collect();
            let params: Vec<f32> = (0..b * 3 * k * n)
                .map(|i| {
                    let c = (i / plane) % (3 * k);
                    let r = rng.normal();
                    if c < k {
                        r
                    } else if c < 2 * k {
                        r * 0.6
                    } else {
                        -2.5 + r * 1.5
                    }
                })
                .collect();
            let x = frames_to_tensor(&pixels, b, g, &device);
            let shape = [b, 3 * k * g.channels as usize, g.height as usize, g.width as usize];
            let p = Tensor::<4>::from_data(TensorData::new(params.clone(), shape), &device);
            let got = to_vec(mixture_log_prob(x, p, k));
            for i in 0..b {
                let want =
                    likelihood::mixture_image_log_prob(&pixels[i * n..(i + 1) * n], &params[i * 3 * k * n..(i + 1) * 3 * k * n], k, plane)
                        .unwrap();
                assert!((got[i] as f64 - want).abs() < 1e-3 * want.abs().max(1.0), "{g} image {i}: {} vs {want}", got[i]);
            }
        }
    }

    #[test]
    fn tensor_kl_matches_runtime_definition() {
        let device = Device::flex();
        let mu = [0.5f32, -1.0, 0.0, 2.0];
        let lv = [0.0f32, -1.0, 1.0, 0.3];
        let got = to_vec(kl_to_standard_normal(
            Tensor::from_data(TensorData::new(mu.to_vec(), [2, 2]), &device),
            Tensor::from_data(TensorData::new(lv.to_vec(), [2, 2]), &device),
        ));
        for i in 0..2 {
            let want = likelihood::kl_to_standard_normal(&mu[2 * i..2 * i + 2], &lv[2 * i..2 * i + 2]).unwrap();
            assert!((got[i] as f64 - want).abs() < 1e-5);
        }
    }
}
