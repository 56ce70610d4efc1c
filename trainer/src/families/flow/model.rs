//! A normalizing flow (RealNVP, Dinh et al. 2017) in burn: affine coupling layers with
//! checkerboard and channel masks around one squeeze, over logit-transformed, uniformly
//! dequantized pixels. log p(x) is exact for the continuous density (a bound on the 8-bit
//! image's probability, one uniform dequantization sample) and sampling is one pass of the
//! inverse.
//!
//! Every layer is a plain stride-1 3×3 convolution, ReLU, tanh, exp or an elementwise
//! product, so the graph exports to standard ONNX as it is.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid, tanh};

/// The logit transform's margin: pixels map into (α, 1 − α) before the logit (RealNVP's 0.05).
pub const ALPHA: f64 = 0.05;

/// Shape of the flow.
#[derive(Config, Debug)]
pub struct FlowConfig {
    /// Image channels: 1 (gray) or 3 (RGB).
    #[config(default = 1)]
    pub channels: usize,
    /// Frame height (even: the squeeze halves it).
    #[config(default = 28)]
    pub height: usize,
    /// Frame width (even).
    #[config(default = 28)]
    pub width: usize,
    /// Hidden channels of each coupling's network.
    #[config(default = 32)]
    pub hidden: usize,
    /// Residual 3×3 blocks in each coupling's network (after its first convolution).
    #[config(default = 1)]
    pub blocks: usize,
    /// Checkerboard couplings at full resolution, before the squeeze.
    #[config(default = 3)]
    pub pre: usize,
    /// Channel couplings after the squeeze (halves of the 4C channels in turn).
    #[config(default = 3)]
    pub channel: usize,
    /// Checkerboard couplings after the channel ones, at half resolution.
    #[config(default = 3)]
    pub post: usize,
}

/// Which values a coupling keeps (and conditions on): the others are scaled and shifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// Pixels with (row + column) even are kept.
    CheckerEven,
    /// Pixels with (row + column) odd are kept.
    CheckerOdd,
    /// The first half of the channels is kept.
    ChannelsFirst,
    /// The second half of the channels is kept.
    ChannelsSecond,
}

impl Mask {
    fn code(self) -> usize {
        self as usize
    }

    /// The mask a coupling's stored code names.
    pub fn from_code(c: usize) -> Mask {
        [Mask::CheckerEven, Mask::CheckerOdd, Mask::ChannelsFirst, Mask::ChannelsSecond][c.min(3)]
    }

    /// The mask as 0/1 values `[C, H, W]` (1: kept).
    pub fn values(self, c: usize, h: usize, w: usize) -> Vec<f32> {
        let mut v = vec![0f32; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let keep = match self {
                        Mask::CheckerEven => (y + x) % 2 == 0,
                        Mask::CheckerOdd => (y + x) % 2 == 1,
                        Mask::ChannelsFirst => ch < c / 2,
                        Mask::ChannelsSecond => ch >= c / 2,
                    };
                    v[(ch * h + y) * w + x] = f32::from(u8::from(keep));
                }
            }
        }
        v
    }
}

/// One affine coupling: `y = x · exp(s) + t` on the values the mask does not keep, with
/// `(s, t)` computed from the kept ones; `s = scale · tanh(ŝ)` per channel.
#[derive(Module, Debug)]
pub struct Coupling {
    /// 3×3, C → hidden.
    pub input: Conv2d,
    /// Residual 3×3 hidden → hidden convolutions.
    pub blocks: Vec<Conv2d>,
    /// 3×3, hidden → 2C (ŝ then t), zero at initialization: every coupling starts as the
    /// identity.
    pub output: Conv2d,
    /// Per-channel bound of the log-scale (`s = scale · tanh(ŝ)`).
    pub scale: Param<Tensor<1>>,
    /// The mask's code (see [`Mask`]).
    #[module(skip)]
    pub mask: usize,
}

/// The flow: couplings before the squeeze, then after it.
#[derive(Module, Debug)]
pub struct Flow {
    /// Checkerboard couplings at full resolution.
    pub pre: Vec<Coupling>,
    /// Channel, then checkerboard couplings after the squeeze.
    pub post: Vec<Coupling>,
    /// `[C, H, W]` of the image.
    #[module(skip)]
    pub geometry: [usize; 3],
}

fn conv3(c_in: usize, c_out: usize, zero: bool, device: &Device) -> Conv2d {
    let mut cfg = Conv2dConfig::new([c_in, c_out], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
    if zero {
        cfg = cfg.with_initializer(Initializer::Zeros);
    }
    cfg.init(device)
}

impl FlowConfig {
    /// Whether a flow can have this shape.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.channels == 1 || self.channels == 3, "the flow takes 1 (gray) or 3 (RGB) channels, not {}", self.channels);
        anyhow::ensure!(
            self.height >= 2 && self.width >= 2 && self.height.is_multiple_of(2) && self.width.is_multiple_of(2),
            "the flow squeezes 2x2 blocks into channels, so both sides must be even: {}x{} is not (resize the frames, e.g. --size 28x28 --resize)",
            self.height,
            self.width
        );
        anyhow::ensure!((1..=256).contains(&self.hidden), "--hidden must be in 1..=256");
        anyhow::ensure!(self.blocks <= 8, "--blocks must be at most 8");
        anyhow::ensure!(self.pre + self.channel + self.post > 0, "the flow needs at least one coupling");
        anyhow::ensure!(self.pre + self.channel + self.post <= 32, "at most 32 couplings");
        Ok(())
    }

    fn coupling(&self, c: usize, mask: Mask, device: &Device) -> Coupling {
        Coupling {
            input: conv3(c, self.hidden, false, device),
            blocks: (0..self.blocks).map(|_| conv3(self.hidden, self.hidden, false, device)).collect(),
            output: conv3(self.hidden, 2 * c, true, device),
            scale: Param::from_tensor(Tensor::ones([c], device)),
            mask: mask.code(),
        }
    }

    /// A freshly initialized flow (every coupling the identity).
    pub fn init(&self, device: &Device) -> Flow {
        let c = self.channels;
        let checker = |i: usize| if i.is_multiple_of(2) { Mask::CheckerEven } else { Mask::CheckerOdd };
        let pre = (0..self.pre).map(|i| self.coupling(c, checker(i), device)).collect();
        let mut post: Vec<Coupling> = (0..self.channel)
            .map(|i| self.coupling(4 * c, if i.is_multiple_of(2) { Mask::ChannelsFirst } else { Mask::ChannelsSecond }, device))
            .collect();
        post.extend((0..self.post).map(|i| self.coupling(4 * c, checker(i), device)));
        Flow { pre, post, geometry: [c, self.height, self.width] }
    }
}

impl Coupling {
    /// The mask `[1, C, H, W]` for maps of `h`×`w`.
    fn mask_tensor(&self, c: usize, h: usize, w: usize, device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(Mask::from_code(self.mask).values(c, h, w), [1, c, h, w]), device)
    }

    /// `(s, t)` for input `x`, both zero where the mask keeps values.
    fn scale_shift(&self, x: &Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [_, c, h, w] = x.dims();
        let m = self.mask_tensor(c, h, w, &x.device());
        let mut a = relu(self.input.forward(x.clone() * m.clone()));
        for block in &self.blocks {
            a = a.clone() + relu(block.forward(a));
        }
        let out = self.output.forward(a);
        let free = m.neg().add_scalar(1.0);
        let s = tanh(out.clone().narrow(1, 0, c)) * self.scale.val().reshape([1, c, 1, 1]) * free.clone();
        let t = out.narrow(1, c, c) * free;
        (s, t)
    }

    /// `x → (y, log|det ∂y/∂x|)` per image.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<1>) {
        let (s, t) = self.scale_shift(&x);
        let [b, ..] = s.dims();
        let logdet = s.clone().reshape([b as i32, -1]).sum_dim(1).reshape([b]);
        (x * s.exp() + t, logdet)
    }

    /// `y → x`, the inverse (the kept values are the same on both sides, so `(s, t)` are).
    pub fn inverse(&self, y: Tensor<4>) -> Tensor<4> {
        let (s, t) = self.scale_shift(&y);
        (y - t) * s.neg().exp()
    }
}

/// `[B, C, H, W]` → `[B, 4C, H/2, W/2]`: each 2×2 block becomes four channels.
pub fn squeeze(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2]).permute([0, 1, 3, 5, 2, 4]).reshape([b, c * 4, h / 2, w / 2])
}

/// The inverse of [`squeeze`].
pub fn unsqueeze(x: Tensor<4>) -> Tensor<4> {
    let [b, c4, h, w] = x.dims();
    let c = c4 / 4;
    x.reshape([b, c, 2, 2, h, w]).permute([0, 1, 4, 2, 5, 3]).reshape([b, c, h * 2, w * 2])
}

impl Flow {
    /// The image's `[C, H, W]`.
    pub fn geometry(&self) -> [usize; 3] {
        self.geometry
    }

    /// Values per image.
    pub fn values(&self) -> usize {
        self.geometry.iter().product()
    }

    /// Logit-space input `y` → latent `z` (`[B, 4C, H/2, W/2]`, standard normal under the
    /// model) and the couplings' log-determinant per image.
    pub fn forward(&self, y: Tensor<4>) -> (Tensor<4>, Tensor<1>) {
        let [b, ..] = y.dims();
        let mut logdet = Tensor::<1>::zeros([b], &y.device());
        let mut h = y;
        for c in &self.pre {
            let (n, l) = c.forward(h);
            (h, logdet) = (n, logdet + l);
        }
        h = squeeze(h);
        for c in &self.post {
            let (n, l) = c.forward(h);
            (h, logdet) = (n, logdet + l);
        }
        (h, logdet)
    }

    /// Latent `z` → logit-space `y` (the inverse of [`Flow::forward`]).
    pub fn inverse(&self, z: Tensor<4>) -> Tensor<4> {
        let mut h = z;
        for c in self.post.iter().rev() {
            h = c.inverse(h);
        }
        h = unsqueeze(h);
        for c in self.pre.iter().rev() {
            h = c.inverse(h);
        }
        h
    }

    /// log p(x) in nats per image of 8-bit images given on the network scale
    /// (`x = p/127.5 − 1`), dequantized with `u ∈ [0, 1)` per value: the continuous
    /// density of `v = (p + u)/256` times 256⁻ᴰ, a lower bound on the probability of the
    /// 8-bit image (exact for its dequantized density).
    pub fn log_prob(&self, x: Tensor<4>, u: Tensor<4>) -> Tensor<1> {
        let [b, ..] = x.dims();
        let d = self.values() as f64;
        let (y, pre) = self.dequantize(x, u);
        let (z, logdet) = self.forward(y);
        let normal =
            z.powi_scalar(2).reshape([b as i32, -1]).sum_dim(1).reshape([b]).mul_scalar(-0.5) - d * 0.5 * (2.0 * std::f64::consts::PI).ln();
        normal + logdet + pre
    }

    /// The flow's input for images on the network scale dequantized with `u`: `y =
    /// logit(α + (1 − 2α) v)` of `v = (p + u)/256`, and that map's log-determinant per image
    /// (`d y / d v = (1 − 2α) / (w (1 − w))`; `v = (p + u)/256` costs ln 256 per value).
    pub fn dequantize(&self, x: Tensor<4>, u: Tensor<4>) -> (Tensor<4>, Tensor<1>) {
        let [b, ..] = x.dims();
        let d = self.values() as f64;
        let v = (x.add_scalar(1.0).mul_scalar(127.5) + u).div_scalar(256.0);
        let w = v.mul_scalar(1.0 - 2.0 * ALPHA).add_scalar(ALPHA);
        let (lw, l1w) = (w.clone().log(), w.neg().add_scalar(1.0).log());
        let y = lw.clone() - l1w.clone();
        let pre = (lw + l1w).neg().reshape([b as i32, -1]).sum_dim(1).reshape([b]) + (d * ((1.0 - 2.0 * ALPHA).ln() - 256f64.ln()));
        (y, pre)
    }

    /// Images (8-bit, planar) for latents `z` `[B, 4C, H/2, W/2]`: the inverse flow, the
    /// inverse logit, and the value's bin (`⌊256 v⌋`, clamped).
    pub fn sample(&self, z: Tensor<4>) -> Vec<u8> {
        let y = self.inverse(z);
        let v = sigmoid(y).sub_scalar(ALPHA).div_scalar(1.0 - 2.0 * ALPHA);
        crate::families::loss::to_vec(v).into_iter().map(|v| (v * 256.0).floor().clamp(0.0, 255.0) as u8).collect()
    }

    /// The latent's shape for `b` images.
    pub fn latent_dims(&self, b: usize) -> [usize; 4] {
        let [c, h, w] = self.geometry;
        [b, 4 * c, h / 2, w / 2]
    }

    /// Multiply-accumulates per image (the couplings' convolutions).
    pub fn macs(&self) -> usize {
        let [_, h, w] = self.geometry;
        let conv = |c: &Conv2d, hw: usize| {
            let [o, i, kh, kw] = c.weight.dims();
            o * i * kh * kw * hw
        };
        let coupling =
            |c: &Coupling, hw: usize| conv(&c.input, hw) + c.blocks.iter().map(|b| conv(b, hw)).sum::<usize>() + conv(&c.output, hw);
        self.pre.iter().map(|c| coupling(c, h * w)).sum::<usize>() + self.post.iter().map(|c| coupling(c, h * w / 4)).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::loss::to_vec;

    fn perturbed(cfg: &FlowConfig, seed: u64) -> Flow {
        // Zero output convolutions make every coupling the identity: move them so the test
        // sees real scales and shifts.
        let device = Device::flex();
        device.seed(seed);
        let mut flow = cfg.init(&device);
        for c in flow.pre.iter_mut().chain(flow.post.iter_mut()) {
            let dims = c.output.weight.dims();
            c.output.weight = Param::from_tensor(Tensor::random(dims, burn::tensor::Distribution::Normal(0.0, 0.05), &device));
        }
        flow
    }

    #[test]
    fn squeeze_is_inverted_and_moves_blocks_to_channels() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new((0..2 * 3 * 4 * 6).map(|v| v as f32).collect::<Vec<_>>(), [2, 3, 4, 6]), &device);
        let s = squeeze(x.clone());
        assert_eq!(s.dims(), [2, 12, 2, 3]);
        // Channel 4c + 2dy + dx holds pixel (2i + dy, 2j + dx) of channel c.
        let v = to_vec(s.clone());
        assert_eq!(v[(5 * 2 + 1) * 3 + 1], to_vec(x.clone())[(4 + 2) * 6 + 3]);
        assert_eq!(to_vec(unsqueeze(s)), to_vec(x));
    }

    /// The inverse undoes the forward pass, and the log-determinant is the log of the
    /// Jacobian's determinant (by finite differences on a 1×4×4 flow: 16 values).
    #[test]
    fn couplings_invert_and_their_log_determinant_is_exact() {
        let cfg = FlowConfig::new().with_height(4).with_width(4).with_hidden(6).with_pre(2).with_channel(2).with_post(2);
        let flow = perturbed(&cfg, 3);
        let device = Device::flex();
        let y = Tensor::<4>::random([2, 1, 4, 4], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let (z, logdet) = flow.forward(y.clone());
        let back = flow.inverse(z);
        let err = to_vec(back).iter().zip(to_vec(y.clone())).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-4, "inverse error {err}");
        // Jacobian of image 0 by central differences, in f64 determinant.
        let base = to_vec(y.clone().narrow(0, 0, 1));
        let n = base.len();
        let eps = 1e-2f32;
        let mut jac = vec![0f64; n * n];
        for j in 0..n {
            let mut plus = base.clone();
            let mut minus = base.clone();
            plus[j] += eps;
            minus[j] -= eps;
            let f = |v: Vec<f32>| to_vec(flow.forward(Tensor::from_data(TensorData::new(v, [1, 1, 4, 4]), &device)).0);
            let (zp, zm) = (f(plus), f(minus));
            for i in 0..n {
                jac[i * n + j] = (zp[i] - zm[i]) as f64 / (2.0 * eps as f64);
            }
        }
        let det = determinant(&mut jac, n);
        let want = to_vec(logdet)[0] as f64;
        assert!((det.abs().ln() - want).abs() < 2e-2, "log|det J| {} vs the flow's {want}", det.abs().ln());
        assert!(want.abs() > 0.01, "the test flow is not the identity: {want}");
    }

    /// Gaussian elimination with partial pivoting.
    fn determinant(a: &mut [f64], n: usize) -> f64 {
        let mut det = 1.0;
        for col in 0..n {
            let p = (col..n).max_by(|&x, &y| a[x * n + col].abs().total_cmp(&a[y * n + col].abs())).unwrap();
            if p != col {
                for k in 0..n {
                    a.swap(p * n + k, col * n + k);
                }
                det = -det;
            }
            let d = a[col * n + col];
            det *= d;
            for r in col + 1..n {
                let f = a[r * n + col] / d;
                for k in col..n {
                    a[r * n + k] -= f * a[col * n + k];
                }
            }
        }
        det
    }

    /// The untrained flow (identity couplings) is the logit transform of a standard normal:
    /// its log p matches that density computed by hand; and samples decode to pixels.
    #[test]
    fn identity_flow_log_prob_is_the_transformed_normal() {
        let cfg = FlowConfig::new().with_height(4).with_width(4).with_hidden(4);
        let device = Device::flex();
        let flow = cfg.init(&device);
        let pixels: Vec<f32> = (0..16).map(|i| (i * 16) as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels.iter().map(|p| p / 127.5 - 1.0).collect::<Vec<_>>(), [1, 1, 4, 4]), &device);
        let u = Tensor::<4>::full([1, 1, 4, 4], 0.5, &device);
        let got = to_vec(flow.log_prob(x, u))[0] as f64;
        let want: f64 = pixels
            .iter()
            .map(|&p| {
                let v = (p as f64 + 0.5) / 256.0;
                let w = ALPHA + (1.0 - 2.0 * ALPHA) * v;
                let y = (w / (1.0 - w)).ln();
                -0.5 * y * y - 0.5 * (2.0 * std::f64::consts::PI).ln() + ((1.0 - 2.0 * ALPHA) / (w * (1.0 - w))).ln() - 256f64.ln()
            })
            .sum();
        assert!((got - want).abs() < 1e-3, "{got} vs {want}");
        let z = Tensor::<4>::zeros(flow.latent_dims(1), &device);
        // z = 0 is the logit of 1/2: every value in the middle bin.
        assert!(flow.sample(z).iter().all(|&p| p == 127 || p == 128));
    }
}
