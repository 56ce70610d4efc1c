//! PixelCNN network definition (burn modules).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

/// Shape of a PixelCNN.
#[derive(Config, Debug)]
pub struct PixelCnnConfig {
    /// Channels of the residual stream.
    #[config(default = 64)]
    pub channels: usize,
    /// Channels inside each block's masked 3×3 convolution.
    #[config(default = 32)]
    pub inner: usize,
    /// Residual blocks.
    #[config(default = 4)]
    pub blocks: usize,
    /// Discretized logistic mixture components per pixel.
    #[config(default = 5)]
    pub components: usize,
}

/// The autoregressive mask of a `k`×`k` kernel in raster order: rows above the centre, and
/// the centre row left of the centre; the centre itself only for mask B (`include_centre`).
pub fn mask(k: usize, include_centre: bool) -> Vec<f32> {
    let c = k / 2;
    (0..k * k)
        .map(|i| {
            let (r, col) = (i / k, i % k);
            let visible = r < c || (r == c && (col < c || (include_centre && col == c)));
            visible as u8 as f32
        })
        .collect()
}

/// A convolution whose kernel is multiplied by a fixed autoregressive mask in every
/// forward pass (so masked weights get zero gradient and stay irrelevant).
#[derive(Module, Debug)]
pub struct MaskedConv {
    /// The underlying convolution (its stored weight is unmasked).
    pub conv: Conv2d,
    /// Mask B (centre visible) rather than mask A.
    #[module(skip)]
    pub include_centre: bool,
}

impl MaskedConv {
    fn new(c_in: usize, c_out: usize, k: usize, include_centre: bool, device: &Device) -> Self {
        let conv =
            Conv2dConfig::new([c_in, c_out], [k, k]).with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2)).init(device);
        MaskedConv { conv, include_centre }
    }

    /// The weight with the mask applied: what the network really uses and what is exported.
    pub fn masked_weight(&self) -> Tensor<4> {
        let w = self.conv.weight.val();
        let [o, i, k, _] = w.dims();
        let m = Tensor::<4>::from_data(TensorData::new(mask(k, self.include_centre), [1, 1, k, k]), &w.device());
        w * m.expand([o, i, k, k])
    }

    /// Kernel size.
    pub fn kernel(&self) -> usize {
        self.conv.weight.dims()[2]
    }

    /// The masked convolution.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let p = self.kernel() / 2;
        let options = ConvOptions::new([1, 1], [p, p], [1, 1], 1);
        conv2d(x, self.masked_weight(), self.conv.bias.as_ref().map(|b| b.val()), options)
    }
}

/// Bottleneck residual block: `h + expand(relu(masked(relu(reduce(relu(h))))))`.
#[derive(Module, Debug)]
pub struct ResBlock {
    /// 1×1, channels → inner.
    pub reduce: Conv2d,
    /// 3×3 mask B, inner → inner.
    pub masked: MaskedConv,
    /// 1×1, inner → channels.
    pub expand: Conv2d,
}

impl ResBlock {
    /// The block.
    pub fn forward(&self, h: Tensor<4>) -> Tensor<4> {
        let t = relu(self.reduce.forward(relu(h.clone())));
        let t = relu(self.masked.forward(t));
        h + self.expand.forward(t)
    }
}

/// The PixelCNN: image `[B,1,28,28]` on the network scale → mixture head `[B,3K,28,28]`,
/// where the parameters at pixel i depend only on pixels before i in raster order.
#[derive(Module, Debug)]
pub struct PixelCnn {
    /// 7×7 mask A, 1 → channels.
    pub input: MaskedConv,
    /// Residual blocks.
    pub blocks: Vec<ResBlock>,
    /// 1×1, channels → channels (after ReLU).
    pub out1: Conv2d,
    /// 1×1, channels → 3K (after ReLU).
    pub out2: Conv2d,
}

fn pointwise(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)
}

impl PixelCnnConfig {
    /// A freshly initialized PixelCNN on `device`.
    pub fn init(&self, device: &Device) -> PixelCnn {
        PixelCnn {
            input: MaskedConv::new(1, self.channels, 7, false, device),
            blocks: (0..self.blocks)
                .map(|_| ResBlock {
                    reduce: pointwise(self.channels, self.inner, device),
                    masked: MaskedConv::new(self.inner, self.inner, 3, true, device),
                    expand: pointwise(self.inner, self.channels, device),
                })
                .collect(),
            out1: pointwise(self.channels, self.channels, device),
            out2: pointwise(self.channels, 3 * self.components, device),
        }
    }

    /// Multiply-accumulates per 28×28 image (masked-out taps counted, as a dense kernel
    /// computes them).
    pub fn macs(&self) -> usize {
        let (c, i, k) = (self.channels, self.inner, self.components);
        784 * (49 * c + self.blocks * (c * i + 9 * i * i + i * c) + c * c + c * 3 * k)
    }
}

impl PixelCnn {
    /// The mixture head for a batch of images.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = self.input.forward(x);
        for b in &self.blocks {
            h = b.forward(h);
        }
        let h = relu(self.out1.forward(relu(h)));
        self.out2.forward(h)
    }

    /// Mixture components K.
    pub fn components(&self) -> usize {
        self.out2.weight.dims()[0] / 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_causal() {
        let a = mask(3, false);
        assert_eq!(a, vec![1., 1., 1., 1., 0., 0., 0., 0., 0.]);
        let b = mask(3, true);
        assert_eq!(b, vec![1., 1., 1., 1., 1., 0., 0., 0., 0.]);
        assert_eq!(mask(7, false).iter().sum::<f32>(), 24.0);
    }

    #[test]
    fn output_at_pixel_ignores_that_pixel_and_later_ones() {
        let device = Device::flex();
        device.seed(1);
        let model = PixelCnnConfig::new().with_channels(8).with_inner(4).with_blocks(2).with_components(2).init(&device);
        let mut base = vec![0.1f32; 784];
        for (i, v) in base.iter_mut().enumerate() {
            *v = ((i * 37) % 255) as f32 / 127.5 - 1.0;
        }
        let run = |x: &[f32]| {
            crate::families::loss::to_vec(model.forward(Tensor::from_data(TensorData::new(x.to_vec(), [1, 1, 28, 28]), &device)))
        };
        let before = run(&base);
        for &i in &[0usize, 100, 405, 783] {
            let mut x = base.clone();
            x[i] = -x[i] + 0.5;
            let after = run(&x);
            for c in 0..6 {
                for p in 0..=i {
                    assert_eq!(before[c * 784 + p], after[c * 784 + p], "pixel {i} leaked into output {p} channel {c}");
                }
            }
            // And it does influence something later (the model is not trivially blind).
            if i < 783 {
                assert!((0..6).any(|c| (i + 1..784).any(|p| before[c * 784 + p] != after[c * 784 + p])));
            }
        }
    }
}
