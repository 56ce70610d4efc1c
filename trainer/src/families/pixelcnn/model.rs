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
    /// Image channels (1 = gray, 3 = RGB). With more than one, every layer's channels are
    /// split into that many groups (contiguous blocks) and masks also run over the groups.
    #[config(default = 1)]
    pub colours: usize,
}

/// The colour group of channel `j` of `n` when `colours` groups split them in contiguous
/// blocks: `⌊j · colours / n⌋`.
pub fn group(j: usize, n: usize, colours: usize) -> usize {
    j * colours / n
}

/// The full `[o, i, k, k]` mask of a `k`×`k` convolution from `c_in` to `c_out` channels in
/// `colours` groups (van den Oord et al. 2016): taps before the centre in raster order are
/// visible; at the centre, input group `gi` feeds output group `go` when `gi < go` (mask A)
/// or `gi ≤ go` (mask B, `include_centre`); taps after the centre never. With one colour it
/// is [`mask`] for every channel pair.
pub fn colour_mask(c_out: usize, c_in: usize, k: usize, colours: usize, include_centre: bool) -> Vec<f32> {
    let spatial_before = mask(k, false);
    let centre = (k / 2) * k + k / 2;
    let mut m = Vec::with_capacity(c_out * c_in * k * k);
    for o in 0..c_out {
        for i in 0..c_in {
            let (go, gi) = (group(o, c_out, colours), group(i, c_in, colours));
            let centre_visible = gi < go || (include_centre && gi == go);
            for t in 0..k * k {
                m.push(if t == centre { centre_visible as u8 as f32 } else { spatial_before[t] });
            }
        }
    }
    m
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
    /// Colour groups the mask also runs over (1 for gray).
    #[module(skip)]
    pub colours: usize,
}

impl MaskedConv {
    fn new(c_in: usize, c_out: usize, k: usize, include_centre: bool, colours: usize, device: &Device) -> Self {
        let conv =
            Conv2dConfig::new([c_in, c_out], [k, k]).with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2)).init(device);
        MaskedConv { conv, include_centre, colours }
    }

    /// The weight with the mask applied: what the network really uses and what is exported.
    pub fn masked_weight(&self) -> Tensor<4> {
        let w = self.conv.weight.val();
        let [o, i, k, _] = w.dims();
        if self.colours <= 1 {
            let m = Tensor::<4>::from_data(TensorData::new(mask(k, self.include_centre), [1, 1, k, k]), &w.device());
            return w * m.expand([o, i, k, k]);
        }
        let m = Tensor::<4>::from_data(TensorData::new(colour_mask(o, i, k, self.colours, self.include_centre), [o, i, k, k]), &w.device());
        w * m
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

/// A 1×1 convolution's weight as the network uses it: unchanged for gray; for colour, mask B
/// over the colour groups (an output group sees its own and earlier groups).
pub fn pointwise_weight(conv: &Conv2d, colours: usize) -> Tensor<4> {
    let w = conv.weight.val();
    if colours <= 1 {
        return w;
    }
    let [o, i, _, _] = w.dims();
    w * Tensor::<4>::from_data(TensorData::new(colour_mask(o, i, 1, colours, true), [o, i, 1, 1]), &conv.weight.device())
}

/// A 1×1 convolution with its colour mask ([`pointwise_weight`]).
pub fn pointwise_forward(conv: &Conv2d, colours: usize, x: Tensor<4>) -> Tensor<4> {
    if colours <= 1 {
        return conv.forward(x);
    }
    conv2d(x, pointwise_weight(conv, colours), conv.bias.as_ref().map(|b| b.val()), ConvOptions::new([1, 1], [0, 0], [1, 1], 1))
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
    /// The block (`colours`: the colour groups the 1×1 convolutions are masked over).
    pub fn forward(&self, h: Tensor<4>, colours: usize) -> Tensor<4> {
        let t = relu(pointwise_forward(&self.reduce, colours, relu(h.clone())));
        let t = relu(self.masked.forward(t));
        h + pointwise_forward(&self.expand, colours, t)
    }
}

/// The PixelCNN: image `[B,C,H,W]` on the network scale → mixture head `[B,3K·C,H,W]`
/// (per colour `c`, its `3K` planes at `3K·c`), where the parameters of sub-pixel `(c, i)`
/// depend only on pixels before `i` in raster order and on the channels before `c` of pixel
/// `i` (fully convolutional: any height and width).
#[derive(Module, Debug)]
pub struct PixelCnn {
    /// Image channels.
    #[module(skip)]
    pub colours: usize,
    /// 7×7 mask A, C → channels.
    pub input: MaskedConv,
    /// Residual blocks.
    pub blocks: Vec<ResBlock>,
    /// 1×1, channels → channels (after ReLU).
    pub out1: Conv2d,
    /// 1×1, channels → 3K·C (after ReLU).
    pub out2: Conv2d,
}

fn pointwise(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)
}

impl PixelCnnConfig {
    /// A freshly initialized PixelCNN on `device`.
    pub fn init(&self, device: &Device) -> PixelCnn {
        let colours = self.colours.max(1);
        PixelCnn {
            colours,
            input: MaskedConv::new(colours, self.channels, 7, false, colours, device),
            blocks: (0..self.blocks)
                .map(|_| ResBlock {
                    reduce: pointwise(self.channels, self.inner, device),
                    masked: MaskedConv::new(self.inner, self.inner, 3, true, colours, device),
                    expand: pointwise(self.inner, self.channels, device),
                })
                .collect(),
            out1: pointwise(self.channels, self.channels, device),
            out2: pointwise(self.channels, 3 * self.components * colours, device),
        }
    }

    /// Multiply-accumulates per image of `pixels` = H·W pixels (masked-out taps counted, as
    /// a dense kernel computes them).
    pub fn macs(&self, pixels: usize) -> usize {
        let (c, i, k, n) = (self.channels, self.inner, self.components, self.colours.max(1));
        pixels * (49 * n * c + self.blocks * (c * i + 9 * i * i + i * c) + c * c + c * 3 * k * n)
    }
}

impl PixelCnn {
    /// The mixture head for a batch of images.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let n = self.colours;
        let mut h = self.input.forward(x);
        for b in &self.blocks {
            h = b.forward(h, n);
        }
        let h = relu(pointwise_forward(&self.out1, n, relu(h)));
        pointwise_forward(&self.out2, n, h)
    }

    /// Mixture components K.
    pub fn components(&self) -> usize {
        self.out2.weight.dims()[0] / (3 * self.colours.max(1))
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

    /// In colour, sub-pixel (c, i)'s parameters depend on pixels before i and on channels
    /// before c of pixel i, never on (c, i) itself or anything later; on a non-square image.
    #[test]
    fn colour_outputs_see_only_earlier_subpixels() {
        let device = Device::flex();
        device.seed(2);
        let (c, h, w, k) = (3usize, 5usize, 7usize, 2usize);
        let model = PixelCnnConfig::new().with_channels(12).with_inner(6).with_blocks(2).with_components(k).with_colours(c).init(&device);
        let plane = h * w;
        let base: Vec<f32> = (0..c * plane).map(|i| ((i * 53) % 255) as f32 / 127.5 - 1.0).collect();
        let run =
            |x: &[f32]| crate::families::loss::to_vec(model.forward(Tensor::from_data(TensorData::new(x.to_vec(), [1, c, h, w]), &device)));
        let before = run(&base);
        // Order of sub-pixels: pixel-major, channel-minor.
        let order = |ch: usize, p: usize| p * c + ch;
        for ch in 0..c {
            for &p in &[0usize, 8, 20, plane - 1] {
                let mut x = base.clone();
                x[ch * plane + p] = -x[ch * plane + p] + 0.5;
                let after = run(&x);
                let mut influenced_later = false;
                for oc in 0..c {
                    for q in 0..plane {
                        let changed = (0..3 * k).any(|j| before[(oc * 3 * k + j) * plane + q] != after[(oc * 3 * k + j) * plane + q]);
                        if order(oc, q) <= order(ch, p) {
                            assert!(!changed, "sub-pixel ({ch}, {p}) leaked into ({oc}, {q})");
                        }
                        influenced_later |= changed;
                    }
                }
                assert!(influenced_later || (ch == c - 1 && p == plane - 1), "({ch}, {p}) influences nothing");
            }
        }
        assert_eq!(model.components(), k);
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
