//! Post-training int8 quantization and compilation (TFLite int8 scheme): the third stop of
//! the data path, f32 ONNX → calibrated int8 program → `model.egm` (and the QDQ ONNX that
//! tract and onnxruntime run as the reference).
//!
//! * weights: per output channel, symmetric, in [-127, 127], zero point 0;
//! * activations: per tensor, asymmetric, from the min/max seen on calibration inputs
//!   (always including 0);
//! * biases: int32 at scale `s_in · s_w[c]`;
//! * requantization: `(multiplier, shift)` folded here, never on the device;
//! * ReLU fused into the preceding layer when nothing else reads that layer's output;
//! * the model's edges stay f32: the image enters as `q = p − 128` (scale 1/127.5, zero
//!   point 0: the only exact 8-bit mapping, with the half-step offset folded into the first
//!   layer's bias); mixture heads, `mu`/`logvar` and the GAN's pre-tanh image leave as
//!   `acc · s_in · s_w[c]` in f32, and tanh runs in f32. Those outputs feed float maths
//!   (logistic CDFs, KL, pixel rounding) that would lose more to one more int8 rounding than
//!   the whole network loses to quantization.

use crate::int8::graph::{Graph, Node};
use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::model::{self as fmt, write, DType};
use edgegen_runtime::quant::quantize_multiplier;
use std::collections::HashMap;

/// Scale of the fixed image input quantization (`q = p − 128` represents `(p − 128)/127.5`).
pub const IMAGE_SCALE: f32 = 1.0 / 127.5;

/// Per-value (min, max) seen on the calibration inputs.
pub type Ranges = HashMap<String, (f32, f32)>;

/// Runs the float graph on every input and records each value's range.
pub fn calibrate(graph: &Graph, inputs: &[Vec<f32>], progress: bool) -> Ranges {
    let bar = crate::progress::bar(progress, inputs.len() as u64, "calibrate");
    let per_input = crate::parallel::map(inputs.len(), |i| {
        let values = graph.eval(&inputs[i]);
        bar.inc(1);
        values
            .into_iter()
            .map(|(k, v)| (k, v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))))
            .collect::<Vec<_>>()
    });
    crate::progress::finish(&bar);
    let mut ranges = Ranges::new();
    for values in per_input {
        for (k, (lo, hi)) in values {
            let e = ranges.entry(k).or_insert((f32::INFINITY, f32::NEG_INFINITY));
            e.0 = e.0.min(lo);
            e.1 = e.1.max(hi);
        }
    }
    ranges
}

/// How each activation's int8 range is chosen from the values the calibration inputs produce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeMethod {
    /// The smallest and largest value seen (TFLite's default).
    MinMax,
    /// The `p`-th and `(100 − p)`-th percentiles of every value seen (`p` in (50, 100]):
    /// the rare extremes clip so that the common values get finer steps.
    Percentile(f64),
}

impl std::str::FromStr for RangeMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "minmax" {
            return Ok(RangeMethod::MinMax);
        }
        let bad = || format!("`{s}` is not a range method: use `minmax` or `percentile:P` with P in (50, 100], e.g. percentile:99.99");
        let p: f64 = s.strip_prefix("percentile:").ok_or_else(bad)?.parse().map_err(|_| bad())?;
        if !(p > 50.0 && p <= 100.0) {
            return Err(bad());
        }
        Ok(RangeMethod::Percentile(p))
    }
}

impl RangeMethod {
    /// How calibration.json describes it.
    pub fn describe(self) -> String {
        match self {
            RangeMethod::MinMax => "per-tensor min/max over the calibration inputs, widened to include 0".into(),
            RangeMethod::Percentile(p) => format!(
                "per-tensor {p}th and {}th percentiles of every value over the calibration inputs (4,096-bin histogram between the min and max), widened to include 0",
                100.0 - p
            ),
        }
    }
}

/// Bins of the percentile histograms.
const BINS: usize = 4096;

/// [`calibrate`], then, for [`RangeMethod::Percentile`], a second pass that histograms every
/// value between its min and max and cuts each range at the percentiles.
pub fn calibrate_with(graph: &Graph, inputs: &[Vec<f32>], method: RangeMethod, progress: bool) -> Ranges {
    let minmax = calibrate(graph, inputs, progress);
    let RangeMethod::Percentile(p) = method else { return minmax };
    let bar = crate::progress::bar(progress, inputs.len() as u64, "percentiles");
    let mut hist: HashMap<String, Vec<u64>> = HashMap::new();
    // In chunks, so that at most one chunk's histograms are alive at once.
    for chunk in inputs.chunks(64) {
        let per_input = crate::parallel::map(chunk.len(), |i| {
            let values = graph.eval(&chunk[i]);
            bar.inc(1);
            values
                .into_iter()
                .filter_map(|(k, v)| {
                    let &(lo, hi) = minmax.get(&k)?;
                    let mut h = vec![0u32; BINS];
                    let width = (hi - lo).max(f32::MIN_POSITIVE);
                    for x in v {
                        h[(((x - lo) / width * BINS as f32) as usize).min(BINS - 1)] += 1;
                    }
                    Some((k, h))
                })
                .collect::<Vec<_>>()
        });
        for values in per_input {
            for (k, h) in values {
                let e = hist.entry(k).or_insert_with(|| vec![0; BINS]);
                for (a, b) in e.iter_mut().zip(h) {
                    *a += b as u64;
                }
            }
        }
    }
    crate::progress::finish(&bar);
    let mut ranges = Ranges::new();
    for (k, (lo, hi)) in minmax {
        let Some(h) = hist.get(&k) else {
            ranges.insert(k, (lo, hi));
            continue;
        };
        ranges.insert(k, percentile_range(h, (lo, hi), p));
    }
    ranges
}

/// The range a histogram `h` of values in `[lo, hi]` (equal bins) keeps at percentile `p`:
/// from the lower edge of the first bin past the bottom `(1 − p/100)` of the values to the
/// upper edge of the last bin before the top `(1 − p/100)`.
fn percentile_range(h: &[u64], (lo, hi): (f32, f32), p: f64) -> (f32, f32) {
    let n = h.len();
    let total: u64 = h.iter().sum();
    let cut = ((1.0 - p / 100.0) * total as f64).floor() as u64;
    let width = (hi - lo) / n as f32;
    let (mut below, mut first) = (0u64, 0usize);
    while first + 1 < n && below + h[first] <= cut {
        below += h[first];
        first += 1;
    }
    let (mut above, mut last) = (0u64, n - 1);
    while last > first && above + h[last] <= cut {
        above += h[last];
        last -= 1;
    }
    let (a, b) = (lo + first as f32 * width, lo + (last + 1) as f32 * width);
    (a.max(lo), b.min(hi))
}

/// Asymmetric int8 parameters covering `[min, max] ∪ {0}`.
pub fn activation_params(min: f32, max: f32) -> (f32, i32) {
    let (lo, hi) = (min.min(0.0), max.max(0.0));
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    (scale, zp)
}

/// A tensor of the quantized program.
#[derive(Debug, Clone)]
pub struct QTensor {
    /// Name of the ONNX value it holds last (after fused ReLUs and reshapes).
    pub name: String,
    /// (C, H, W), trailing 1s for vectors.
    pub dims: [usize; 3],
    /// Meaningful dims.
    pub rank: usize,
    /// Element type.
    pub dtype: DType,
    /// Scale (int8).
    pub scale: f32,
    /// Zero point (int8).
    pub zero_point: i32,
}

impl QTensor {
    /// Element count.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }
    /// True when empty (never).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which weighted layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Conv2d.
    Conv,
    /// ConvTranspose2d.
    ConvTranspose,
    /// Dense.
    Dense,
}

/// An op of the quantized program.
#[derive(Debug, Clone)]
pub enum QOp {
    /// A weighted layer. `weights` are in the device layout `[Co, Ci, kh, kw]` / `[M, N]`.
    Weighted {
        /// Which layer.
        layer: Layer,
        /// Input tensor.
        x: usize,
        /// Output tensor.
        y: usize,
        /// int8 weights, device layout.
        weights: Vec<i8>,
        /// Per-output-channel weight scales.
        weight_scales: Vec<f32>,
        /// int32 biases at `s_in · s_w[c]`.
        bias: Vec<i32>,
        /// Kernel (h, w), stride, padding (convolutions).
        kernel: [usize; 2],
        /// Stride.
        stride: usize,
        /// Padding.
        pad: usize,
        /// ReLU fused.
        relu: bool,
    },
    /// int8 Add.
    Add {
        /// Inputs.
        a: usize,
        /// Inputs.
        b: usize,
        /// Output.
        y: usize,
    },
    /// int8 ReLU.
    Relu {
        /// Input.
        x: usize,
        /// Output.
        y: usize,
    },
    /// f32 tanh.
    Tanh {
        /// Input.
        x: usize,
        /// Output.
        y: usize,
    },
    /// f32 → int8.
    Quantize {
        /// Input.
        x: usize,
        /// Output.
        y: usize,
    },
}

impl QOp {
    /// Output tensor.
    pub fn output(&self) -> usize {
        match *self {
            QOp::Weighted { y, .. } | QOp::Add { y, .. } | QOp::Relu { y, .. } | QOp::Tanh { y, .. } | QOp::Quantize { y, .. } => y,
        }
    }
    /// Input tensors.
    pub fn inputs(&self) -> Vec<usize> {
        match *self {
            QOp::Add { a, b, .. } => vec![a, b],
            QOp::Weighted { x, .. } | QOp::Relu { x, .. } | QOp::Tanh { x, .. } | QOp::Quantize { x, .. } => vec![x],
        }
    }
}

/// The quantized program: tensors, ops in order, graph input and outputs.
#[derive(Debug, Clone)]
pub struct QModel {
    /// Tensors.
    pub tensors: Vec<QTensor>,
    /// Ops in execution order.
    pub ops: Vec<QOp>,
    /// Input tensor (int8 image or f32 vector).
    pub input: usize,
    /// Output tensors (f32), in the ONNX graph's output order.
    pub outputs: Vec<usize>,
    /// Family as stored in the model file.
    pub family: fmt::Family,
}

fn dims3(shape: &[usize]) -> ([usize; 3], usize) {
    let mut d = [1usize; 3];
    for (i, &v) in shape.iter().enumerate().take(3) {
        d[i] = v;
    }
    (d, shape.len().clamp(1, 3))
}

/// Symmetric per-channel quantization of `channels` rows of `w` (row = one output channel).
fn quantize_rows(rows: &[Vec<f32>]) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::new();
    let mut scales = Vec::new();
    for r in rows {
        let max = r.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(r.iter().map(|&v| (v / s).round().clamp(-127.0, 127.0) as i8));
    }
    (q, scales)
}

/// Family from the ONNX metadata.
pub fn family_of(graph: &Graph) -> Result<fmt::Family> {
    fmt::Family::from_name(&graph.family).with_context(|| format!("family {:?} is not compiled for devices", graph.family))
}

/// Builds the quantized program from a float graph and calibration ranges: the input, then
/// one lowering per node, in graph order.
pub fn quantize(graph: &Graph, ranges: &Ranges) -> Result<QModel> {
    let family = family_of(graph)?;
    let mut l = Lowering::new(graph, ranges);
    let input = l.input(family.takes_image())?;
    for (ni, n) in graph.nodes.iter().enumerate() {
        match n {
            Node::Reshape { x, y } => l.reshape(x, y),
            Node::Relu { x, y } => l.relu(x, y)?,
            Node::Add { a, b, y } => l.add(a, b, y)?,
            Node::Tanh { x, y } => l.tanh(x, y),
            Node::LeakyRelu { .. } => bail!("LeakyRelu is not compiled for devices (the discriminator stays on the host)"),
            Node::Conv { x, w, wshape, b, stride, pad, y } => l.conv(ni, false, x, w, *wshape, b, *stride, *pad, y, input)?,
            Node::ConvTranspose { x, w, wshape, b, stride, pad, y } => l.conv(ni, true, x, w, *wshape, b, *stride, *pad, y, input)?,
            Node::Gemm { x, w, d_in, d_out, b, y } => l.gemm(x, w, *d_in, *d_out, b, y)?,
        }
    }
    let Lowering { tensors, ops, id, .. } = l;
    let outputs = graph.outputs.iter().map(|o| id[o]).collect::<Vec<_>>();
    for &o in &outputs {
        ensure!(tensors[o].dtype == DType::F32, "output {} is not float", tensors[o].name);
    }
    Ok(QModel { tensors, ops, input, outputs, family })
}

/// The program being built: tensors and ops so far, and which tensor holds each ONNX value.
struct Lowering<'g> {
    graph: &'g Graph,
    ranges: &'g Ranges,
    tensors: Vec<QTensor>,
    ops: Vec<QOp>,
    id: HashMap<String, usize>,
    /// Readers of each value (a graph output counts as one).
    readers: HashMap<&'g str, usize>,
    /// True when the image enters as int8 (then the first layer's bias takes the offset).
    image_input: bool,
}

impl<'g> Lowering<'g> {
    fn new(graph: &'g Graph, ranges: &'g Ranges) -> Self {
        let mut readers: HashMap<&str, usize> = HashMap::new();
        for n in &graph.nodes {
            for i in n.inputs() {
                *readers.entry(i).or_default() += 1;
            }
        }
        for o in &graph.outputs {
            *readers.entry(o.as_str()).or_default() += 1;
        }
        Lowering { graph, ranges, tensors: Vec::new(), ops: Vec::new(), id: HashMap::new(), readers, image_input: false }
    }

    fn range(&self, name: &str) -> Result<(f32, f32)> {
        self.ranges.get(name).copied().with_context(|| format!("no calibration range for {name}"))
    }

    /// Values that leave as f32: graph outputs and tanh inputs.
    fn float_out(&self, name: &str) -> bool {
        self.graph.outputs.iter().any(|o| o == name) || self.graph.nodes.iter().any(|n| matches!(n, Node::Tanh { x, .. } if x == name))
    }

    fn new_tensor(&mut self, name: &str, dtype: DType, (scale, zero_point): (f32, i32)) -> usize {
        let (dims, rank) = dims3(&self.graph.shapes[name]);
        self.tensors.push(QTensor { name: name.to_string(), dims, rank, dtype, scale, zero_point });
        self.tensors.len() - 1
    }

    /// The graph input: an int8 image (`q = p − 128`), or an f32 vector quantized by the
    /// first op. Returns the input tensor.
    fn input(&mut self, image: bool) -> Result<usize> {
        let graph = self.graph;
        self.image_input = image;
        if image {
            let shape = &graph.shapes[&graph.input];
            ensure!(
                shape.len() == 3 && (1..=4).contains(&shape[0]) && shape[1] > 0 && shape[2] > 0,
                "image models take a [C, H, W] image, not {shape:?}"
            );
            let input = self.new_tensor(&graph.input, DType::I8, (IMAGE_SCALE, 0));
            self.id.insert(graph.input.clone(), input);
            return Ok(input);
        }
        let input = self.new_tensor(&graph.input, DType::F32, (1.0, 0));
        let (lo, hi) = self.range(&graph.input)?;
        let q = self.new_tensor(&graph.input, DType::I8, activation_params(lo, hi));
        self.tensors[q].name = format!("{}_q", graph.input);
        self.ops.push(QOp::Quantize { x: input, y: q });
        self.id.insert(graph.input.clone(), q);
        Ok(input)
    }

    /// A reshape is a view: the tensor takes the new dims (when 3-D) and name.
    fn reshape(&mut self, x: &str, y: &str) {
        let t = self.id[x];
        let (dims, rank) = dims3(&self.graph.shapes[y]);
        if rank == 3 {
            self.tensors[t].dims = dims;
            self.tensors[t].rank = 3;
        }
        self.tensors[t].name = y.to_string();
        self.id.insert(y.to_string(), t);
    }

    /// A ReLU fuses into its producer when that is a weighted layer with an int8 output that
    /// nothing but this ReLU (possibly through reshapes) reads; else it is an op of its own.
    fn relu(&mut self, x: &str, y: &str) -> Result<()> {
        let t = self.id[x];
        let sole_reader = self.readers.get(x) == Some(&1) && self.graph.nodes.iter().filter(|m| m.inputs().contains(&x)).count() == 1;
        let float_out = self.float_out(y);
        let producer = self.ops.iter_mut().rev().find(|o| o.output() == t);
        if let (Some(QOp::Weighted { relu, .. }), true, false) = (producer, sole_reader, float_out) {
            if !*relu {
                *relu = true;
                let (lo, hi) = self.range(y)?;
                let (s, zp) = activation_params(lo, hi);
                let yt = &mut self.tensors[t];
                (yt.scale, yt.zero_point, yt.name) = (s, zp, y.to_string());
                self.id.insert(y.to_string(), t);
                return Ok(());
            }
        }
        let src = self.tensors[t].clone();
        let out = self.new_tensor(y, DType::I8, (src.scale, src.zero_point));
        (self.tensors[out].dims, self.tensors[out].rank) = (src.dims, src.rank);
        self.ops.push(QOp::Relu { x: t, y: out });
        self.id.insert(y.to_string(), out);
        Ok(())
    }

    fn add(&mut self, a: &str, b: &str, y: &str) -> Result<()> {
        let (lo, hi) = self.range(y)?;
        let out = self.new_tensor(y, DType::I8, activation_params(lo, hi));
        self.ops.push(QOp::Add { a: self.id[a], b: self.id[b], y: out });
        self.id.insert(y.to_string(), out);
        Ok(())
    }

    fn tanh(&mut self, x: &str, y: &str) {
        let out = self.new_tensor(y, DType::F32, (1.0, 0));
        self.ops.push(QOp::Tanh { x: self.id[x], y: out });
        self.id.insert(y.to_string(), out);
    }

    /// A convolution or transposed convolution: weights regrouped per output channel (the
    /// device layout), then quantized; the first layer on the int8 image gets the half-step
    /// offset back in its bias.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        ni: usize,
        transpose: bool,
        x: &str,
        w: &[f32],
        wshape: [usize; 4],
        b: &[f32],
        stride: usize,
        pad: usize,
        y: &str,
        input: usize,
    ) -> Result<()> {
        let xt = self.id[x];
        ensure!(self.tensors[xt].dtype == DType::I8, "layer {ni} reads a float tensor");
        let [a0, a1, kh, kw] = wshape;
        let (co, ci) = if transpose { (a1, a0) } else { (a0, a1) };
        let rows: Vec<Vec<f32>> = (0..co)
            .map(|o| {
                let mut r = Vec::with_capacity(ci * kh * kw);
                for i in 0..ci {
                    let base = if transpose { (i * co + o) * kh * kw } else { (o * ci + i) * kh * kw };
                    r.extend_from_slice(&w[base..base + kh * kw]);
                }
                r
            })
            .collect();
        let mut b = b.to_vec();
        if xt == input && self.image_input {
            // The int8 image represents x − 1/255: add W·(1/255) back (exact away from borders).
            for (o, r) in rows.iter().enumerate() {
                b[o] += r.iter().sum::<f32>() / 255.0;
            }
        }
        let layer = if transpose { Layer::ConvTranspose } else { Layer::Conv };
        self.weighted(layer, xt, y, &rows, &b, [kh, kw], stride, pad)
    }

    /// A dense layer (ONNX Gemm, weights `[in, out]`).
    fn gemm(&mut self, x: &str, w: &[f32], d_in: usize, d_out: usize, b: &[f32], y: &str) -> Result<()> {
        let xt = self.id[x];
        let rows: Vec<Vec<f32>> = (0..d_out).map(|o| (0..d_in).map(|i| w[i * d_out + o]).collect()).collect();
        self.weighted(Layer::Dense, xt, y, &rows, b, [1, 1], 1, 0)
    }

    /// A weighted layer's op: per-channel int8 weights, int32 biases at `s_in · s_w[c]`, an
    /// int8 output from its calibrated range or an f32 one at the model's edge.
    #[allow(clippy::too_many_arguments)]
    fn weighted(
        &mut self,
        layer: Layer,
        x: usize,
        y: &str,
        rows: &[Vec<f32>],
        b: &[f32],
        kernel: [usize; 2],
        stride: usize,
        pad: usize,
    ) -> Result<()> {
        let s_in = self.tensors[x].scale;
        let (weights, weight_scales) = quantize_rows(rows);
        let bias = b
            .iter()
            .zip(&weight_scales)
            .map(|(&bv, &sw)| (bv as f64 / (s_in as f64 * sw as f64)).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32)
            .collect();
        let out = if self.float_out(y) {
            self.new_tensor(y, DType::F32, (1.0, 0))
        } else {
            let (lo, hi) = self.range(y)?;
            self.new_tensor(y, DType::I8, activation_params(lo, hi))
        };
        self.ops.push(QOp::Weighted { layer, x, y: out, weights, weight_scales, bias, kernel, stride, pad, relu: false });
        self.id.insert(y.to_string(), out);
        Ok(())
    }
}

/// Arena offsets by tensor lifetime (greedy by size, first fit, 16-byte aligned): tensors
/// live at the same time never overlap; the arena is the peak, not the sum. Returns the
/// offsets and the arena length.
pub fn plan_arena(q: &QModel) -> (Vec<usize>, usize) {
    let n = q.tensors.len();
    let size = |t: &QTensor| t.len() * if t.dtype == DType::I8 { 1 } else { 4 };
    let mut birth = vec![usize::MAX; n];
    let mut death = vec![0usize; n];
    birth[q.input] = 0;
    for (i, op) in q.ops.iter().enumerate() {
        birth[op.output()] = birth[op.output()].min(i);
        death[op.output()] = death[op.output()].max(i);
        for x in op.inputs() {
            death[x] = death[x].max(i);
        }
    }
    for &o in &q.outputs {
        death[o] = q.ops.len();
    }
    let mut order: Vec<usize> = (0..n).filter(|&t| birth[t] != usize::MAX).collect();
    order.sort_by_key(|&t| std::cmp::Reverse(size(&q.tensors[t])));
    let mut offsets = vec![0usize; n];
    let mut placed: Vec<usize> = Vec::new();
    let mut arena = 0usize;
    for t in order {
        let len = size(&q.tensors[t]);
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&u| birth[u] <= death[t] && birth[t] <= death[u])
            .map(|&u| (offsets[u], offsets[u] + size(&q.tensors[u])))
            .collect();
        busy.sort();
        let mut at = 0usize;
        for (s, e) in busy {
            if at + len <= s {
                break;
            }
            at = at.max(e.div_ceil(16) * 16);
        }
        offsets[t] = at;
        arena = arena.max(at + len);
        placed.push(t);
    }
    (offsets, arena.div_ceil(16) * 16)
}

/// What the file's metadata block says.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Mixture components (0 = no pixel distribution).
    pub components: u8,
    /// Latent dimensions.
    pub latent: u16,
    /// Model name.
    pub name: String,
    /// Guard: score kind, flags, threshold, false-reject target, parameter.
    pub guard: (u8, u16, f32, f32, [f32; 4]),
}

/// Serializes the program as a model file through the runtime's writer (format in
/// `edgegen_runtime::model`): arena plan, one record per tensor and op, the constants in the
/// data section.
pub fn compile(q: &QModel, meta: &Meta) -> Result<Vec<u8>> {
    let (offsets, arena_len) = plan_arena(q);
    let index = |t: usize| u16::try_from(t).context("more than 65535 tensors");
    let mut data = write::DataSection::new();
    let mut ops = Vec::with_capacity(q.ops.len());
    for op in &q.ops {
        ops.push(match op {
            QOp::Weighted { .. } => lower_weighted(q, op, &mut data)?,
            QOp::Add { a, b, y } => lower_add(q, (*a, *b, *y), &mut data)?,
            QOp::Relu { x, y } => fmt::Op::new(fmt::OpCode::Relu, index(*x)?, index(*y)?),
            QOp::Tanh { x, y } => fmt::Op::new(fmt::OpCode::Tanh, index(*x)?, index(*y)?),
            QOp::Quantize { x, y } => fmt::Op::new(fmt::OpCode::Quantize, index(*x)?, index(*y)?),
        });
    }
    let mut tensors = Vec::with_capacity(q.tensors.len());
    for (t, &offset) in q.tensors.iter().zip(&offsets) {
        let mut dims = [0u16; 3];
        for (d, &v) in dims.iter_mut().zip(&t.dims) {
            *d = u16::try_from(v).with_context(|| format!("{}: dimension {v} over 65535", t.name))?;
        }
        let byte_len = t.len() * t.dtype.size();
        tensors.push(fmt::Tensor {
            dtype: t.dtype,
            rank: t.rank as u8,
            dims,
            offset: offset as u32,
            byte_len: byte_len as u32,
            scale: t.scale,
            zero_point: t.zero_point,
        });
    }
    let geometry = image_geometry(q, &tensors, meta.components)?;
    let mut name = [0u8; 32];
    let n = meta.name.len().min(31);
    name[..n].copy_from_slice(&meta.name.as_bytes()[..n]);
    let (guard_score, guard_flags, guard_threshold, guard_false_reject, guard_params) = meta.guard;
    let file = write::ModelFile {
        arena_len: arena_len as u32,
        tensors,
        ops,
        input: index(q.input)?,
        outputs: q.outputs.iter().map(|&o| index(o)).collect::<Result<_>>()?,
        metadata: fmt::Metadata {
            family: q.family,
            distribution: (meta.components > 0) as u8,
            components: meta.components,
            latent: meta.latent,
            guard_score,
            guard_flags,
            guard_threshold,
            guard_false_reject,
            guard_params,
            name,
        },
        geometry,
        data,
    };
    file.to_bytes().map_err(|e| anyhow::anyhow!("compiled file fails validation: {e}"))
}

/// The image geometry a compiled network is about, from its interface: an image model's
/// input `[C, H, W]`, a generator's output `[C, H, W]`, a decoder's mixture head
/// `[3K·C, H, W]`.
fn image_geometry(q: &QModel, tensors: &[fmt::Tensor], components: u8) -> Result<edgegen_runtime::image::Geometry> {
    use fmt::Family;
    let [c, h, w] = match q.family {
        Family::PixelCnn | Family::VaeEncoder | Family::Classifier => tensors[q.input].dims,
        Family::GanGenerator => tensors[q.outputs[0]].dims,
        // A flow's coupling: its maps are the image's (1 or 3 channels) before the squeeze,
        // [4C, H/2, W/2] after it.
        Family::FlowCoupling => match tensors[q.input].dims {
            [c, h, w] if c % 4 == 0 => [c / 4, 2 * h, 2 * w],
            d => d,
        },
        Family::VaeDecoder => {
            let [d, h, w] = tensors[q.outputs[0]].dims;
            let per = 3 * components as u16;
            ensure!(per > 0 && d % per == 0, "the decoder's head has {d} channels, not 3K·C for K = {components}");
            [d / per, h, w]
        }
    };
    edgegen_runtime::image::Geometry::new(c, h, w).map_err(|e| anyhow::anyhow!("image geometry {c}x{h}x{w}: {e}"))
}

/// A weighted layer's record: int8 weights, int32 biases, and per output channel either the
/// folded `(multiplier, shift)` (int8 output) or the f32 scale `s_in · s_w` (float output).
fn lower_weighted(q: &QModel, op: &QOp, data: &mut write::DataSection) -> Result<fmt::Op> {
    let QOp::Weighted { layer, x, y, weights, weight_scales, bias, kernel, stride, pad, relu } = op else {
        bail!("not a weighted layer");
    };
    let yt = &q.tensors[*y];
    let code = match layer {
        Layer::Conv => fmt::OpCode::Conv2d,
        Layer::ConvTranspose => fmt::OpCode::ConvTranspose2d,
        Layer::Dense => fmt::OpCode::FullyConnected,
    };
    let mut r = fmt::Op::new(code, *x as u16, *y as u16);
    if *relu {
        r.act_min = yt.zero_point as i8;
    }
    let small = |v: usize, what: &str| u8::try_from(v).with_context(|| format!("{}: {what} {v} over 255", yt.name));
    (r.kernel_h, r.kernel_w, r.stride, r.pad) =
        (small(kernel[0], "kernel")?, small(kernel[1], "kernel")?, small(*stride, "stride")?, small(*pad, "padding")?);
    let w: Vec<u8> = weights.iter().map(|&v| v as u8).collect();
    r.weights = data.push(&w);
    r.weights_len = w.len() as u32;
    r.bias = data.push_words(bias.iter().map(|v| v.to_le_bytes())).0;
    let s_in = q.tensors[*x].scale as f64;
    let mut quant = Vec::new();
    for &sw in weight_scales {
        if yt.dtype == DType::I8 {
            let real = s_in * sw as f64 / yt.scale as f64;
            let (m, s) = quantize_multiplier(real).with_context(|| format!("scale {real} of {} cannot be folded", yt.name))?;
            quant.extend([m.to_le_bytes(), s.to_le_bytes()]);
        } else {
            quant.push(((s_in * sw as f64) as f32).to_le_bytes());
        }
    }
    (r.quant, r.quant_len) = data.push_words(quant);
    Ok(r)
}

/// An Add's record: TFLite's seven rescaling words (left shift, each input's and the
/// output's multiplier and shift).
fn lower_add(q: &QModel, (a, b, y): (usize, usize, usize), data: &mut write::DataSection) -> Result<fmt::Op> {
    let (sa, sb, so) = (q.tensors[a].scale as f64, q.tensors[b].scale as f64, q.tensors[y].scale as f64);
    let left_shift = 20;
    let twice_max = 2.0 * sa.max(sb);
    let (ma, sha) = quantize_multiplier(sa / twice_max).context("Add input scale")?;
    let (mb, shb) = quantize_multiplier(sb / twice_max).context("Add input scale")?;
    let (mo, sho) = quantize_multiplier(twice_max / ((1 << left_shift) as f64 * so)).context("Add output scale")?;
    let mut r = fmt::Op::new(fmt::OpCode::Add, a as u16, y as u16);
    r.input1 = b as u16;
    (r.quant, r.quant_len) = data.push_words([left_shift, ma, sha, mb, shb, mo, sho].map(i32::to_le_bytes));
    Ok(r)
}

/// Rewrites the guard fields of a compiled file's metadata (and its checksum).
pub fn set_guard(file: &[u8], score: u8, threshold: f32, false_reject: f32, params: [f32; 4]) -> Result<Vec<u8>> {
    write::rewrite_metadata(file, |m| {
        m.guard_score = score;
        m.guard_flags = 1;
        m.guard_threshold = threshold;
        m.guard_false_reject = false_reject;
        m.guard_params = params;
    })
    .map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod range_tests {
    #[test]
    fn percentile_ranges_clip_rare_extremes_only() {
        // 1,000 values in bins 0..10 of 100, one outlier in the last bin.
        let mut h = vec![0u64; 100];
        h[..10].iter_mut().for_each(|b| *b = 100);
        h[99] = 1;
        // 99.9: the top 0.1% (one value) is the outlier: cut; the bottom bin holds 100 > 1.
        assert_eq!(super::percentile_range(&h, (0.0, 100.0), 99.9), (0.0, 10.0));
        // 100: nothing cut.
        assert_eq!(super::percentile_range(&h, (0.0, 100.0), 100.0), (0.0, 100.0));
        // 99: the top 1% (ten values) reaches into bin 9 but does not empty it.
        assert_eq!(super::percentile_range(&h, (0.0, 100.0), 99.0), (0.0, 10.0));
        // Two-sided: a low outlier as well (8,002 values: eight cut from each end).
        h[0] = 0;
        h[1] = 1;
        h[2..10].iter_mut().for_each(|b| *b = 1000);
        assert_eq!(super::percentile_range(&h, (-50.0, 50.0), 99.9), (-48.0, -40.0));
    }

    #[test]
    fn range_methods_parse_and_refuse_nonsense() {
        use super::RangeMethod;
        assert_eq!("minmax".parse::<RangeMethod>(), Ok(RangeMethod::MinMax));
        assert_eq!("percentile:99.99".parse::<RangeMethod>(), Ok(RangeMethod::Percentile(99.99)));
        for bad in ["percentile:50", "percentile:101", "percentile:x", "median", ""] {
            let e = bad.parse::<RangeMethod>().unwrap_err();
            assert!(e.contains("minmax") && e.contains("percentile:"), "{e}");
        }
    }
}
