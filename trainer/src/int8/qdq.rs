//! The quantized program as standard QDQ ONNX: int8 weights and int32 biases behind
//! `DequantizeLinear` (per channel), every int8 activation through a
//! `QuantizeLinear`/`DequantizeLinear` pair, float ops in between. No vendor ops, so tract
//! and onnxruntime both run it; it is the reference the int8 engine is checked against.
//! Image models take the int8 image (`p − 128`) directly: feeding floats would make every
//! pixel a rounding tie for `QuantizeLinear`.

use crate::export::onnx::{i64_tensor, Attr, GraphBuilder};
use crate::int8::quantize::{Layer, QModel, QOp, IMAGE_SCALE};
use edgegen_runtime::model::DType;
use tract_onnx::pb::{tensor_proto::DataType, ModelProto, TensorProto};

fn tensor(name: &str, dims: &[usize], dt: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dt as i32,
        raw_data: raw,
        ..Default::default()
    }
}

struct Qdq {
    g: GraphBuilder,
    inits: Vec<TensorProto>,
}

impl Qdq {
    fn init(&mut self, t: TensorProto) -> String {
        let name = t.name.clone();
        self.inits.push(t);
        name
    }

    fn scalar_qparams(&mut self, base: &str, scale: f32, zp: i32) -> (String, String) {
        let s = self.init(tensor(&format!("{base}.scale"), &[], DataType::Float, scale.to_le_bytes().to_vec()));
        let z = self.init(tensor(&format!("{base}.zero_point"), &[], DataType::Int8, vec![zp as i8 as u8]));
        (s, z)
    }

    /// Quantize then dequantize `x` (float) as tensor `name`; returns the float name.
    fn qdq(&mut self, x: &str, name: &str, scale: f32, zp: i32) -> String {
        let (s, z) = self.scalar_qparams(name, scale, zp);
        let q = self.g.node("QuantizeLinear", &[x, &s, &z], Some(&format!("{name}_q")), &[]);
        self.g.node("DequantizeLinear", &[&q, &s, &z], Some(name), &[])
    }
}

/// Writes the QDQ model. `doc` goes into the file's doc string.
pub fn qdq_onnx(q: &QModel, doc: &str, family: &str) -> ModelProto {
    let mut b = Qdq { g: GraphBuilder::new(), inits: Vec::new() };
    let mut value: Vec<String> = vec![String::new(); q.tensors.len()];
    // Internal values are named by tensor index (`t7`), which no generated node name can
    // take; the graph's input and outputs keep their ONNX names.
    let vname = |i: usize| if i == q.input || q.outputs.contains(&i) { q.tensors[i].name.clone() } else { format!("t{i}") };
    let input = &q.tensors[q.input];
    let shape4 =
        |t: &crate::int8::quantize::QTensor| -> Vec<usize> { std::iter::once(1).chain(t.dims[..t.rank].iter().copied()).collect() };
    if input.dtype == DType::I8 {
        b.g.input_typed("image_q", DataType::Int8, &shape4(input));
        let (s, z) = b.scalar_qparams("image", IMAGE_SCALE, 0);
        value[q.input] = b.g.node("DequantizeLinear", &["image_q", &s, &z], Some(&input.name), &[]);
    } else {
        b.g.input(&input.name, &shape4(input));
        value[q.input] = input.name.clone();
    }
    for (i, op) in q.ops.iter().enumerate() {
        let y = &q.tensors[op.output()];
        match op {
            QOp::Quantize { x, .. } => {
                let v = b.qdq(&value[*x], &vname(op.output()), y.scale, y.zero_point);
                value[op.output()] = v;
            }
            QOp::Relu { x, .. } => {
                let r = b.g.relu(&value[*x]);
                value[op.output()] = b.qdq(&r, &vname(op.output()), y.scale, y.zero_point);
            }
            QOp::Tanh { x, .. } => {
                value[op.output()] = b.g.node("Tanh", &[&value[*x]], Some(&vname(op.output())), &[]);
            }
            QOp::Add { a, b: bb, .. } => {
                let s = b.g.node("Add", &[&value[*a], &value[*bb]], None, &[]);
                value[op.output()] = b.qdq(&s, &vname(op.output()), y.scale, y.zero_point);
            }
            QOp::Weighted { layer, x, weights, weight_scales, bias, kernel, stride, pad, relu, .. } => {
                let xt = &q.tensors[*x];
                let co = weight_scales.len();
                let per = weights.len() / co;
                // Back to the ONNX layouts: Conv [O,I,kh,kw]; ConvTranspose [I,O,kh,kw]; Gemm [in,out].
                let (w_onnx, dims, axis): (Vec<i8>, Vec<usize>, i64) = match layer {
                    Layer::Conv => (weights.clone(), vec![co, per / (kernel[0] * kernel[1]), kernel[0], kernel[1]], 0),
                    Layer::ConvTranspose => {
                        let ci = per / (kernel[0] * kernel[1]);
                        let kk = kernel[0] * kernel[1];
                        let mut w = vec![0i8; weights.len()];
                        for o in 0..co {
                            for c in 0..ci {
                                w[(c * co + o) * kk..(c * co + o + 1) * kk]
                                    .copy_from_slice(&weights[(o * ci + c) * kk..(o * ci + c + 1) * kk]);
                            }
                        }
                        (w, vec![ci, co, kernel[0], kernel[1]], 1)
                    }
                    Layer::Dense => {
                        let mut w = vec![0i8; weights.len()];
                        for o in 0..co {
                            for k in 0..per {
                                w[k * co + o] = weights[o * per + k];
                            }
                        }
                        (w, vec![per, co], 1)
                    }
                };
                let base = format!("layer{i}");
                let wq = b.init(tensor(&format!("{base}.weight_q"), &dims, DataType::Int8, w_onnx.iter().map(|&v| v as u8).collect()));
                let ws = b.init(tensor(
                    &format!("{base}.weight_scale"),
                    &[co],
                    DataType::Float,
                    weight_scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ));
                let wz = b.init(tensor(&format!("{base}.weight_zero_point"), &[co], DataType::Int8, vec![0; co]));
                let w = b.g.node("DequantizeLinear", &[&wq, &ws, &wz], Some(&format!("{base}.weight")), &[("axis", Attr::Int(axis))]);
                let bq =
                    b.init(tensor(&format!("{base}.bias_q"), &[co], DataType::Int32, bias.iter().flat_map(|v| v.to_le_bytes()).collect()));
                let bs = b.init(tensor(
                    &format!("{base}.bias_scale"),
                    &[co],
                    DataType::Float,
                    weight_scales.iter().flat_map(|&sw| (xt.scale * sw).to_le_bytes()).collect(),
                ));
                let bz = b.init(tensor(&format!("{base}.bias_zero_point"), &[co], DataType::Int32, vec![0; 4 * co]));
                let bias_f = b.g.node("DequantizeLinear", &[&bq, &bs, &bz], Some(&format!("{base}.bias")), &[("axis", Attr::Int(0))]);
                let conv_attrs = |k: [usize; 2]| {
                    vec![
                        ("kernel_shape", Attr::Ints(vec![k[0] as i64, k[1] as i64])),
                        ("strides", Attr::Ints(vec![*stride as i64; 2])),
                        ("pads", Attr::Ints(vec![*pad as i64; 4])),
                    ]
                };
                let mut out = match layer {
                    Layer::Conv => b.g.node("Conv", &[&value[*x], &w, &bias_f], None, &conv_attrs(*kernel)),
                    Layer::ConvTranspose => b.g.node("ConvTranspose", &[&value[*x], &w, &bias_f], None, &conv_attrs(*kernel)),
                    Layer::Dense => {
                        let flat = if xt.rank == 1 {
                            value[*x].clone()
                        } else {
                            reshape(&mut b, &value[*x], &[1, xt.len() as i64], &format!("{base}.in_shape"))
                        };
                        b.g.node("Gemm", &[&flat, &w, &bias_f], None, &[])
                    }
                };
                if *layer == Layer::Dense && y.rank == 3 {
                    out = reshape(&mut b, &out, &[1, y.dims[0] as i64, y.dims[1] as i64, y.dims[2] as i64], &format!("{base}.out_shape"));
                }
                if *relu {
                    out = b.g.relu(&out);
                }
                value[op.output()] = if y.dtype == DType::I8 {
                    b.qdq(&out, &vname(op.output()), y.scale, y.zero_point)
                } else {
                    b.g.node("Identity", &[&out], Some(&vname(op.output())), &[])
                };
            }
        }
    }
    for &o in &q.outputs {
        let t = &q.tensors[o];
        b.g.output(&t.name, &shape4(t));
    }
    let inits = std::mem::take(&mut b.inits);
    let mut model = b.g.finish(
        &format!("{family}_int8"),
        doc,
        &[
            ("family", family.to_string()),
            ("quantization", "int8 QDQ: per-channel symmetric weights, per-tensor asymmetric activations, int32 bias".into()),
        ],
    );
    if let Some(g) = model.graph.as_mut() {
        g.initializer.extend(inits);
    }
    model
}

fn reshape(b: &mut Qdq, x: &str, shape: &[i64], name: &str) -> String {
    let s = b.init(i64_tensor(name, &[shape.len()], shape));
    b.g.node("Reshape", &[x, &s], None, &[])
}
