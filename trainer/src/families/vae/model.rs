//! VAE network definitions (burn modules).

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Shape of the VAE: latent size, mixture components of the pixel distribution, and the
/// frames it models (channels, height, width).
#[derive(Config, Debug)]
pub struct VaeConfig {
    /// Latent dimensions.
    #[config(default = 16)]
    pub latent: usize,
    /// Discretized logistic mixture components per pixel.
    #[config(default = 4)]
    pub components: usize,
    /// Image channels.
    #[config(default = 1)]
    pub channels: usize,
    /// Image height.
    #[config(default = 28)]
    pub height: usize,
    /// Image width.
    #[config(default = 28)]
    pub width: usize,
}

/// Channels of the encoder's last feature map (and of the decoder's first).
pub const FEATURES: usize = 64;

/// Largest side of the bottleneck feature map.
pub const MAX_BOTTLENECK: usize = 8;

/// Resolution stages of a `height × width` VAE: the fewest halvings (4×4 convolutions of
/// stride 2) that bring the larger side to at most [`MAX_BOTTLENECK`], each side divisible
/// at every stage. 28×28 → 2 stages (7×7), 32×32 → 2 (8×8), 64×64 → 3 (8×8), 48×64 → 3
/// (6×8). `None` for sides no number of halvings fits (30, say).
pub fn stages(height: usize, width: usize) -> Option<usize> {
    (1..=10).find(|&s| height.is_multiple_of(1 << s) && width.is_multiple_of(1 << s) && height.max(width) >> s <= MAX_BOTTLENECK)
}

/// Output channels of encoder stage `i` of `s`: 32 for the first of several, else
/// [`FEATURES`] (a 28×28 VAE is C → 32 → 64; a one-stage VAE C → 64).
pub fn stage_width(i: usize, s: usize) -> usize {
    if i == 0 && s > 1 {
        32
    } else {
        FEATURES
    }
}

/// q(z|x): image `[B, C, H, W]` on the network scale → `(mu, logvar)`, each `[B, latent]`.
#[derive(Module, Debug)]
pub struct Encoder {
    /// One 4×4 convolution of stride 2 (pad 1) per stage: C → 32 → 64 → 64 …
    pub convs: Vec<Conv2d>,
    /// Flattened features → mean.
    pub fc_mu: Linear,
    /// Flattened features → log-variance.
    pub fc_logvar: Linear,
}

/// p(x|z): latent `[B, latent]` → mixture head `[B, 3K·C, H, W]`.
#[derive(Module, Debug)]
pub struct Decoder {
    /// latent → 64 × bottleneck.
    pub fc: Linear,
    /// One 4×4 transposed convolution of stride 2 (pad 1) per stage: … 64 → 32 → 32.
    pub deconvs: Vec<ConvTranspose2d>,
    /// 32 → 3K·C, 3×3, pad 1: the pixel distribution's parameters.
    pub head: Conv2d,
    /// Image channels.
    #[module(skip)]
    pub channels: usize,
    /// Bottleneck height.
    #[module(skip)]
    pub bottleneck_h: usize,
    /// Bottleneck width.
    #[module(skip)]
    pub bottleneck_w: usize,
}

/// Encoder and decoder trained together.
#[derive(Module, Debug)]
pub struct Vae {
    /// q(z|x).
    pub encoder: Encoder,
    /// p(x|z).
    pub decoder: Decoder,
}

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(device)
}

fn deconv(c_in: usize, c_out: usize, device: &Device) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([c_in, c_out], [4, 4]).with_stride([2, 2]).with_padding([1, 1]).init(device)
}

impl VaeConfig {
    /// The number of resolution stages ([`stages`]); panics on an unsupported size, which
    /// [`VaeConfig::check`] reports first.
    pub fn stages(&self) -> usize {
        stages(self.height, self.width).expect("VaeConfig::check passed")
    }

    /// Whether the frame size is one a VAE can have: sides that halve to at most 8.
    pub fn check(&self) -> anyhow::Result<()> {
        if stages(self.height, self.width).is_none() {
            anyhow::bail!(
                "the VAE halves the frame until its larger side is at most {MAX_BOTTLENECK}: {}x{} cannot be (use sides such as 28, 32, 48 or 64)",
                self.height,
                self.width
            );
        }
        Ok(())
    }

    /// A freshly initialized VAE on `device`.
    pub fn init(&self, device: &Device) -> Vae {
        let s = self.stages();
        let (bh, bw) = (self.height >> s, self.width >> s);
        let flat = FEATURES * bh * bw;
        let mut convs = Vec::with_capacity(s);
        let mut c_in = self.channels;
        for i in 0..s {
            convs.push(conv(c_in, stage_width(i, s), 4, 2, 1, device));
            c_in = stage_width(i, s);
        }
        // The decoder mirrors the encoder: FEATURES → … → 32 → 32.
        let deconvs = (0..s)
            .map(|i| {
                let c_in = stage_width(s - 1 - i, s);
                let c_out = if i + 1 == s { 32 } else { stage_width(s - 2 - i, s) };
                deconv(c_in, c_out, device)
            })
            .collect();
        Vae {
            encoder: Encoder {
                convs,
                fc_mu: LinearConfig::new(flat, self.latent).init(device),
                fc_logvar: LinearConfig::new(flat, self.latent).init(device),
            },
            decoder: Decoder {
                fc: LinearConfig::new(self.latent, flat).init(device),
                deconvs,
                head: conv(32, 3 * self.components * self.channels, 3, 1, 1, device),
                channels: self.channels,
                bottleneck_h: bh,
                bottleneck_w: bw,
            },
        }
    }
}

impl Encoder {
    /// `(mu, logvar)` for a batch of images on the network scale.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let mut h = x;
        for c in &self.convs {
            h = relu(c.forward(h));
        }
        let [b, c, hh, ww] = h.dims();
        let h = h.reshape([b, c * hh * ww]);
        (self.fc_mu.forward(h.clone()), self.fc_logvar.forward(h))
    }
}

impl Decoder {
    /// Mixture head `[B, 3K·C, H, W]` for a batch of latents.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [b, _] = z.dims();
        let mut h = relu(self.fc.forward(z)).reshape([b, FEATURES, self.bottleneck_h, self.bottleneck_w]);
        for d in &self.deconvs {
            h = relu(d.forward(h));
        }
        self.head.forward(h)
    }

    /// Mixture components K (the head has 3K·C channels).
    pub fn components(&self) -> usize {
        self.head.weight.dims()[0] / (3 * self.channels.max(1))
    }

    /// Latent dimensions.
    pub fn latent(&self) -> usize {
        self.fc.weight.dims()[0]
    }
}

/// Number of scalar parameters of a module.
pub fn param_count<M: Module>(m: &M) -> usize {
    m.num_params()
}

/// Multiply-accumulates per image of the encoder and decoder (convolutions count
/// `C_in · C_out · k² · H_out · W_out`, transposed convolutions `C_in · C_out · k² · H_in · W_in`).
pub fn macs(cfg: &VaeConfig) -> (usize, usize) {
    let s = cfg.stages();
    let (h, w) = (cfg.height, cfg.width);
    let flat = FEATURES * (h >> s) * (w >> s);
    let (mut enc, mut dec) = (2 * flat * cfg.latent, cfg.latent * flat);
    let mut c_in = cfg.channels;
    for i in 0..s {
        enc += c_in * stage_width(i, s) * 16 * (h >> (i + 1)) * (w >> (i + 1));
        c_in = stage_width(i, s);
    }
    for i in 0..s {
        let c_in = stage_width(s - 1 - i, s);
        let c_out = if i + 1 == s { 32 } else { stage_width(s - 2 - i, s) };
        dec += c_in * c_out * 16 * (h >> (s - i)) * (w >> (s - i));
    }
    dec += 32 * 3 * cfg.components * cfg.channels * 9 * h * w;
    (enc, dec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_the_frame_size() {
        assert_eq!(
            [(28, 28), (32, 32), (64, 64), (48, 64), (16, 16), (128, 96)].map(|(h, w)| stages(h, w)),
            [Some(2), Some(2), Some(3), Some(3), Some(1), Some(4)]
        );
        assert_eq!(stages(30, 30), None);
        assert!(VaeConfig::new().with_height(30).with_width(30).check().is_err());
    }

    /// The 28×28 gray VAE keeps its shape and figures: 1 → 32 → 64 at 7×7, MACs as before.
    #[test]
    fn fashion_vae_is_unchanged_and_others_fit_their_frames() {
        let cfg = VaeConfig::new();
        let flat = FEATURES * 49;
        let (enc, dec) = macs(&cfg);
        assert_eq!(enc, 32 * 16 * 14 * 14 + 32 * FEATURES * 16 * 7 * 7 + 2 * flat * 16);
        assert_eq!(dec, 16 * flat + FEATURES * 32 * 16 * 7 * 7 + 32 * 32 * 16 * 14 * 14 + 32 * 3 * 4 * 9 * 28 * 28);
        let device = Device::flex();
        for (c, h, w) in [(1, 28, 28), (3, 32, 32), (3, 48, 64), (3, 10, 12)] {
            let cfg = VaeConfig::new().with_latent(4).with_components(2).with_channels(c).with_height(h).with_width(w);
            let vae = cfg.init(&device);
            let (mu, _) = vae.encoder.forward(Tensor::zeros([2, c, h, w], &device));
            assert_eq!(mu.dims(), [2, 4]);
            assert_eq!(vae.decoder.forward(Tensor::zeros([2, 4], &device)).dims(), [2, 3 * 2 * c, h, w]);
            assert_eq!(vae.decoder.components(), 2);
        }
    }
}
