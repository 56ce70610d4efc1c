//! `edgegen export tflite`: the int8 program of a compiled part as a TFLite flatbuffer
//! (schema v3), for TensorFlow Lite Micro, LiteRT and Vela (Arm Ethos-U).
//!
//! What the file holds is exactly what the int8 engine computes, op for op:
//!
//! * tensors are NHWC (TFLite's layout; the engine's are planar `C, H, W`): every int8 tensor
//!   of the program keeps its index, scale and zero point, so tensor `i < program tensors`
//!   of the file is tensor `i` of the `.egm` file, transposed;
//! * CONV_2D, TRANSPOSE_CONV and FULLY_CONNECTED take the engine's int8 weights (per output
//!   channel, symmetric; reordered OHWI) and int32 biases (the image's half-step offset
//!   already folded in); ReLU fused where the engine fuses it; ADD and RELU otherwise. TFLite
//!   derives each requantization multiplier from the scales in double precision, as the
//!   compiler does, so the multipliers are the same integers;
//! * a dense layer reading a `C, H, W` map gets its weight columns in `H, W, C` order, and one
//!   writing a map its rows, followed by a RESHAPE;
//! * the model's f32 edges stay f32: a layer whose output the engine writes as f32
//!   (`acc · s_in · s_w`: mixture heads, `mu`/`logvar`, the generator's pre-tanh image) becomes
//!   DEQUANTIZE → the float layer with the dequantized weights; TANH runs in float; an f32 input
//!   (a latent) enters through QUANTIZE. Those ops are where a CPU takes over from an NPU.
//!   The int8 tensors those float layers read are extra graph outputs, so a delegate that
//!   keeps intermediate tensors to itself still shows them.
//!
//! The image enters as int8 `p − 128` (scale 1/127.5, zero point 0), as on the device.
//!
//! **`--npu`** ([`Edges::Int8`]) writes files an NPU runs whole: the edges become int8 — a
//! latent input is the int8 tensor the engine's QUANTIZE writes (the application quantizes
//! `z` with its scale and zero point, listed in `tflite.json`), a layer the engine writes in
//! f32 (`mu`/`logvar`, the generator's pre-tanh image) writes int8 at the scale and zero point
//! of the value's calibrated range (`calibration.json`, as every activation), and TANH runs
//! int8 → int8 (TFLite's fixed output scale 1/128). Only the mixture heads of the PixelCNN
//! and the VAE decoder stay float (a likelihood needs their precision; they are the CPU's
//! part). Those files differ from the engine at the edges by the extra rounding, measured by
//! `tests/tests/tflite.rs`; every int8 tensor before them is the same.

use crate::int8::quantize::{activation_params, Layer, QModel, QOp, QTensor, Ranges};
use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::model::DType;
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};
use tract_tflite::tflite::{
    ActivationFunctionType, AddOptions, AddOptionsArgs, Buffer, BufferArgs, BuiltinOperator, BuiltinOptions, Conv2DOptions,
    Conv2DOptionsArgs, FullyConnectedOptions, FullyConnectedOptionsArgs, Model, ModelArgs, Operator, OperatorArgs, OperatorCode,
    OperatorCodeArgs, PadOptions, PadOptionsArgs, Padding, QuantizationParameters, QuantizationParametersArgs, ReshapeOptions,
    ReshapeOptionsArgs, SubGraph, SubGraphArgs, Tensor, TensorArgs, TensorType, TransposeConvOptions, TransposeConvOptionsArgs,
};

/// What an exported file is, beside its bytes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    /// The flatbuffer.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Tensors `0..program_tensors` of the file are the program's tensors, in order.
    pub program_tensors: usize,
    /// Graph inputs: (name, NHWC shape, dtype).
    pub inputs: Vec<(String, Vec<i32>, String)>,
    /// Graph outputs: (name, NHWC shape, dtype): the program's outputs, then the int8 tensors
    /// the float layers read.
    pub outputs: Vec<(String, Vec<i32>, String)>,
    /// Operators by kind, in order.
    pub ops: Vec<String>,
    /// The float operators (where an NPU hands over to the CPU).
    pub float_ops: Vec<String>,
}

/// Scale and zero point of a tensor file-side.
#[derive(Clone)]
enum Quant {
    None,
    PerTensor(f32, i64),
    PerChannel(Vec<f32>, i32),
}

struct TensorSpec {
    name: String,
    shape: Vec<i32>,
    ty: TensorType,
    quant: Quant,
    data: Option<Vec<u8>>,
}

struct OpSpec {
    code: BuiltinOperator,
    version: i32,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    options: Options,
}

enum Options {
    None,
    Conv { padding: Padding, stride: i32, act: ActivationFunctionType },
    TransposeConv { padding: Padding, stride: i32, act: ActivationFunctionType },
    FullyConnected { act: ActivationFunctionType },
    Add,
    Reshape(Vec<i32>),
    Pad,
}

/// The NHWC shape of a program tensor (`C, H, W` rank 3 → `[1, H, W, C]`; vectors `[1, n]`).
fn nhwc(dims: [usize; 3], rank: usize) -> Vec<i32> {
    if rank == 3 {
        vec![1, dims[1] as i32, dims[2] as i32, dims[0] as i32]
    } else {
        vec![1, dims.iter().product::<usize>() as i32]
    }
}

/// The order TFLite lays out the values of a program tensor: `H, W, C` for a `C, H, W` map
/// (entry `j` is the planar index of TFLite's `j`-th value), the identity for a vector of `n`.
fn hwc_order(t: &QTensor, n: usize) -> Vec<usize> {
    if t.rank != 3 {
        return (0..n).collect();
    }
    let [c, h, w] = t.dims;
    (0..h).flat_map(|y| (0..w).flat_map(move |x| (0..c).map(move |ch| (ch * h + y) * w + x))).collect()
}

/// The file-side type of a value holding tensor `t`'s contents: float (`float`: the value is a
/// float copy or a float tensor), or int8 with `t`'s scale and zero point.
fn file_type(t: &QTensor, float: bool) -> (TensorType, Quant) {
    if float {
        (TensorType::FLOAT32, Quant::None)
    } else {
        (TensorType::INT8, Quant::PerTensor(t.scale, t.zero_point as i64))
    }
}

fn ty_name(t: TensorType) -> String {
    match t {
        TensorType::INT8 => "int8",
        TensorType::INT32 => "int32",
        _ => "float32",
    }
    .to_string()
}

fn bytes_i8(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

fn bytes_i32(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// TFLite's SAME padding before the first row/column for `input`, `output`, `kernel` and
/// `stride` (`total = max((out − 1)·s + k − in, 0)`, the smaller half first); for a transposed
/// convolution the roles of input and output swap.
fn same_pad(input: usize, output: usize, kernel: usize, stride: usize, transpose: bool) -> Option<usize> {
    let (small, large) = if transpose { (input, output) } else { (output, input) };
    if small != large.div_ceil(stride) {
        return None;
    }
    let total = ((small - 1) * stride + kernel).saturating_sub(large);
    Some(total / 2)
}

struct Writer<'q> {
    q: &'q QModel,
    tensors: Vec<TensorSpec>,
    ops: Vec<OpSpec>,
    extra_outputs: Vec<i32>,
    /// Float copies made so far: (program tensor, file tensor).
    dequantized: Vec<(usize, i32)>,
}

impl<'q> Writer<'q> {
    fn add_tensor(&mut self, t: TensorSpec) -> i32 {
        self.tensors.push(t);
        self.tensors.len() as i32 - 1
    }

    fn constant(&mut self, name: String, shape: Vec<i32>, ty: TensorType, quant: Quant, data: Vec<u8>) -> i32 {
        self.add_tensor(TensorSpec { name, shape, ty, quant, data: Some(data) })
    }

    fn op(&mut self, code: BuiltinOperator, version: i32, inputs: Vec<i32>, outputs: Vec<i32>, options: Options) {
        self.ops.push(OpSpec { code, version, inputs, outputs, options });
    }

    /// A float copy of int8 tensor `x` (DEQUANTIZE), listed as an extra graph output.
    fn dequantized(&mut self, x: usize) -> i32 {
        if let Some(&(_, y)) = self.dequantized.iter().find(|(p, _)| *p == x) {
            return y;
        }
        let t = &self.q.tensors[x];
        let (name, shape) = (format!("{}_f32", t.name), nhwc(t.dims, t.rank));
        let y = self.add_tensor(TensorSpec { name, shape, ty: TensorType::FLOAT32, quant: Quant::None, data: None });
        self.op(BuiltinOperator::DEQUANTIZE, 2, vec![x as i32], vec![y], Options::None);
        self.dequantized.push((x, y));
        if !self.extra_outputs.contains(&(x as i32)) {
            self.extra_outputs.push(x as i32);
        }
        y
    }

    /// The weights `[Co, Ci, kh, kw]` reordered `[Co, kh, kw, Ci]`.
    fn ohwi<T: Copy>(w: &[T], co: usize, ci: usize, kh: usize, kw: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(w.len());
        for o in 0..co {
            for y in 0..kh {
                for x in 0..kw {
                    for i in 0..ci {
                        out.push(w[((o * ci + i) * kh + y) * kw + x]);
                    }
                }
            }
        }
        out
    }

    fn weighted(&mut self, op: &QOp) -> Result<()> {
        let QOp::Weighted { layer, x, y, weights, weight_scales, bias, kernel, stride, pad, relu } = op else { unreachable!() };
        let (xt, yt) = (&self.q.tensors[*x], &self.q.tensors[*y]);
        let float = yt.dtype == DType::F32;
        let co = weight_scales.len();
        let ci = weights.len() / (co * kernel[0] * kernel[1]).max(1);
        let [kh, kw] = *kernel;
        let act = if *relu { ActivationFunctionType::RELU } else { ActivationFunctionType::NONE };
        let name = yt.name.clone();
        // The input: int8 as it is, or its float copy for a float layer.
        let input = if float { self.dequantized(*x) } else { *x as i32 };
        let s_in = xt.scale as f64;
        // Output channel order: a dense layer writing a map gives its rows in H, W, C order.
        let channel_order = if *layer == Layer::Dense { hwc_order(yt, co) } else { (0..co).collect() };
        // Weights and bias, int8/int32 per channel or float (dequantized exactly as the engine
        // scales its accumulator: acc · (s_in · s_w), bias included).
        let (w_layout, wshape): (Vec<usize>, Vec<i32>) = match layer {
            Layer::Dense => {
                // Columns in the order TFLite flattens the input (H, W, C for a map).
                let cols = hwc_order(xt, ci);
                let order = channel_order.iter().flat_map(|&r| cols.iter().map(move |&c| r * ci + c)).collect();
                (order, vec![co as i32, ci as i32])
            }
            Layer::Conv | Layer::ConvTranspose => {
                let idx: Vec<usize> = (0..weights.len()).collect();
                (Self::ohwi(&idx, co, ci, kh, kw), vec![co as i32, kh as i32, kw as i32, ci as i32])
            }
        };
        let per_row = weights.len() / co;
        let (w_t, b_t) = if float {
            let wf: Vec<f32> = w_layout.iter().map(|&i| weights[i] as f32 * weight_scales[i / per_row]).collect();
            let bf: Vec<f32> = channel_order.iter().map(|&c| (bias[c] as f64 * s_in * weight_scales[c] as f64) as f32).collect();
            let w_t = self.constant(format!("{name}/weights"), wshape.clone(), TensorType::FLOAT32, Quant::None, bytes_f32(&wf));
            let b_t = self.constant(format!("{name}/bias"), vec![co as i32], TensorType::FLOAT32, Quant::None, bytes_f32(&bf));
            (w_t, b_t)
        } else {
            let wq: Vec<i8> = w_layout.iter().map(|&i| weights[i]).collect();
            let scales: Vec<f32> = channel_order.iter().map(|&c| weight_scales[c]).collect();
            let bq: Vec<i32> = channel_order.iter().map(|&c| bias[c]).collect();
            let bias_scales: Vec<f32> = scales.iter().map(|&s| (s_in * s as f64) as f32).collect();
            let w_t =
                self.constant(format!("{name}/weights"), wshape.clone(), TensorType::INT8, Quant::PerChannel(scales, 0), bytes_i8(&wq));
            let b_t = self.constant(
                format!("{name}/bias"),
                vec![co as i32],
                TensorType::INT32,
                Quant::PerChannel(bias_scales, 0),
                bytes_i32(&bq),
            );
            (w_t, b_t)
        };
        let out = *y as i32;
        match layer {
            Layer::Conv => {
                let [_, hi, wi] = xt.dims;
                let [_, ho, wo] = yt.dims;
                let same = (same_pad(hi, ho, kh, *stride, false), same_pad(wi, wo, kw, *stride, false));
                let (input, padding) = if same == (Some(*pad), Some(*pad)) {
                    (input, Padding::SAME)
                } else if *pad == 0 {
                    (input, Padding::VALID)
                } else {
                    // Explicit padding: PAD fills with the zero point (the value 0).
                    let p = *pad as i32;
                    let pads = self.constant(
                        format!("{name}/pads"),
                        vec![4, 2],
                        TensorType::INT32,
                        Quant::None,
                        bytes_i32(&[0, 0, p, p, p, p, 0, 0]),
                    );
                    let mut shape = nhwc(xt.dims, xt.rank);
                    shape[1] += 2 * p;
                    shape[2] += 2 * p;
                    let (ty, quant) = file_type(xt, float);
                    let padded = self.add_tensor(TensorSpec { name: format!("{name}/padded"), shape, ty, quant, data: None });
                    self.op(BuiltinOperator::PAD, 2, vec![input, pads], vec![padded], Options::Pad);
                    (padded, Padding::VALID)
                };
                self.op(
                    BuiltinOperator::CONV_2D,
                    if float { 1 } else { 3 },
                    vec![input, w_t, b_t],
                    vec![out],
                    Options::Conv { padding, stride: *stride as i32, act },
                );
            }
            Layer::ConvTranspose => {
                let [_, hi, wi] = xt.dims;
                let [_, ho, wo] = yt.dims;
                let same = (same_pad(hi, ho, kh, *stride, true), same_pad(wi, wo, kw, *stride, true));
                let padding = if same == (Some(*pad), Some(*pad)) {
                    Padding::SAME
                } else if *pad == 0 && ho == (hi - 1) * stride + kh && wo == (wi - 1) * stride + kw {
                    Padding::VALID
                } else {
                    bail!("{name}: a transposed convolution with padding {pad} is neither SAME nor VALID in TFLite");
                };
                let shape = self.constant(
                    format!("{name}/output_shape"),
                    vec![4],
                    TensorType::INT32,
                    Quant::None,
                    bytes_i32(&nhwc(yt.dims, yt.rank)),
                );
                self.op(
                    BuiltinOperator::TRANSPOSE_CONV,
                    if float { 3 } else { 4 },
                    vec![shape, w_t, input, b_t],
                    vec![out],
                    Options::TransposeConv { padding, stride: *stride as i32, act },
                );
            }
            Layer::Dense => {
                // The dense layer writes a vector; for a map, a RESHAPE makes it the map.
                let fc_out = if yt.rank == 3 {
                    let (ty, quant) = file_type(yt, float);
                    let shape = vec![1, yt.len() as i32];
                    self.add_tensor(TensorSpec { name: format!("{name}/flat"), shape, ty, quant, data: None })
                } else {
                    out
                };
                let version = if float { 1 } else { 5 };
                self.op(BuiltinOperator::FULLY_CONNECTED, version, vec![input, w_t, b_t], vec![fc_out], Options::FullyConnected { act });
                if fc_out != out {
                    let target = nhwc(yt.dims, 3);
                    let shape_t = self.constant(format!("{name}/shape"), vec![4], TensorType::INT32, Quant::None, bytes_i32(&target));
                    self.op(BuiltinOperator::RESHAPE, 1, vec![fc_out, shape_t], vec![out], Options::Reshape(target));
                }
            }
        }
        Ok(())
    }
}

/// How the f32 edges of a program are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edges {
    /// As the engine computes them: float layers after a DEQUANTIZE (the CPU's part beside an
    /// NPU), a latent through QUANTIZE.
    Float,
    /// For an NPU: every edge int8 but the mixture heads (see the module's documentation).
    Int8,
}

/// Program `q` with its edges int8 ([`Edges::Int8`]): the latent input is the QUANTIZE's
/// output (that op dropped), each f32 tensor but `keep_float` int8 at its calibrated range's
/// parameters (TANH's input within ±3, its output at 1/128, zero point 0).
fn with_int8_edges(q: &QModel, ranges: &Ranges, keep_float: Option<usize>) -> Result<QModel> {
    let mut q = q.clone();
    if let Some(i) = q.ops.iter().position(|o| matches!(o, QOp::Quantize { x, .. } if *x == q.input)) {
        let QOp::Quantize { y, .. } = q.ops.remove(i) else { unreachable!() };
        q.input = y;
    }
    let tanh: Vec<(usize, usize)> = q.ops.iter().filter_map(|o| if let QOp::Tanh { x, y } = o { Some((*x, *y)) } else { None }).collect();
    let written: Vec<usize> = q.ops.iter().map(QOp::output).collect();
    for (i, t) in q.tensors.iter_mut().enumerate() {
        if t.dtype != DType::F32 || Some(i) == keep_float || !written.contains(&i) {
            continue;
        }
        (t.scale, t.zero_point) = if tanh.iter().any(|&(_, y)| y == i) {
            (1.0 / 128.0, 0)
        } else {
            let &(lo, hi) = ranges.get(&t.name).with_context(|| format!("no calibration range for {}", t.name))?;
            // TANH's int8 output ends at 127/128 = tanh(2.77): its input needs no range beyond
            // ±3, and the finer steps carry through to the image.
            let clip = if tanh.iter().any(|&(x, _)| x == i) { 3.0 } else { f32::INFINITY };
            activation_params(lo.max(-clip), hi.min(clip))
        };
        t.dtype = DType::I8;
    }
    Ok(q)
}

/// The TFLite flatbuffer of quantized program `q` (`description`: the model's name and what it
/// computes).
pub fn tflite(q: &QModel, description: &str) -> Result<Exported> {
    let mut w = Writer { q, tensors: Vec::new(), ops: Vec::new(), extra_outputs: Vec::new(), dequantized: Vec::new() };
    for t in &q.tensors {
        let (ty, quant) = file_type(t, t.dtype == DType::F32);
        w.tensors.push(TensorSpec { name: t.name.clone(), shape: nhwc(t.dims, t.rank), ty, quant, data: None });
    }
    for op in &q.ops {
        match op {
            QOp::Weighted { .. } => w.weighted(op)?,
            QOp::Add { a, b, y } => {
                w.op(BuiltinOperator::ADD, 2, vec![*a as i32, *b as i32], vec![*y as i32], Options::Add);
            }
            QOp::Relu { x, y } => w.op(BuiltinOperator::RELU, 2, vec![*x as i32], vec![*y as i32], Options::None),
            QOp::Tanh { x, y } => {
                let version = if q.tensors[*y].dtype == DType::I8 { 2 } else { 1 };
                w.op(BuiltinOperator::TANH, version, vec![*x as i32], vec![*y as i32], Options::None)
            }
            QOp::Quantize { x, y } => w.op(BuiltinOperator::QUANTIZE, 2, vec![*x as i32], vec![*y as i32], Options::None),
        }
    }
    ensure!(!w.ops.is_empty(), "the program has no operators");
    let inputs = vec![q.input as i32];
    let mut outputs: Vec<i32> = q.outputs.iter().map(|&o| o as i32).collect();
    outputs.extend(w.extra_outputs.iter().copied());
    let describe = |w: &Writer, i: i32| {
        let t = &w.tensors[i as usize];
        (t.name.clone(), t.shape.clone(), ty_name(t.ty))
    };
    let op_name = |c: BuiltinOperator| c.variant_name().unwrap_or("?").to_string();
    let float_ops = w
        .ops
        .iter()
        .filter(|o| {
            o.outputs
                .iter()
                .chain(&o.inputs)
                .any(|&t| w.tensors[t as usize].ty == TensorType::FLOAT32 && w.tensors[t as usize].data.is_none())
        })
        .map(|o| op_name(o.code))
        .collect();
    let mut exported = Exported {
        bytes: Vec::new(),
        program_tensors: q.tensors.len(),
        inputs: inputs.iter().map(|&i| describe(&w, i)).collect(),
        outputs: outputs.iter().map(|&i| describe(&w, i)).collect(),
        ops: w.ops.iter().map(|o| op_name(o.code)).collect(),
        float_ops,
    };
    exported.bytes = serialize(&w, &inputs, &outputs, description);
    Ok(exported)
}

fn serialize(w: &Writer, inputs: &[i32], outputs: &[i32], description: &str) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::with_capacity(1 << 16);
    // Buffer 0 is the empty sentinel every tensor without data points at.
    let mut buffers = vec![Buffer::create(&mut fbb, &BufferArgs { data: None })];
    let mut tensors = Vec::with_capacity(w.tensors.len());
    for t in &w.tensors {
        let buffer = match &t.data {
            Some(d) => {
                let data = fbb.create_vector(d);
                buffers.push(Buffer::create(&mut fbb, &BufferArgs { data: Some(data) }));
                (buffers.len() - 1) as u32
            }
            None => 0,
        };
        let quantization = match &t.quant {
            Quant::None => None,
            Quant::PerTensor(s, z) => {
                let (scale, zero_point) = (fbb.create_vector(&[*s]), fbb.create_vector(&[*z]));
                Some(QuantizationParameters::create(
                    &mut fbb,
                    &QuantizationParametersArgs { scale: Some(scale), zero_point: Some(zero_point), ..Default::default() },
                ))
            }
            Quant::PerChannel(s, dim) => {
                let zeros = vec![0i64; s.len()];
                let (scale, zero_point) = (fbb.create_vector(s), fbb.create_vector(&zeros));
                Some(QuantizationParameters::create(
                    &mut fbb,
                    &QuantizationParametersArgs {
                        scale: Some(scale),
                        zero_point: Some(zero_point),
                        quantized_dimension: *dim,
                        ..Default::default()
                    },
                ))
            }
        };
        let (shape, name) = (fbb.create_vector(&t.shape), fbb.create_string(&t.name));
        tensors.push(Tensor::create(
            &mut fbb,
            &TensorArgs { shape: Some(shape), type_: t.ty, buffer, name: Some(name), quantization, ..Default::default() },
        ));
    }
    let mut codes: Vec<(BuiltinOperator, i32)> = Vec::new();
    let mut operators = Vec::with_capacity(w.ops.len());
    for op in &w.ops {
        let index = match codes.iter().position(|c| *c == (op.code, op.version)) {
            Some(i) => i,
            None => {
                codes.push((op.code, op.version));
                codes.len() - 1
            }
        } as u32;
        let (options_type, options): (BuiltinOptions, Option<WIPOffset<UnionWIPOffset>>) = match &op.options {
            Options::None => (BuiltinOptions::NONE, None),
            Options::Conv { padding, stride, act } => (
                BuiltinOptions::Conv2DOptions,
                Some(
                    Conv2DOptions::create(
                        &mut fbb,
                        &Conv2DOptionsArgs {
                            padding: *padding,
                            stride_w: *stride,
                            stride_h: *stride,
                            fused_activation_function: *act,
                            dilation_w_factor: 1,
                            dilation_h_factor: 1,
                        },
                    )
                    .as_union_value(),
                ),
            ),
            Options::TransposeConv { padding, stride, act } => (
                BuiltinOptions::TransposeConvOptions,
                Some(
                    TransposeConvOptions::create(
                        &mut fbb,
                        &TransposeConvOptionsArgs {
                            padding: *padding,
                            stride_w: *stride,
                            stride_h: *stride,
                            fused_activation_function: *act,
                        },
                    )
                    .as_union_value(),
                ),
            ),
            Options::FullyConnected { act } => (
                BuiltinOptions::FullyConnectedOptions,
                Some(
                    FullyConnectedOptions::create(
                        &mut fbb,
                        &FullyConnectedOptionsArgs { fused_activation_function: *act, ..Default::default() },
                    )
                    .as_union_value(),
                ),
            ),
            Options::Add => {
                (BuiltinOptions::AddOptions, Some(AddOptions::create(&mut fbb, &AddOptionsArgs { ..Default::default() }).as_union_value()))
            }
            Options::Reshape(shape) => {
                let new_shape = fbb.create_vector(shape);
                (
                    BuiltinOptions::ReshapeOptions,
                    Some(ReshapeOptions::create(&mut fbb, &ReshapeOptionsArgs { new_shape: Some(new_shape) }).as_union_value()),
                )
            }
            Options::Pad => (BuiltinOptions::PadOptions, Some(PadOptions::create(&mut fbb, &PadOptionsArgs {}).as_union_value())),
        };
        let (ins, outs) = (fbb.create_vector(&op.inputs), fbb.create_vector(&op.outputs));
        operators.push(Operator::create(
            &mut fbb,
            &OperatorArgs {
                opcode_index: index,
                inputs: Some(ins),
                outputs: Some(outs),
                builtin_options_type: options_type,
                builtin_options: options,
                ..Default::default()
            },
        ));
    }
    let (tensors, operators) = (fbb.create_vector(&tensors), fbb.create_vector(&operators));
    let (sub_in, sub_out, sub_name) = (fbb.create_vector(inputs), fbb.create_vector(outputs), fbb.create_string("main"));
    let subgraph = SubGraph::create(
        &mut fbb,
        &SubGraphArgs {
            tensors: Some(tensors),
            inputs: Some(sub_in),
            outputs: Some(sub_out),
            operators: Some(operators),
            name: Some(sub_name),
        },
    );
    let codes: Vec<_> = codes
        .iter()
        .map(|&(code, version)| {
            OperatorCode::create(
                &mut fbb,
                &OperatorCodeArgs { deprecated_builtin_code: code.0.min(127) as i8, custom_code: None, version, builtin_code: code },
            )
        })
        .collect();
    let (codes, subgraphs, buffers) = (fbb.create_vector(&codes), fbb.create_vector(&[subgraph]), fbb.create_vector(&buffers));
    let description = fbb.create_string(description);
    let model = Model::create(
        &mut fbb,
        &ModelArgs {
            version: 3,
            operator_codes: Some(codes),
            subgraphs: Some(subgraphs),
            description: Some(description),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    fbb.finish(model, Some("TFL3"));
    fbb.finished_data().to_vec()
}

/// `edgegen export tflite`: every compiled part of model directory `dir` as
/// `<out>/<part>.tflite`, and `<out>/tflite.json` saying what each file takes and gives.
/// Each file is written to a temporary name and renamed. Returns the report.
pub fn export_dir(dir: &std::path::Path, out: &std::path::Path, edges: Edges) -> Result<serde_json::Value> {
    let card = crate::export::card::Card::read(dir)?;
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let mut parts = serde_json::Map::new();
    for &part in card.model_family().parts() {
        let (graph, q, ranges) = crate::int8::load_program_with_ranges(dir, part)?;
        let (q, what) = match edges {
            Edges::Float => (q, "the int8 program of"),
            Edges::Int8 => {
                // The mixture heads of a likelihood model stay float.
                let head = matches!(graph.family.as_str(), "vae-decoder" | "pixelcnn").then(|| q.outputs[0]);
                (with_int8_edges(&q, &ranges, head)?, "for an NPU (int8 edges, the mixture head float): the int8 program of")
            }
        };
        let description =
            format!("edgegen {}/{part}: {what} {part}.egm (NHWC; image input int8 p-128 at scale 1/127.5, zero point 0)", card.name);
        let e = tflite(&q, &description)?;
        let file = out.join(format!("{part}.tflite"));
        crate::data::write_atomic(&file, &e.bytes)?;
        let mut entry = serde_json::to_value(&e)?;
        entry["file"] = serde_json::json!(format!("{part}.tflite"));
        entry["bytes"] = serde_json::json!(e.bytes.len());
        parts.insert(part.to_string(), entry);
    }
    let report = serde_json::json!({
        "model": card.name,
        "edges": match edges { Edges::Float => "float (as the engine computes them)", Edges::Int8 => "int8 (for an NPU; the mixture heads float)" },
        "schema": "TFLite schema v3 (tract-tflite 0.23.9's generated code, flatbuffers 25)",
        "layout": "NHWC; tensors 0..program_tensors are the .egm file's tensors in order",
        "parts": parts,
    });
    crate::data::write_atomic(&out.join("tflite.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_the_engine_geometries() {
        // 3x3 stride 1 pad 1, 7x7 stride 1 pad 3 (any size), 4x4 stride 2 pad 1 on even sizes.
        assert_eq!(same_pad(28, 28, 3, 1, false), Some(1));
        assert_eq!(same_pad(9, 9, 7, 1, false), Some(3));
        assert_eq!(same_pad(28, 14, 4, 2, false), Some(1));
        assert_eq!(same_pad(7, 14, 4, 2, true), Some(1));
        // 3x3 stride 2 pad 1 on 28: TFLite pads 0 before, the engine 1: not SAME.
        assert_eq!(same_pad(28, 14, 3, 2, false), Some(0));
    }
}
