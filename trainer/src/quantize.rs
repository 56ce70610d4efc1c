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

use crate::graph::{Graph, Node};
use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::model::{self as fmt, DType};
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
    bar.finish_and_clear();
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
    Ok(match graph.family.as_str() {
        "vae-encoder" => fmt::Family::VaeEncoder,
        "vae-decoder" => fmt::Family::VaeDecoder,
        "pixelcnn" => fmt::Family::PixelCnn,
        "gan-generator" => fmt::Family::GanGenerator,
        other => bail!("family {other:?} is not compiled for devices"),
    })
}

/// Builds the quantized program from a float graph and calibration ranges.
pub fn quantize(graph: &Graph, ranges: &Ranges) -> Result<QModel> {
    let family = family_of(graph)?;
    let image_input = matches!(family, fmt::Family::VaeEncoder | fmt::Family::PixelCnn);
    let mut tensors: Vec<QTensor> = Vec::new();
    let mut ops: Vec<QOp> = Vec::new();
    let mut id: HashMap<String, usize> = HashMap::new();
    let range = |name: &str| ranges.get(name).copied().with_context(|| format!("no calibration range for {name}"));

    // Readers of each value (Reshape is a view: its readers count for its input).
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for n in &graph.nodes {
        for i in n.inputs() {
            *readers.entry(i).or_default() += 1;
        }
    }
    for o in &graph.outputs {
        *readers.entry(o.as_str()).or_default() += 1;
    }
    let float_out =
        |name: &str| graph.outputs.iter().any(|o| o == name) || graph.nodes.iter().any(|n| matches!(n, Node::Tanh { x, .. } if x == name));

    let new_tensor = |tensors: &mut Vec<QTensor>, name: &str, dtype: DType, (scale, zp): (f32, i32)| -> usize {
        let (dims, rank) = dims3(&graph.shapes[name]);
        tensors.push(QTensor { name: name.to_string(), dims, rank, dtype, scale, zero_point: zp });
        tensors.len() - 1
    };

    // Input.
    let input = if image_input {
        ensure!(graph.shapes[&graph.input] == [1, 28, 28], "image models take [1, 28, 28]");
        new_tensor(&mut tensors, &graph.input, DType::I8, (IMAGE_SCALE, 0))
    } else {
        new_tensor(&mut tensors, &graph.input, DType::F32, (1.0, 0))
    };
    if image_input {
        id.insert(graph.input.clone(), input);
    } else {
        let (lo, hi) = range(&graph.input)?;
        let q = new_tensor(&mut tensors, &graph.input, DType::I8, activation_params(lo, hi));
        tensors[q].name = format!("{}_q", graph.input);
        ops.push(QOp::Quantize { x: input, y: q });
        id.insert(graph.input.clone(), q);
    }

    for (ni, n) in graph.nodes.iter().enumerate() {
        match n {
            Node::Reshape { x, y } => {
                let t = id[x];
                let (dims, rank) = dims3(&graph.shapes[y]);
                if rank == 3 {
                    tensors[t].dims = dims;
                    tensors[t].rank = 3;
                }
                tensors[t].name = y.clone();
                id.insert(y.clone(), t);
            }
            Node::Relu { x, y } => {
                let t = id[x];
                // Fuse into the producer when it is a weighted layer with an int8 output that
                // nothing but this ReLU (possibly through reshapes) reads.
                let producer = ops.iter_mut().rev().find(|o| o.output() == t);
                let sole_reader =
                    readers.get(x.as_str()) == Some(&1) && graph.nodes.iter().filter(|m| m.inputs().contains(&x.as_str())).count() == 1;
                let fusable = matches!(producer, Some(QOp::Weighted { relu: false, .. })) && sole_reader && !float_out(y);
                if fusable {
                    if let Some(QOp::Weighted { relu, .. }) = producer {
                        *relu = true;
                    }
                    let (lo, hi) = range(y)?;
                    let (s, zp) = activation_params(lo, hi);
                    tensors[t].scale = s;
                    tensors[t].zero_point = zp;
                    tensors[t].name = y.clone();
                    id.insert(y.clone(), t);
                } else {
                    let src = tensors[t].clone();
                    let out = new_tensor(&mut tensors, y, DType::I8, (src.scale, src.zero_point));
                    tensors[out].dims = src.dims;
                    tensors[out].rank = src.rank;
                    ops.push(QOp::Relu { x: t, y: out });
                    id.insert(y.clone(), out);
                }
            }
            Node::Add { a, b, y } => {
                let (lo, hi) = range(y)?;
                let out = new_tensor(&mut tensors, y, DType::I8, activation_params(lo, hi));
                ops.push(QOp::Add { a: id[a], b: id[b], y: out });
                id.insert(y.clone(), out);
            }
            Node::Tanh { x, y } => {
                let out = new_tensor(&mut tensors, y, DType::F32, (1.0, 0));
                ops.push(QOp::Tanh { x: id[x], y: out });
                id.insert(y.clone(), out);
            }
            Node::LeakyRelu { .. } => bail!("LeakyRelu is not compiled for devices (the discriminator stays on the host)"),
            Node::Conv { x, w, wshape, b, stride, pad, y } | Node::ConvTranspose { x, w, wshape, b, stride, pad, y } => {
                let xt = id[x];
                ensure!(tensors[xt].dtype == DType::I8, "layer {ni} reads a float tensor");
                let transpose = matches!(n, Node::ConvTranspose { .. });
                let [a0, a1, kh, kw] = *wshape;
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
                let mut b = b.clone();
                if xt == input && image_input {
                    // The int8 image represents x − 1/255: add W·(1/255) back (exact away from borders).
                    for (o, r) in rows.iter().enumerate() {
                        b[o] += r.iter().sum::<f32>() / 255.0;
                    }
                }
                let layer = if transpose { Layer::ConvTranspose } else { Layer::Conv };
                let out = weighted(&mut tensors, &mut ops, graph, ranges, layer, xt, y, &rows, &b, [kh, kw], *stride, *pad, float_out(y))?;
                id.insert(y.clone(), out);
            }
            Node::Gemm { x, w, d_in, d_out, b, y } => {
                let xt = id[x];
                let rows: Vec<Vec<f32>> = (0..*d_out).map(|o| (0..*d_in).map(|i| w[i * d_out + o]).collect()).collect();
                let out = weighted(&mut tensors, &mut ops, graph, ranges, Layer::Dense, xt, y, &rows, b, [1, 1], 1, 0, float_out(y))?;
                id.insert(y.clone(), out);
            }
        }
    }
    let outputs = graph.outputs.iter().map(|o| id[o]).collect::<Vec<_>>();
    for &o in &outputs {
        ensure!(tensors[o].dtype == DType::F32, "output {} is not float", tensors[o].name);
    }
    Ok(QModel { tensors, ops, input, outputs, family })
}

#[allow(clippy::too_many_arguments)]
fn weighted(
    tensors: &mut Vec<QTensor>,
    ops: &mut Vec<QOp>,
    graph: &Graph,
    ranges: &Ranges,
    layer: Layer,
    x: usize,
    y: &str,
    rows: &[Vec<f32>],
    b: &[f32],
    kernel: [usize; 2],
    stride: usize,
    pad: usize,
    float_output: bool,
) -> Result<usize> {
    let s_in = tensors[x].scale;
    let (weights, weight_scales) = quantize_rows(rows);
    let bias = b
        .iter()
        .zip(&weight_scales)
        .map(|(&bv, &sw)| (bv as f64 / (s_in as f64 * sw as f64)).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32)
        .collect();
    let (dims, rank) = dims3(&graph.shapes[y]);
    let (dtype, (scale, zp)) = if float_output {
        (DType::F32, (1.0, 0))
    } else {
        let (lo, hi) = ranges.get(y).copied().with_context(|| format!("no calibration range for {y}"))?;
        (DType::I8, activation_params(lo, hi))
    };
    tensors.push(QTensor { name: y.to_string(), dims, rank, dtype, scale, zero_point: zp });
    let out = tensors.len() - 1;
    ops.push(QOp::Weighted { layer, x, y: out, weights, weight_scales, bias, kernel, stride, pad, relu: false });
    Ok(out)
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

fn push_blob(data: &mut Vec<u8>, bytes: &[u8]) -> u32 {
    while data.len() % 16 != 0 {
        data.push(0);
    }
    let off = data.len() as u32;
    data.extend_from_slice(bytes);
    off
}

/// Serializes the program as a version-1 model file (format in `edgegen_runtime::model`).
pub fn compile(q: &QModel, meta: &Meta) -> Result<Vec<u8>> {
    let (offsets, arena_len) = plan_arena(q);
    let mut data = Vec::new();
    let mut op_records = Vec::new();
    for op in &q.ops {
        let mut r = [0u8; fmt::OP_LEN];
        let (code, x, x2, y) = match *op {
            QOp::Weighted { layer, x, y, .. } => (
                match layer {
                    Layer::Conv => 1u8,
                    Layer::ConvTranspose => 2,
                    Layer::Dense => 3,
                },
                x,
                None,
                y,
            ),
            QOp::Add { a, b, y } => (4, a, Some(b), y),
            QOp::Relu { x, y } => (5, x, None, y),
            QOp::Tanh { x, y } => (6, x, None, y),
            QOp::Quantize { x, y } => (7, x, None, y),
        };
        let yt = &q.tensors[y];
        let (mut act_min, act_max) = (-128i32, 127i32);
        r[0] = code;
        r[4..6].copy_from_slice(&(x as u16).to_le_bytes());
        r[6..8].copy_from_slice(&x2.map_or(fmt::NO_TENSOR, |v| v as u16).to_le_bytes());
        r[8..10].copy_from_slice(&(y as u16).to_le_bytes());
        match op {
            QOp::Weighted { weights, weight_scales, bias, kernel, stride, pad, relu, .. } => {
                if *relu {
                    act_min = yt.zero_point;
                }
                r[10] = kernel[0] as u8;
                r[11] = kernel[1] as u8;
                r[12] = *stride as u8;
                r[13] = *pad as u8;
                let w: Vec<u8> = weights.iter().map(|&v| v as u8).collect();
                let wo = push_blob(&mut data, &w);
                let bo = push_blob(&mut data, &bias.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
                let s_in = q.tensors[x].scale as f64;
                let mut quant = Vec::new();
                for &sw in weight_scales {
                    if yt.dtype == DType::I8 {
                        let real = s_in * sw as f64 / yt.scale as f64;
                        let (m, s) = quantize_multiplier(real).with_context(|| format!("scale {real} of {} cannot be folded", yt.name))?;
                        quant.extend(m.to_le_bytes());
                        quant.extend(s.to_le_bytes());
                    } else {
                        quant.extend(((s_in * sw as f64) as f32).to_le_bytes());
                    }
                }
                let qo = push_blob(&mut data, &quant);
                r[16..20].copy_from_slice(&wo.to_le_bytes());
                r[20..24].copy_from_slice(&(w.len() as u32).to_le_bytes());
                r[24..28].copy_from_slice(&bo.to_le_bytes());
                r[28..32].copy_from_slice(&qo.to_le_bytes());
                r[32..36].copy_from_slice(&(quant.len() as u32).to_le_bytes());
            }
            QOp::Add { a, b, .. } => {
                let (sa, sb, so) = (q.tensors[*a].scale as f64, q.tensors[*b].scale as f64, yt.scale as f64);
                let left_shift = 20;
                let twice_max = 2.0 * sa.max(sb);
                let (ma, sha) = quantize_multiplier(sa / twice_max).context("Add input scale")?;
                let (mb, shb) = quantize_multiplier(sb / twice_max).context("Add input scale")?;
                let (mo, sho) = quantize_multiplier(twice_max / ((1 << left_shift) as f64 * so)).context("Add output scale")?;
                let words = [left_shift, ma, sha, mb, shb, mo, sho];
                let qo = push_blob(&mut data, &words.iter().flat_map(|v: &i32| v.to_le_bytes()).collect::<Vec<_>>());
                r[28..32].copy_from_slice(&qo.to_le_bytes());
                r[32..36].copy_from_slice(&28u32.to_le_bytes());
            }
            _ => {}
        }
        r[2] = act_min as i8 as u8;
        r[3] = act_max as i8 as u8;
        op_records.extend_from_slice(&r);
    }
    let mut tensor_records = Vec::new();
    for (i, t) in q.tensors.iter().enumerate() {
        let mut r = [0u8; fmt::TENSOR_LEN];
        r[0] = if t.dtype == DType::I8 { 0 } else { 1 };
        r[1] = t.rank as u8;
        for k in 0..3 {
            r[4 + 2 * k..6 + 2 * k].copy_from_slice(&(u16::try_from(t.dims[k]).context("dimension over 65535")?).to_le_bytes());
        }
        r[12..16].copy_from_slice(&(offsets[i] as u32).to_le_bytes());
        let len = t.len() * if t.dtype == DType::I8 { 1 } else { 4 };
        r[16..20].copy_from_slice(&(len as u32).to_le_bytes());
        r[20..24].copy_from_slice(&t.scale.to_le_bytes());
        r[24..28].copy_from_slice(&t.zero_point.to_le_bytes());
        tensor_records.extend_from_slice(&r);
    }
    let mut m = [0u8; fmt::META_LEN];
    m[0] = q.family as u8;
    m[1] = (meta.components > 0) as u8;
    m[2] = meta.components;
    m[3] = meta.guard.0;
    m[4..6].copy_from_slice(&meta.latent.to_le_bytes());
    m[6..8].copy_from_slice(&meta.guard.1.to_le_bytes());
    m[8..12].copy_from_slice(&meta.guard.2.to_le_bytes());
    m[12..16].copy_from_slice(&meta.guard.3.to_le_bytes());
    for (i, v) in meta.guard.4.iter().enumerate() {
        m[16 + 4 * i..20 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    let name = meta.name.as_bytes();
    m[32..32 + name.len().min(31)].copy_from_slice(&name[..name.len().min(31)]);

    let tensors_off = fmt::HEADER_LEN;
    let ops_off = tensors_off + tensor_records.len();
    let meta_off = ops_off + op_records.len();
    let data_off = (meta_off + fmt::META_LEN).div_ceil(16) * 16;
    let file_len = data_off + data.len();
    let mut out = vec![0u8; file_len];
    out[0..4].copy_from_slice(&fmt::MAGIC);
    out[4..6].copy_from_slice(&fmt::VERSION.to_le_bytes());
    out[6..8].copy_from_slice(&(fmt::HEADER_LEN as u16).to_le_bytes());
    out[8..12].copy_from_slice(&(file_len as u32).to_le_bytes());
    out[16..20].copy_from_slice(&(arena_len as u32).to_le_bytes());
    out[20..22].copy_from_slice(&(q.tensors.len() as u16).to_le_bytes());
    out[22..24].copy_from_slice(&(q.ops.len() as u16).to_le_bytes());
    out[24..28].copy_from_slice(&(tensors_off as u32).to_le_bytes());
    out[28..32].copy_from_slice(&(ops_off as u32).to_le_bytes());
    out[32..36].copy_from_slice(&(data_off as u32).to_le_bytes());
    out[36..40].copy_from_slice(&(data.len() as u32).to_le_bytes());
    out[40..44].copy_from_slice(&(meta_off as u32).to_le_bytes());
    out[44..46].copy_from_slice(&(q.input as u16).to_le_bytes());
    ensure!(!q.outputs.is_empty() && q.outputs.len() <= 2, "a model has 1 or 2 outputs");
    out[46..48].copy_from_slice(&(q.outputs.len() as u16).to_le_bytes());
    out[48..50].copy_from_slice(&(q.outputs[0] as u16).to_le_bytes());
    out[50..52].copy_from_slice(&(q.outputs.get(1).map_or(fmt::NO_TENSOR, |&o| o as u16)).to_le_bytes());
    out[tensors_off..ops_off].copy_from_slice(&tensor_records);
    out[ops_off..meta_off].copy_from_slice(&op_records);
    out[meta_off..meta_off + fmt::META_LEN].copy_from_slice(&m);
    out[data_off..].copy_from_slice(&data);
    let crc = fmt::crc32(&out[16..]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    edgegen_runtime::model::Model::from_bytes(&out).map_err(|e| anyhow::anyhow!("compiled file fails validation: {e}"))?;
    Ok(out)
}

/// Rewrites the guard fields of a compiled file's metadata (and its checksum).
pub fn set_guard(file: &[u8], score: u8, threshold: f32, false_reject: f32, params: [f32; 4]) -> Result<Vec<u8>> {
    let model = edgegen_runtime::model::Model::from_bytes(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let _ = model;
    let meta_off = u32::from_le_bytes(file[40..44].try_into().expect("4 bytes")) as usize;
    let mut out = file.to_vec();
    out[meta_off + 3] = score;
    out[meta_off + 6..meta_off + 8].copy_from_slice(&1u16.to_le_bytes());
    out[meta_off + 8..meta_off + 12].copy_from_slice(&threshold.to_le_bytes());
    out[meta_off + 12..meta_off + 16].copy_from_slice(&false_reject.to_le_bytes());
    for (i, v) in params.iter().enumerate() {
        out[meta_off + 16 + 4 * i..meta_off + 20 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    let crc = fmt::crc32(&out[16..]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}
