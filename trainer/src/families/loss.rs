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
/// logistic mixture head. `x` is the image on the network scale `[B, 1, H, W]` (exact values
/// `k/127.5 − 1`), `params` the head `[B, 3K, H, W]`. Returns `[B]`.
///
/// Same maths as `edgegen_runtime::likelihood::mixture_image_log_prob`.
pub fn mixture_log_prob(x: Tensor<4>, params: Tensor<4>, k: usize) -> Tensor<1> {
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

/// Converts 8-bit images (row-major, `n · H · W` values) into a network-scale tensor
/// `[n, 1, H, W]`.
pub fn images_to_tensor(pixels: &[u8], n: usize, device: &Device) -> Tensor<4> {
    let scaled: Vec<f32> = pixels.iter().map(|&p| edgegen_runtime::image::scale_pixel(p)).collect();
    Tensor::from_data(TensorData::new(scaled, [n, 1, 28, 28]), device)
}

/// Reads a tensor back as plain f32 values (row-major).
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("float tensor")
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgegen_runtime::{likelihood, rng::Rng};

    #[test]
    fn tensor_loss_matches_runtime_definition() {
        let device = Device::flex();
        let (b, k) = (3usize, 3usize);
        let mut rng = Rng::new(5);
        let pixels: Vec<u8> = (0..b * 784)
            .map(|i| match i % 7 {
                0 => 0,
                1 => 255,
                _ => (rng.next_u32() % 256) as u8,
            })
            .collect();
        let params: Vec<f32> = (0..b * 3 * k * 784)
            .map(|i| {
                let c = (i / 784) % (3 * k);
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
        let x = images_to_tensor(&pixels, b, &device);
        let p = Tensor::<4>::from_data(TensorData::new(params.clone(), [b, 3 * k, 28, 28]), &device);
        let got = to_vec(mixture_log_prob(x, p, k));
        for i in 0..b {
            let want = likelihood::mixture_image_log_prob(
                &pixels[i * 784..(i + 1) * 784],
                &params[i * 3 * k * 784..(i + 1) * 3 * k * 784],
                k,
                784,
            )
            .unwrap();
            assert!((got[i] as f64 - want).abs() < 1e-3 * want.abs().max(1.0), "image {i}: {} vs {want}", got[i]);
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
