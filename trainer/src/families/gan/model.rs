//! DCGAN network definitions (burn modules).

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, tanh};

/// Shape of the GAN.
#[derive(Config, Debug)]
pub struct GanConfig {
    /// Noise dimensions.
    #[config(default = 32)]
    pub latent: usize,
    /// Channels of the generator's smallest map (7×7 for 28×28 frames); each transposed
    /// convolution after it halves them, down to [`MIN_WIDTH`].
    #[config(default = 64)]
    pub features: usize,
    /// Channels of the discriminator's first convolution (each further one doubles them).
    #[config(default = 32)]
    pub d_features: usize,
    /// Channels of a full-size feature map between the last transposed convolution and the
    /// image, which a 3×3 convolution then writes; 0 (the default): the transposed
    /// convolution writes the image directly.
    #[config(default = 0)]
    pub fine_features: usize,
    /// Strided convolutions in the discriminator: as many as the generator has stages (the
    /// default for 28×28: 2, 28 → 14 → 7) or one more, which reads the smallest map down
    /// to half its size (7×7 → 3×3).
    #[config(default = 2)]
    pub d_layers: usize,
    /// Image channels: 1 (gray) or 3 (RGB).
    #[config(default = 1)]
    pub channels: usize,
    /// Frame height.
    #[config(default = 28)]
    pub height: usize,
    /// Frame width.
    #[config(default = 28)]
    pub width: usize,
    /// Classes the generator is conditioned on (0: unconditional). A conditional generator
    /// reads its noise followed by the class's one-hot vector; the discriminator adds a
    /// projection term ⟨embed(y), φ(x)⟩ to its logit (Miyato & Koyama 2018).
    #[config(default = 0)]
    pub classes: usize,
    /// Minibatch standard deviation (Karras et al. 2018): the discriminator's last map gains
    /// one channel holding the standard deviation of its features across groups of this
    /// many images, so a batch of fakes that are too alike is told apart from real
    /// ones (0: off).
    #[config(default = 0)]
    pub mbstd: usize,
}

/// Fewest channels a generator stage narrows to.
pub const MIN_WIDTH: usize = 4;

/// Most channels a discriminator convolution widens to.
pub const MAX_D_WIDTH: usize = 512;

/// Channels of the generator's map after `i` transposed convolutions (`features` at the
/// smallest map, halved per stage, at least [`MIN_WIDTH`]).
pub fn generator_width(features: usize, i: usize) -> usize {
    (features >> i).max(MIN_WIDTH).min(features)
}

/// Channels of discriminator convolution `i`: `d_features` doubled per layer, at most
/// [`MAX_D_WIDTH`].
pub fn discriminator_width(d_features: usize, i: usize) -> usize {
    (d_features << i).min(MAX_D_WIDTH.max(d_features))
}

/// z `[B, latent]` → image `[B, C, H, W]` in (-1, 1) (the network pixel scale).
#[derive(Module, Debug)]
pub struct Generator {
    /// latent → features × (H/2^s) × (W/2^s), s the number of stages.
    pub fc: Linear,
    /// BatchNorm ahead of each transposed convolution: `norms[i]` over the map stage `i`
    /// reads.
    pub norms: Vec<BatchNorm>,
    /// One 4×4 transposed convolution of stride 2 (pad 1) per stage, each doubling the
    /// map's sides; the last writes the image (then tanh) or the fine stage's map.
    pub deconvs: Vec<ConvTranspose2d>,
    /// With `fine_features` > 0: BatchNorm, ReLU and a 3×3 convolution to the image.
    pub fine: Option<Fine>,
    /// The smallest map's height.
    #[module(skip)]
    pub base_h: usize,
    /// The smallest map's width.
    #[module(skip)]
    pub base_w: usize,
    /// Classes the generator is conditioned on (0: unconditional): the dense layer reads
    /// the noise followed by the class's one-hot vector.
    #[module(skip)]
    pub classes: usize,
}

/// The generator's optional full-size stage: BatchNorm over the last transposed
/// convolution's `fine_features` channels, ReLU, then a 3×3 convolution (padding 1) to the
/// image's channels and tanh.
#[derive(Module, Debug)]
pub struct Fine {
    /// BatchNorm over the full-size map's channels.
    pub bn2: BatchNorm,
    /// fine_features→C, 3×3, stride 1, padding 1.
    pub conv3: Conv2d,
}

/// image `[B, C, H, W]` → realness logit `[B, 1]`.
#[derive(Module, Debug)]
pub struct Discriminator {
    /// 4×4 convolutions of stride 2 (pad 1), each followed by LeakyReLU(0.2): C → d → 2d …
    pub convs: Vec<Conv2d>,
    /// The last map flattened → 1.
    pub fc: Linear,
    /// A conditional discriminator's class embedding: one-hot class → a vector the size of
    /// the flattened last map, whose inner product with that map is added to the logit (the
    /// projection discriminator).
    pub embed: Option<Linear>,
    /// Group size of the minibatch standard deviation channel (0: none).
    #[module(skip)]
    pub mbstd: usize,
}

/// The minibatch standard deviation channel of `h [B, C, H, W]` (Karras et al. 2018):
/// image `i` belongs to group `i mod (B / g)`; each group's features' standard deviation
/// across its `g` images, averaged over channels and positions, fills one `[H, W]` map per
/// image → `[B, 1, H, W]`. With `B` not a multiple of `g` the whole batch is one group.
pub fn minibatch_std(h: Tensor<4>, group: usize) -> Tensor<4> {
    let [b, c, hh, ww] = h.dims();
    let g = if group > 0 && b.is_multiple_of(group) { group } else { b };
    let m = b / g;
    let x = h.reshape([g, m, c, hh, ww]);
    let centred = x.clone() - x.mean_dim(0);
    let std = (centred.powi_scalar(2).mean_dim(0) + 1e-8).sqrt(); // [1, m, c, h, w]
    let per_group = std.reshape([m, c * hh * ww]).mean_dim(1); // [m, 1]
                                                               // Row i of the batch is group i mod m: repeat the m values g times.
    per_group.reshape([1, m]).repeat_dim(0, g).reshape([b, 1, 1, 1]).expand([b, 1, hh, ww])
}

/// Generator and discriminator, checkpointed together.
#[derive(Module, Debug)]
pub struct Gan {
    /// The generator (what ships).
    pub generator: Generator,
    /// The discriminator.
    pub discriminator: Discriminator,
}

fn dcgan_init() -> Initializer {
    Initializer::Normal { mean: 0.0, std: 0.02 }
}

fn strided_conv(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [4, 4])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_initializer(dcgan_init())
        .init(device)
}

impl GanConfig {
    /// Resolution stages of the generator: the frame's sides are halved this many times to
    /// the smallest map (the VAE's rule: until the larger side is at most 8; 28×28 → 7×7).
    pub fn stages(&self) -> usize {
        crate::families::vae::model::stages(self.height, self.width).expect("GanConfig::check passed")
    }

    /// The smallest map's (height, width).
    pub fn base(&self) -> (usize, usize) {
        let s = self.stages();
        (self.height >> s, self.width >> s)
    }

    /// Whether the frame and the layer counts are ones a GAN can have.
    pub fn check(&self) -> anyhow::Result<()> {
        let Some(s) = crate::families::vae::model::stages(self.height, self.width) else {
            anyhow::bail!(
                "the GAN doubles its smallest map until the frame size, so both sides must halve to a map of at most 8: {}x{} cannot (use sides such as 28, 32, 48 or 64)",
                self.height,
                self.width
            );
        };
        if !(1..=3).contains(&self.channels) || self.channels == 2 {
            anyhow::bail!("the GAN draws 1 (gray) or 3 (RGB) channels, not {}", self.channels);
        }
        if self.classes > 256 {
            anyhow::bail!("a conditional GAN takes at most 256 classes, not {}", self.classes);
        }
        if self.d_layers != s && self.d_layers != s + 1 {
            anyhow::bail!(
                "--d-layers must be {s} (one strided convolution per generator stage for {}x{} frames) or {} (one more), not {}",
                self.height,
                self.width,
                s + 1,
                self.d_layers
            );
        }
        Ok(())
    }

    /// The discriminator's last map: (channels, height, width).
    pub fn discriminator_map(&self) -> (usize, usize, usize) {
        let (mut h, mut w) = (self.height, self.width);
        for _ in 0..self.d_layers {
            (h, w) = (h / 2, w / 2);
        }
        (discriminator_width(self.d_features, self.d_layers - 1), h, w)
    }

    /// A freshly initialized GAN on `device` (DCGAN's N(0, 0.02) weights).
    pub fn init(&self, device: &Device) -> Gan {
        let s = self.stages();
        let (bh, bw) = self.base();
        let (f, d) = (self.features, self.d_features);
        let n = self.fine_features;
        let out = if n > 0 { n } else { self.channels };
        let deconvs = (0..s)
            .map(|i| {
                let c_out = if i + 1 == s { out } else { generator_width(f, i + 1) };
                ConvTranspose2dConfig::new([generator_width(f, i), c_out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_initializer(dcgan_init())
                    .init(device)
            })
            .collect();
        let mut c_in = self.channels;
        let convs = (0..self.d_layers)
            .map(|i| {
                let c = strided_conv(c_in, discriminator_width(d, i), device);
                c_in = discriminator_width(d, i);
                c
            })
            .collect();
        let (dc, dh, dw) = self.discriminator_map();
        Gan {
            generator: Generator {
                fc: LinearConfig::new(self.latent + self.classes, f * bh * bw).with_initializer(dcgan_init()).init(device),
                norms: (0..s).map(|i| BatchNormConfig::new(generator_width(f, i)).init(device)).collect(),
                deconvs,
                fine: (n > 0).then(|| Fine {
                    bn2: BatchNormConfig::new(n).init(device),
                    conv3: Conv2dConfig::new([n, self.channels], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .with_initializer(dcgan_init())
                        .init(device),
                }),
                base_h: bh,
                base_w: bw,
                classes: self.classes,
            },
            discriminator: Discriminator {
                convs,
                fc: LinearConfig::new((dc + usize::from(self.mbstd > 0)) * dh * dw, 1).with_initializer(dcgan_init()).init(device),
                embed: (self.classes > 0)
                    .then(|| LinearConfig::new(self.classes, dc * dh * dw).with_bias(false).with_initializer(dcgan_init()).init(device)),
                mbstd: self.mbstd,
            },
        }
    }
}

/// One-hot rows `[B, classes]` for `labels`.
pub fn one_hot(labels: &[u8], classes: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        v[i * classes + l as usize] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), classes]), device)
}

impl Generator {
    /// The generator's input for noise `z [B, latent]` and, for a conditional generator,
    /// one class per row (ignored by an unconditional one): the noise followed by the
    /// class's one-hot vector.
    pub fn input(&self, z: Tensor<2>, labels: &[u8]) -> Tensor<2> {
        if self.classes == 0 {
            return z;
        }
        let device = z.device();
        Tensor::cat(vec![z, one_hot(labels, self.classes, &device)], 1)
    }

    /// Images for a batch of generator inputs ([`Generator::input`]: noise, then the
    /// one-hot class of a conditional generator).
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let h = self.pre_norm(z, self.stages());
        match &self.fine {
            Some(fine) => tanh(fine.conv3.forward(relu(fine.bn2.forward(h)))),
            None => tanh(h),
        }
    }

    /// Resolution stages (transposed convolutions).
    pub fn stages(&self) -> usize {
        self.deconvs.len()
    }

    /// Channels of the smallest map.
    pub fn features(&self) -> usize {
        self.norms[0].gamma.dims()[0]
    }

    /// The smallest map's (height, width).
    pub fn base(&self) -> (usize, usize) {
        (self.base_h, self.base_w)
    }

    /// The image's (channels, height, width).
    pub fn image_dims(&self) -> (usize, usize, usize) {
        let channels = match &self.fine {
            Some(f) => f.conv3.weight.dims()[0],
            None => self.deconvs[self.stages() - 1].weight.dims()[1],
        };
        let s = self.stages();
        (channels, self.base_h << s, self.base_w << s)
    }

    /// The network up to BatchNorm `layer`'s input: 0, the dense layer's smallest map; `i`,
    /// the map after `i` transposed convolutions; the last (`stages()`) is the last
    /// transposed convolution's full-size output (what the fine stage's BatchNorm
    /// normalizes, or the image before tanh without one).
    pub fn pre_norm(&self, z: Tensor<2>, layer: usize) -> Tensor<4> {
        let [b, _] = z.dims();
        let (bh, bw) = self.base();
        let mut h = self.fc.forward(z).reshape([b, self.features(), bh, bw]);
        for (norm, deconv) in self.norms.iter().zip(&self.deconvs).take(layer) {
            h = deconv.forward(relu(norm.forward(h)));
        }
        h
    }

    /// Number of BatchNorm layers (one per stage, and one more with the fine stage).
    pub fn batchnorms(&self) -> usize {
        self.stages() + usize::from(self.fine.is_some())
    }

    /// BatchNorm `layer` (`0..batchnorms()`), the one applied to [`Generator::pre_norm`]'s output.
    pub fn batchnorm_mut(&mut self, layer: usize) -> &mut BatchNorm {
        let s = self.stages();
        match (layer, &mut self.fine) {
            (l, _) if l < s => &mut self.norms[l],
            (l, Some(fine)) if l == s => &mut fine.bn2,
            _ => panic!("generator has no BatchNorm {layer}"),
        }
    }

    /// Channels of the full-size map ahead of the final 3×3 convolution (0 without one).
    pub fn fine_features(&self) -> usize {
        self.fine.as_ref().map_or(0, |f| f.bn2.gamma.dims()[0])
    }

    /// Noise dimensions.
    pub fn latent(&self) -> usize {
        self.fc.weight.dims()[0] - self.classes
    }

    /// Values of the generator's input: the noise and, for a conditional generator, the
    /// one-hot class.
    pub fn input_len(&self) -> usize {
        self.fc.weight.dims()[0]
    }

    /// Multiply-accumulates per image.
    pub fn macs(&self) -> usize {
        let [l, o] = self.fc.weight.dims();
        let (bh, bw) = self.base();
        let mut macs = l * o;
        for (i, d) in self.deconvs.iter().enumerate() {
            let [c_in, c_out, kh, kw] = d.weight.dims();
            // A transposed convolution: every input value meets every kernel tap.
            macs += c_in * c_out * kh * kw * (bh << i) * (bw << i);
        }
        let (c, h, w) = self.image_dims();
        macs + self.fine_features() * c * 9 * h * w
    }
}

impl Discriminator {
    /// How many images it scores at once: one, or with the minibatch standard deviation (a
    /// statistic over a group of images) the group size, as its ONNX file and golden vectors
    /// take them.
    pub fn group(&self) -> usize {
        self.mbstd.max(1)
    }

    /// Realness logits; a conditional discriminator also reads each image's class
    /// (`labels`, one per row; ignored by an unconditional one).
    pub fn forward(&self, x: Tensor<4>, labels: &[u8]) -> Tensor<2> {
        let mut h = x;
        for conv in &self.convs {
            h = leaky_relu(conv.forward(h), 0.2);
        }
        let [b, c, hh, ww] = h.dims();
        let phi = h.clone().reshape([b, c * hh * ww]);
        // The dense layer reads the map and, with minibatch standard deviation, one more
        // channel; the projection term reads the map alone.
        let features = match self.mbstd {
            0 => phi.clone(),
            g => Tensor::cat(vec![phi.clone(), minibatch_std(h, g).reshape([b, hh * ww])], 1),
        };
        match &self.embed {
            Some(embed) => {
                let classes = embed.weight.dims()[0];
                let projection = (embed.forward(one_hot(labels, classes, &phi.device())) * phi).sum_dim(1);
                self.fc.forward(features) + projection
            }
            None => self.fc.forward(features),
        }
    }

    /// Classes of a conditional discriminator (0: unconditional).
    pub fn classes(&self) -> usize {
        self.embed.as_ref().map_or(0, |e| e.weight.dims()[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The minibatch standard deviation channel against a direct computation: groups are
    /// rows `i mod (B / g)`, the population standard deviation per feature, averaged; a
    /// discriminator with it still gives one logit per image.
    #[test]
    fn minibatch_std_matches_a_direct_computation() {
        let device = Device::flex();
        let (b, c, h, w) = (6usize, 2usize, 2usize, 3usize);
        let values: Vec<f32> = (0..b * c * h * w).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [b, c, h, w]), &device);
        let got: Vec<f32> = minibatch_std(x.clone(), 3).into_data().try_to_vec::<f32>().unwrap();
        let n = c * h * w;
        let m = b / 3;
        for i in 0..b {
            let members: Vec<usize> = (0..b).filter(|j| j % m == i % m).collect();
            let mut sum = 0f64;
            for f in 0..n {
                let v: Vec<f64> = members.iter().map(|&j| values[j * n + f] as f64).collect();
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                sum += (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64 + 1e-8).sqrt();
            }
            let want = sum / n as f64;
            for p in 0..h * w {
                assert!((got[i * h * w + p] as f64 - want).abs() < 1e-5, "image {i}: {} vs {want}", got[i * h * w + p]);
            }
        }
        // Identical images have no spread; a group size that does not divide the batch
        // makes one group of all.
        let same = Tensor::<4>::ones([4, c, h, w], &device);
        let zero: Vec<f32> = minibatch_std(same, 2).into_data().try_to_vec::<f32>().unwrap();
        assert!(zero.iter().all(|v| v.abs() < 1e-3), "{zero:?}");
        assert_eq!(minibatch_std(x.clone(), 4).dims(), [b, 1, h, w]);

        let cfg = GanConfig::new().with_features(16).with_d_features(4).with_mbstd(2).with_classes(10);
        let cfg = cfg.clone().with_d_layers(cfg.stages() + 1);
        cfg.check().unwrap();
        let gan = cfg.init(&device);
        let image = Tensor::<4>::zeros([4, 1, 28, 28], &device);
        assert_eq!(gan.discriminator.forward(image, &[0, 3, 9, 1]).dims(), [4, 1]);
    }
}
