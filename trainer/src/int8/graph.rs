//! A small graph IR of edgegen's exported ONNX files (the closed op set the device runs),
//! with shape inference and a float evaluator. The quantizer reads ONNX through this, so it
//! works from the published file, not from burn: what is quantized is exactly what tract
//! and onnxruntime run.

use anyhow::{bail, ensure, Context, Result};
use prost::Message;
use std::collections::HashMap;
use tract_onnx::pb::{tensor_proto::DataType, ModelProto, TensorProto};

/// One node of the IR. Tensor names are ONNX value names.
#[derive(Debug, Clone)]
pub enum Node {
    /// Conv, weight `[O, I, kh, kw]`.
    Conv { x: String, w: Vec<f32>, wshape: [usize; 4], b: Vec<f32>, stride: usize, pad: usize, y: String },
    /// ConvTranspose, weight `[I, O, kh, kw]` (ONNX layout).
    ConvTranspose { x: String, w: Vec<f32>, wshape: [usize; 4], b: Vec<f32>, stride: usize, pad: usize, y: String },
    /// Gemm `y = x · W + b`, W `[in, out]`.
    Gemm { x: String, w: Vec<f32>, d_in: usize, d_out: usize, b: Vec<f32>, y: String },
    /// Relu.
    Relu { x: String, y: String },
    /// LeakyRelu (the discriminator only; not compiled for devices).
    LeakyRelu { x: String, alpha: f32, y: String },
    /// Tanh.
    Tanh { x: String, y: String },
    /// Elementwise Add.
    Add { a: String, b: String, y: String },
    /// Reshape to a static shape (a view: same values).
    Reshape { x: String, y: String },
}

impl Node {
    /// The output name.
    pub fn output(&self) -> &str {
        match self {
            Node::Conv { y, .. }
            | Node::ConvTranspose { y, .. }
            | Node::Gemm { y, .. }
            | Node::Relu { y, .. }
            | Node::LeakyRelu { y, .. }
            | Node::Tanh { y, .. }
            | Node::Add { y, .. }
            | Node::Reshape { y, .. } => y,
        }
    }

    /// The input names.
    pub fn inputs(&self) -> Vec<&str> {
        match self {
            Node::Add { a, b, .. } => vec![a, b],
            Node::Conv { x, .. }
            | Node::ConvTranspose { x, .. }
            | Node::Gemm { x, .. }
            | Node::Relu { x, .. }
            | Node::LeakyRelu { x, .. }
            | Node::Tanh { x, .. }
            | Node::Reshape { x, .. } => vec![x],
        }
    }
}

/// A parsed graph with static shapes (batch 1 dropped).
#[derive(Debug, Clone)]
pub struct Graph {
    /// Graph input name.
    pub input: String,
    /// Graph output names.
    pub outputs: Vec<String>,
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// Shape of every value without the batch dimension.
    pub shapes: HashMap<String, Vec<usize>>,
    /// The model's `family` metadata.
    pub family: String,
}

/// An initializer's f32 values (an error for another element type).
pub(crate) fn floats(t: &TensorProto) -> Result<Vec<f32>> {
    ensure!(t.data_type == DataType::Float as i32, "initializer {} is not float", t.name);
    Ok(if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    })
}

fn attr_ints(n: &tract_onnx::pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.ints.clone())
}

/// The static dims of a graph value (an error names a dynamic one).
pub fn input_dims(t: &tract_onnx::pb::ValueInfoProto) -> Result<Vec<usize>> {
    dims_of(t)
}

fn dims_of(t: &tract_onnx::pb::ValueInfoProto) -> Result<Vec<usize>> {
    use tract_onnx::pb::{tensor_shape_proto::dimension::Value, type_proto};
    let Some(type_proto::Value::TensorType(tt)) = t.r#type.as_ref().and_then(|t| t.value.clone()) else {
        bail!("{}: not a tensor", t.name)
    };
    tt.shape
        .context("no shape")?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Value::DimValue(v)) if v > 0 => Ok(v as usize),
            _ => bail!("{}: dynamic dimension", t.name),
        })
        .collect()
}

impl Graph {
    /// Parses an ONNX file written by edgegen (any other op is an error naming it).
    pub fn load(path: &std::path::Path) -> Result<Graph> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("{}", path.display()))
    }

    /// Parses ONNX bytes.
    pub fn parse(bytes: &[u8]) -> Result<Graph> {
        let model = ModelProto::decode(bytes).context("not an ONNX model")?;
        let g = model.graph.context("ONNX model without a graph")?;
        let init: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        ensure!(g.input.len() == 1, "expected one graph input");
        let input = g.input[0].name.clone();
        let in_dims = dims_of(&g.input[0])?;
        ensure!(in_dims.first() == Some(&1), "batch dimension must be 1");
        let mut shapes = HashMap::new();
        shapes.insert(input.clone(), in_dims[1..].to_vec());
        let weight = |name: &str| -> Result<(&TensorProto, Vec<f32>)> {
            let t = init.get(name).with_context(|| format!("{name} is not an initializer"))?;
            Ok((t, floats(t)?))
        };
        let mut nodes = Vec::new();
        for n in &g.node {
            let y = n.output.first().context("node without output")?.clone();
            let x = n.input.first().context("node without input")?.clone();
            let xs = shapes.get(&x).with_context(|| format!("{} reads unknown value {x}", n.op_type))?.clone();
            let (node, ys): (Node, Vec<usize>) = match n.op_type.as_str() {
                "Conv" | "ConvTranspose" => {
                    let (wt, w) = weight(&n.input[1])?;
                    let (_, b) = weight(n.input.get(2).context("conv without bias")?)?;
                    let ws: Vec<usize> = wt.dims.iter().map(|&d| d as usize).collect();
                    ensure!(ws.len() == 4 && xs.len() == 3, "{}: expected 4-D weights and a [C,H,W] input", n.name);
                    let stride = attr_ints(n, "strides").map(|v| v[0] as usize).unwrap_or(1);
                    let pad = attr_ints(n, "pads").map(|v| v[0] as usize).unwrap_or(0);
                    let wshape = [ws[0], ws[1], ws[2], ws[3]];
                    if n.op_type == "Conv" {
                        let ho = (xs[1] + 2 * pad - ws[2]) / stride + 1;
                        let wo = (xs[2] + 2 * pad - ws[3]) / stride + 1;
                        (Node::Conv { x, w, wshape, b, stride, pad, y: y.clone() }, vec![ws[0], ho, wo])
                    } else {
                        let ho = (xs[1] - 1) * stride + ws[2] - 2 * pad;
                        let wo = (xs[2] - 1) * stride + ws[3] - 2 * pad;
                        (Node::ConvTranspose { x, w, wshape, b, stride, pad, y: y.clone() }, vec![ws[1], ho, wo])
                    }
                }
                "Gemm" => {
                    let (wt, w) = weight(&n.input[1])?;
                    let (_, b) = weight(&n.input[2])?;
                    ensure!(wt.dims.len() == 2, "Gemm weight must be 2-D");
                    let (d_in, d_out) = (wt.dims[0] as usize, wt.dims[1] as usize);
                    ensure!(xs.iter().product::<usize>() == d_in, "Gemm input size");
                    (Node::Gemm { x, w, d_in, d_out, b, y: y.clone() }, vec![d_out])
                }
                "Relu" => (Node::Relu { x, y: y.clone() }, xs.clone()),
                "Tanh" => (Node::Tanh { x, y: y.clone() }, xs.clone()),
                "LeakyRelu" => {
                    let alpha = n.attribute.iter().find(|a| a.name == "alpha").map(|a| a.f).unwrap_or(0.01);
                    (Node::LeakyRelu { x, alpha, y: y.clone() }, xs.clone())
                }
                "Add" => {
                    let b = n.input[1].clone();
                    ensure!(shapes.get(&b) == Some(&xs), "Add of different shapes");
                    (Node::Add { a: x, b, y: y.clone() }, xs.clone())
                }
                "Reshape" => {
                    let t = init.get(n.input[1].as_str()).context("Reshape shape must be an initializer")?;
                    let dims: Vec<usize> =
                        t.raw_data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as usize).collect();
                    ensure!(dims.first() == Some(&1), "Reshape must keep batch 1");
                    ensure!(dims[1..].iter().product::<usize>() == xs.iter().product::<usize>(), "Reshape changes the element count");
                    (Node::Reshape { x, y: y.clone() }, dims[1..].to_vec())
                }
                other => bail!("op {other} ({}) is outside edgegen's op set", n.name),
            };
            shapes.insert(y, ys);
            nodes.push(node);
        }
        let family = model.metadata_props.iter().find(|p| p.key == "family").map(|p| p.value.clone()).unwrap_or_default();
        Ok(Graph { input, outputs: g.output.iter().map(|o| o.name.clone()).collect(), nodes, shapes, family })
    }

    /// Evaluates the graph in f32 on one input, returning every value.
    pub fn eval(&self, input: &[f32]) -> HashMap<String, Vec<f32>> {
        let mut v: HashMap<String, Vec<f32>> = HashMap::new();
        v.insert(self.input.clone(), input.to_vec());
        for n in &self.nodes {
            let out = match n {
                Node::Conv { x, w, wshape, b, stride, pad, y } => {
                    conv(&v[x], &self.shapes[x], w, *wshape, b, *stride, *pad, &self.shapes[y])
                }
                Node::ConvTranspose { x, w, wshape, b, stride, pad, y } => {
                    conv_transpose(&v[x], &self.shapes[x], w, *wshape, b, *stride, *pad, &self.shapes[y])
                }
                Node::Gemm { x, w, d_in, d_out, b, .. } => {
                    (0..*d_out).map(|o| b[o] + (0..*d_in).map(|i| v[x][i] * w[i * d_out + o]).sum::<f32>()).collect()
                }
                Node::Relu { x, .. } => v[x].iter().map(|&a| a.max(0.0)).collect(),
                Node::LeakyRelu { x, alpha, .. } => v[x].iter().map(|&a| if a >= 0.0 { a } else { a * alpha }).collect(),
                Node::Tanh { x, .. } => v[x].iter().map(|&a| a.tanh()).collect(),
                Node::Add { a, b, .. } => v[a].iter().zip(&v[b]).map(|(p, q)| p + q).collect(),
                Node::Reshape { x, .. } => v[x].clone(),
            };
            v.insert(n.output().to_string(), out);
        }
        v
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(x: &[f32], xs: &[usize], w: &[f32], ws: [usize; 4], b: &[f32], s: usize, p: usize, ys: &[usize]) -> Vec<f32> {
    let (ci_n, hi, wi) = (xs[0], xs[1], xs[2]);
    let (co_n, ho, wo) = (ys[0], ys[1], ys[2]);
    let (kh, kw) = (ws[2], ws[3]);
    let mut out = vec![0f32; co_n * ho * wo];
    for co in 0..co_n {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut acc = b[co];
                for ci in 0..ci_n {
                    for ky in 0..kh {
                        let iy = (oy * s + ky) as isize - p as isize;
                        if iy < 0 || iy >= hi as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = (ox * s + kx) as isize - p as isize;
                            if ix < 0 || ix >= wi as isize {
                                continue;
                            }
                            acc += x[(ci * hi + iy as usize) * wi + ix as usize] * w[((co * ci_n + ci) * kh + ky) * kw + kx];
                        }
                    }
                }
                out[(co * ho + oy) * wo + ox] = acc;
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn conv_transpose(x: &[f32], xs: &[usize], w: &[f32], ws: [usize; 4], b: &[f32], s: usize, p: usize, ys: &[usize]) -> Vec<f32> {
    let (ci_n, hi, wi) = (xs[0], xs[1], xs[2]);
    let (co_n, ho, wo) = (ys[0], ys[1], ys[2]);
    let (kh, kw) = (ws[2], ws[3]);
    let mut out = vec![0f32; co_n * ho * wo];
    for (co, plane) in out.chunks_mut(ho * wo).enumerate() {
        plane.fill(b[co]);
    }
    for ci in 0..ci_n {
        for iy in 0..hi {
            for ix in 0..wi {
                let xv = x[(ci * hi + iy) * wi + ix];
                for co in 0..co_n {
                    for ky in 0..kh {
                        let oy = (iy * s + ky) as isize - p as isize;
                        if oy < 0 || oy >= ho as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ox = (ix * s + kx) as isize - p as isize;
                            if ox < 0 || ox >= wo as isize {
                                continue;
                            }
                            out[(co * ho + oy as usize) * wo + ox as usize] += xv * w[((ci * co_n + co) * kh + ky) * kw + kx];
                        }
                    }
                }
            }
        }
    }
    out
}
