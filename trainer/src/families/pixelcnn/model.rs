//! PixelCNN network definition (burn modules).

use burn::nn::conv::{Conv2d, Conv2dConfig};
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
    /// Two stacks without a blind spot (van den Oord et al. 2016, "Conditional Image
    /// Generation with PixelCNN Decoders", with ReLU in place of the gated unit): a vertical
    /// stack that sees the rows above and a horizontal stack that sees the row so far and the
    /// vertical stack. `false`: the classic single stack, whose stacked 3×3 masks leave a
    /// blind spot above and to the right.
    #[config(default = false)]
    pub two_stack: bool,
}

/// Which of a kernel's taps a masked convolution sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskShape {
    /// Raster order: rows above and the centre row left of the centre ([`mask`]).
    Raster,
    /// The vertical stack's: rows above the centre only (`include_centre` false, the first
    /// layer) or also the centre row (true: its input already sees only the rows above).
    Vertical,
    /// The horizontal stack's: the centre row left of the centre, and the centre itself as
    /// mask A or B over the colour groups.
    Horizontal,
}

/// Whether tap `(r, col)` of a `k`×`k` kernel is visible (the centre tap's colour rule aside)
/// for `shape`; `centre` is the answer at the centre tap.
fn tap_visible(shape: MaskShape, k: usize, r: usize, col: usize, centre: bool) -> bool {
    let c = k / 2;
    match shape {
        MaskShape::Raster => r < c || (r == c && (col < c || (col == c && centre))),
        MaskShape::Vertical => r < c || (r == c && centre),
        MaskShape::Horizontal => r == c && (col < c || (col == c && centre)),
    }
}

/// The `[o, i, k, k]` mask of a `k`×`k` convolution of `shape` (see [`colour_mask`] for the
/// colour groups at the centre tap; the vertical stack's centre row carries no pixel of the
/// current row, so every group sees every group there).
pub fn shaped_mask(shape: MaskShape, c_out: usize, c_in: usize, k: usize, colours: usize, include_centre: bool) -> Vec<f32> {
    if shape == MaskShape::Raster {
        return colour_mask(c_out, c_in, k, colours, include_centre);
    }
    let mut m = Vec::with_capacity(c_out * c_in * k * k);
    for o in 0..c_out {
        for i in 0..c_in {
            let (go, gi) = (group(o, c_out, colours), group(i, c_in, colours));
            let centre = match shape {
                MaskShape::Vertical => include_centre,
                _ => gi < go || (include_centre && gi == go),
            };
            for t in 0..k * k {
                m.push(tap_visible(shape, k, t / k, t % k, centre) as u8 as f32);
            }
        }
    }
    m
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
    (0..k * k).map(|i| tap_visible(MaskShape::Raster, k, i / k, i % k, include_centre) as u8 as f32).collect()
}

/// A convolution whose kernel is multiplied by a fixed autoregressive mask in every
/// forward pass (so masked weights get zero gradient and stay irrelevant).
///
/// A stack's kernel ([`MaskShape::Vertical`], [`MaskShape::Horizontal`]) is stored and
/// trained as only its visible part — `(k/2 [+1]) × k` rows above, `1 × (k/2+1)` the row so
/// far — with one-sided padding, so training pays for no masked tap; [`MaskedConv::masked_weight`]
/// places it in the `k`×`k` kernel the export and the device use.
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
    /// The taps it sees.
    #[module(skip)]
    pub shape: MaskShape,
    /// The square kernel's size `k`.
    #[module(skip)]
    pub k: usize,
}

/// The stored kernel `(rows, columns)` of a `k`×`k` masked convolution of `shape`.
fn stored_kernel(shape: MaskShape, k: usize, include_centre: bool) -> [usize; 2] {
    match shape {
        MaskShape::Raster => [k, k],
        MaskShape::Vertical => [k / 2 + include_centre as usize, k],
        MaskShape::Horizontal => [1, k / 2 + 1],
    }
}

impl MaskedConv {
    fn shaped(shape: MaskShape, c_in: usize, c_out: usize, k: usize, include_centre: bool, colours: usize, device: &Device) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], stored_kernel(shape, k, include_centre)).init(device);
        MaskedConv { conv, include_centre, colours, shape, k }
    }

    /// The stored weight with its mask: the raster mask, or for the horizontal stack the
    /// centre column's colour rule (the vertical stack's stored taps are all visible).
    fn live_weight(&self) -> Tensor<4> {
        let w = self.conv.weight.val();
        let [o, i, kh, kw] = w.dims();
        let device = w.device();
        match self.shape {
            MaskShape::Vertical => w,
            MaskShape::Horizontal => {
                let full = shaped_mask(MaskShape::Horizontal, o, i, self.k, self.colours, self.include_centre);
                let row = (self.k / 2) * self.k;
                let m: Vec<f32> = (0..o * i).flat_map(|p| full[p * self.k * self.k + row..][..kw].to_vec()).collect();
                w * Tensor::<4>::from_data(TensorData::new(m, [o, i, kh, kw]), &device)
            }
            MaskShape::Raster if self.colours <= 1 => {
                let m = Tensor::<4>::from_data(TensorData::new(mask(kh, self.include_centre), [1, 1, kh, kw]), &device);
                w * m.expand([o, i, kh, kw])
            }
            MaskShape::Raster => {
                let m = colour_mask(o, i, kh, self.colours, self.include_centre);
                w * Tensor::<4>::from_data(TensorData::new(m, [o, i, kh, kw]), &device)
            }
        }
    }

    /// The `k`×`k` weight with the mask applied: what the network really uses and what is
    /// exported.
    pub fn masked_weight(&self) -> Tensor<4> {
        let w = self.live_weight();
        let [o, i, kh, kw] = w.dims();
        if self.shape == MaskShape::Raster {
            return w;
        }
        let (k, small) = (self.k, crate::families::loss::to_vec(w.clone()));
        let top = if self.shape == MaskShape::Horizontal { k / 2 } else { 0 };
        let mut full = vec![0f32; o * i * k * k];
        for p in 0..o * i {
            for r in 0..kh {
                for c in 0..kw {
                    full[p * k * k + (top + r) * k + c] = small[p * kh * kw + r * kw + c];
                }
            }
        }
        Tensor::<4>::from_data(TensorData::new(full, [o, i, k, k]), &w.device())
    }

    /// Kernel size `k` (of the square kernel it stands for).
    pub fn kernel(&self) -> usize {
        self.k
    }

    /// The masked convolution: output `(y, x)` from the taps [`MaskShape`] allows.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let p = self.k / 2;
        let [b, _, h, w] = x.dims();
        let bias = self.conv.bias.as_ref().map(|b| b.val());
        match self.shape {
            MaskShape::Raster => conv2d(x, self.live_weight(), bias, ConvOptions::new([1, 1], [p, p], [1, 1], 1)),
            // Padding on both sides and the first H (W) outputs kept: each output then reads
            // the rows (columns) up to its own, as the square kernel's visible part does.
            shape => {
                let pad_rows = if shape == MaskShape::Vertical { p } else { 0 };
                let y = conv2d(x, self.live_weight(), bias, ConvOptions::new([1, 1], [pad_rows, p], [1, 1], 1));
                let c = y.dims()[1];
                y.slice([0..b, 0..c, 0..h, 0..w])
            }
        }
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
    /// The two-stack network's other parts (`None`: the classic single stack).
    pub stacks: Option<Stacks>,
    /// 1×1, channels → channels (after ReLU).
    pub out1: Conv2d,
    /// 1×1, channels → 3K·C (after ReLU).
    pub out2: Conv2d,
}

/// The parts of a two-stack PixelCNN beside the horizontal stack's (which reuses
/// [`PixelCnn::input`] as its 7×7 first layer, horizontal mask A, and [`PixelCnn::blocks`]).
/// The vertical stack carries `inner` channels: `v ← v + vertical(relu(v))`, each 3×3 seeing
/// the rows up to its centre row of a stack that itself sees only the rows above; each block
/// of the horizontal stack adds `link(relu(vertical output))` to its own 3×3 output.
#[derive(Module, Debug)]
pub struct Stacks {
    /// 7×7, rows above only, C → inner.
    pub vertical_input: MaskedConv,
    /// Per block: 3×3 vertical (rows up to the centre row), inner → inner.
    pub vertical: Vec<MaskedConv>,
    /// Per block: 1×1, inner → inner, the vertical stack into the horizontal one.
    pub link: Vec<Conv2d>,
}

fn pointwise(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)
}

impl PixelCnnConfig {
    /// A freshly initialized PixelCNN on `device`.
    pub fn init(&self, device: &Device) -> PixelCnn {
        let colours = self.colours.max(1);
        let first = if self.two_stack { MaskShape::Horizontal } else { MaskShape::Raster };
        PixelCnn {
            colours,
            input: MaskedConv::shaped(first, colours, self.channels, 7, false, colours, device),
            blocks: (0..self.blocks)
                .map(|_| ResBlock {
                    reduce: pointwise(self.channels, self.inner, device),
                    masked: MaskedConv::shaped(first, self.inner, self.inner, 3, true, colours, device),
                    expand: pointwise(self.inner, self.channels, device),
                })
                .collect(),
            stacks: self.two_stack.then(|| Stacks {
                vertical_input: MaskedConv::shaped(MaskShape::Vertical, colours, self.inner, 7, false, colours, device),
                vertical: (0..self.blocks)
                    .map(|_| MaskedConv::shaped(MaskShape::Vertical, self.inner, self.inner, 3, true, colours, device))
                    .collect(),
                link: (0..self.blocks).map(|_| pointwise(self.inner, self.inner, device)).collect(),
            }),
            out1: pointwise(self.channels, self.channels, device),
            out2: pointwise(self.channels, 3 * self.components * colours, device),
        }
    }

    /// Multiply-accumulates per image of `pixels` = H·W pixels (masked-out taps counted, as
    /// a dense kernel computes them).
    pub fn macs(&self, pixels: usize) -> usize {
        let (c, i, k, n) = (self.channels, self.inner, self.components, self.colours.max(1));
        let stacks = if self.two_stack { 49 * n * i + self.blocks * (9 * i * i + i * i) } else { 0 };
        pixels * (49 * n * c + self.blocks * (c * i + 9 * i * i + i * c) + stacks + c * c + c * 3 * k * n)
    }

    /// Multiply-accumulates per image with a nonzero weight possible (what the int8 engine
    /// computes: it skips a kernel's taps that are zero for every channel pair).
    pub fn live_macs(&self, pixels: usize) -> usize {
        let (c, i, k, n) = (self.channels, self.inner, self.components, self.colours.max(1));
        // Visible taps (the centre counted: it is live for some colour pair but gray mask A).
        let taps = |shape, k: usize, centre: bool| (0..k * k).filter(|t| tap_visible(shape, k, t / k, t % k, centre)).count();
        let centre_a = n > 1;
        let body = if self.two_stack {
            taps(MaskShape::Horizontal, 7, centre_a) * n * c
                + taps(MaskShape::Vertical, 7, false) * n * i
                + self.blocks
                    * (c * i + taps(MaskShape::Horizontal, 3, true) * i * i + i * c + taps(MaskShape::Vertical, 3, true) * i * i + i * i)
        } else {
            taps(MaskShape::Raster, 7, centre_a) * n * c + self.blocks * (c * i + taps(MaskShape::Raster, 3, true) * i * i + i * c)
        };
        pixels * (body + c * c + c * 3 * k * n)
    }
}

impl PixelCnn {
    /// The mixture head for a batch of images.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let n = self.colours;
        let mut h = self.input.forward(x.clone());
        match &self.stacks {
            None => {
                for b in &self.blocks {
                    h = b.forward(h, n);
                }
            }
            Some(s) => {
                let mut v = s.vertical_input.forward(x);
                for ((b, vertical), link) in self.blocks.iter().zip(&s.vertical).zip(&s.link) {
                    let cv = vertical.forward(relu(v.clone()));
                    let from_above = link.forward(relu(cv.clone()));
                    v = v + cv;
                    let t = relu(pointwise_forward(&b.reduce, n, relu(h.clone())));
                    let t = relu(b.masked.forward(t) + from_above);
                    h = h + pointwise_forward(&b.expand, n, t);
                }
            }
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

    /// Changes each colour of each of `pixels` of a `c`×`h`×`w` frame (values from `stride`)
    /// and asserts that no output at or before that sub-pixel (pixel-major, channel-minor)
    /// moves. Returns, per probe (colour, pixel), whether some later output moved.
    fn assert_colour_order(model: &PixelCnn, [c, h, w, k]: [usize; 4], pixels: &[usize], stride: usize) -> Vec<((usize, usize), bool)> {
        let device = Device::flex();
        let plane = h * w;
        let base: Vec<f32> = (0..c * plane).map(|i| ((i * stride) % 255) as f32 / 127.5 - 1.0).collect();
        let run =
            |x: &[f32]| crate::families::loss::to_vec(model.forward(Tensor::from_data(TensorData::new(x.to_vec(), [1, c, h, w]), &device)));
        let before = run(&base);
        let order = |ch: usize, p: usize| p * c + ch;
        let mut influence = Vec::new();
        for ch in 0..c {
            for &p in pixels {
                let mut x = base.clone();
                x[ch * plane + p] = -x[ch * plane + p] + 0.5;
                let after = run(&x);
                let mut influenced_later = false;
                for oc in 0..c {
                    for q in 0..plane {
                        let changed = (0..3 * k).any(|j| before[(oc * 3 * k + j) * plane + q] != after[(oc * 3 * k + j) * plane + q]);
                        assert!(!changed || order(oc, q) > order(ch, p), "sub-pixel ({ch}, {p}) leaked into ({oc}, {q})");
                        influenced_later |= changed;
                    }
                }
                influence.push(((ch, p), influenced_later));
            }
        }
        influence
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
        for ((ch, p), influenced_later) in assert_colour_order(&model, [c, h, w, k], &[0, 8, 20, plane - 1], 53) {
            // The last pixel's sub-pixels have at most two later outputs, which a ReLU of
            // random weights may well cut; every earlier one has many.
            assert!(influenced_later || p == plane - 1, "({ch}, {p}) influences nothing");
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

    /// What the output at pixel `(py, px)` of a gray 20×20 image depends on: every input
    /// pixel whose change moves any of its head values.
    /// (Over two base images, so that a ReLU of random weights that cuts a path for one of
    /// them does not hide it.)
    fn seen_by(model: &PixelCnn, py: usize, px: usize) -> Vec<(usize, usize)> {
        let device = Device::flex();
        let (h, w) = (20usize, 20usize);
        let run =
            |x: &[f32]| crate::families::loss::to_vec(model.forward(Tensor::from_data(TensorData::new(x.to_vec(), [1, 1, h, w]), &device)));
        let mut seen = Vec::new();
        for stride in [71usize, 113] {
            let base: Vec<f32> = (0..h * w).map(|i| ((i * stride) % 255) as f32 / 127.5 - 1.0).collect();
            let before = run(&base);
            let planes = before.len() / (h * w);
            let at = |v: &[f32]| (0..planes).map(|c| v[c * h * w + py * w + px]).collect::<Vec<_>>();
            for p in 0..h * w {
                let mut x = base.clone();
                x[p] = -x[p] + 0.37;
                if at(&run(&x)) != at(&before) && !seen.contains(&(p / w, p % w)) {
                    seen.push((p / w, p % w));
                }
            }
        }
        seen
    }

    /// The two-stack network sees every earlier pixel of its receptive field — the rows up
    /// to 3 + blocks above, 3 + blocks columns either side, and the row so far — and nothing
    /// at or after the pixel; the classic network, the same size, misses some of them (its
    /// blind spot).
    #[test]
    fn two_stacks_have_no_blind_spot() {
        let device = Device::flex();
        device.seed(5);
        let cfg = PixelCnnConfig::new().with_channels(8).with_inner(8).with_blocks(2).with_components(2);
        let (py, px, r) = (12usize, 10usize, 5usize);
        let window: Vec<(usize, usize)> =
            (py - r..=py).flat_map(|y| (px - r..=px + r).map(move |x| (y, x))).filter(|&(y, x)| y < py || x < px).collect();
        let two = cfg.clone().with_two_stack(true).init(&device);
        let seen = seen_by(&two, py, px);
        for p in &window {
            assert!(seen.contains(p), "the two-stack output at ({py}, {px}) does not see {p:?}");
        }
        for &(y, x) in &seen {
            assert!(y < py || (y == py && x < px), "the output at ({py}, {px}) sees ({y}, {x}), not before it");
        }
        let classic = cfg.init(&device);
        let seen = seen_by(&classic, py, px);
        assert!(seen.iter().all(|&(y, x)| y < py || (y == py && x < px)));
        assert!(window.iter().any(|p| !seen.contains(p)), "the classic network has no blind spot?");
    }

    /// In colour, the two-stack network keeps the sub-pixel order too.
    #[test]
    fn two_stacks_keep_the_colour_order() {
        let device = Device::flex();
        device.seed(6);
        let (c, h, w, k) = (3usize, 6usize, 7usize, 2usize);
        let model = PixelCnnConfig::new()
            .with_channels(12)
            .with_inner(6)
            .with_blocks(2)
            .with_components(k)
            .with_colours(c)
            .with_two_stack(true)
            .init(&device);
        let plane = h * w;
        assert_colour_order(&model, [c, h, w, k], &[0, 9, 23, plane - 1], 29);
        let base: Vec<f32> = (0..c * plane).map(|i| ((i * 29) % 255) as f32 / 127.5 - 1.0).collect();
        let run =
            |x: &[f32]| crate::families::loss::to_vec(model.forward(Tensor::from_data(TensorData::new(x.to_vec(), [1, c, h, w]), &device)));
        let before = run(&base);
        // Within a pixel, a later colour sees the earlier ones.
        let mut x = base.clone();
        x[10] = -x[10];
        let after = run(&x);
        assert!((0..3 * k).any(|j| before[(3 * k + j) * plane + 10] != after[(3 * k + j) * plane + 10]));
    }
}
