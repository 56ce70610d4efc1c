//! ONNX writer: builds standard `ModelProto`s (IR 8, opset 17, weights as little-endian
//! `raw_data`) from plain f32 weights, with tract-onnx's prost-generated types. The second
//! stop of the data path: trained burn modules → `.onnx` files tract, onnxruntime and the
//! `onnx` checker all load.
//!
//! Also reads and writes ONNX `TensorProto` files, the format of the golden vectors
//! (`test_data_set_N/input_0.pb`, `output_0.pb`, as in the ONNX model zoo).

use anyhow::{ensure, Context, Result};
use prost::Message;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// ONNX IR version written.
pub const IR_VERSION: i64 = 8;
/// Default-domain opset written.
pub const OPSET: i64 = 17;

/// A node attribute value.
#[derive(Debug, Clone)]
pub enum Attr {
    /// A single integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A single float.
    Float(f32),
}

/// Incrementally assembles one ONNX graph.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    counter: usize,
}

fn value_info(name: &str, elem_type: DataType, shape: &[usize]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(TensorShapeProto {
                    dim: shape
                        .iter()
                        .map(|&d| tensor_shape_proto::Dimension {
                            value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An f32 tensor proto with little-endian raw data.
pub fn f32_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    debug_assert_eq!(dims.iter().product::<usize>(), values.len());
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// An i64 tensor proto (shapes for Reshape).
pub fn i64_tensor(name: &str, dims: &[usize], values: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Int64 as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares an f32 graph input.
    pub fn input(&mut self, name: &str, shape: &[usize]) {
        self.inputs.push(value_info(name, DataType::Float, shape));
    }

    /// Declares a graph input of element type `dt`.
    pub fn input_typed(&mut self, name: &str, dt: DataType, shape: &[usize]) {
        self.inputs.push(value_info(name, dt, shape));
    }

    /// Declares an f32 graph output.
    pub fn output(&mut self, name: &str, shape: &[usize]) {
        self.outputs.push(value_info(name, DataType::Float, shape));
    }

    /// Adds a constant f32 tensor and returns its name.
    pub fn weight(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        self.initializers.push(f32_tensor(name, dims, values));
        name.to_string()
    }

    /// Adds a constant i64 tensor and returns its name.
    pub fn int64s(&mut self, name: &str, values: &[i64]) -> String {
        self.initializers.push(i64_tensor(name, &[values.len()], values));
        name.to_string()
    }

    /// Adds a node `op(inputs) -> output`, naming the output `out` or a fresh name, and
    /// returns the output name.
    pub fn node(&mut self, op: &str, inputs: &[&str], out: Option<&str>, attrs: &[(&str, Attr)]) -> String {
        self.counter += 1;
        let output = out.map(str::to_string).unwrap_or_else(|| format!("{}_{}", op.to_lowercase(), self.counter));
        let attribute = attrs
            .iter()
            .map(|(name, a)| {
                let mut p = AttributeProto { name: name.to_string(), ..Default::default() };
                match a {
                    Attr::Int(i) => {
                        p.r#type = AttributeType::Int as i32;
                        p.i = *i;
                    }
                    Attr::Ints(v) => {
                        p.r#type = AttributeType::Ints as i32;
                        p.ints = v.clone();
                    }
                    Attr::Float(f) => {
                        p.r#type = AttributeType::Float as i32;
                        p.f = *f;
                    }
                }
                p
            })
            .collect();
        self.nodes.push(NodeProto {
            name: format!("{}_{}", op, self.counter),
            op_type: op.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            attribute,
            ..Default::default()
        });
        output
    }

    /// Finishes the graph into a model with `doc` as its doc string and `metadata` as
    /// metadata properties.
    pub fn finish(self, graph_name: &str, doc: &str, metadata: &[(&str, String)]) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: "edgegen".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(GraphProto {
                name: graph_name.into(),
                node: self.nodes,
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            metadata_props: metadata.iter().map(|(k, v)| StringStringEntryProto { key: k.to_string(), value: v.clone() }).collect(),
            ..Default::default()
        }
    }
}

/// Common layer shapes, written once for every model family.
impl GraphBuilder {
    /// `Conv` with square kernel `k`, `stride` and symmetric `pad`; weight `[out, in, k, k]`.
    pub fn conv(
        &mut self,
        x: &str,
        name: &str,
        w: &[f32],
        b: &[f32],
        shape: [usize; 4],
        stride: usize,
        pad: usize,
        out: Option<&str>,
    ) -> String {
        let wn = self.weight(&format!("{name}.weight"), &shape, w);
        let bn = self.weight(&format!("{name}.bias"), &[shape[0]], b);
        self.node(
            "Conv",
            &[x, &wn, &bn],
            out,
            &[
                ("kernel_shape", Attr::Ints(vec![shape[2] as i64, shape[3] as i64])),
                ("strides", Attr::Ints(vec![stride as i64; 2])),
                ("pads", Attr::Ints(vec![pad as i64; 4])),
            ],
        )
    }

    /// `ConvTranspose` with square kernel, `stride` and symmetric `pad`; weight
    /// `[in, out, k, k]`.
    pub fn conv_transpose(
        &mut self,
        x: &str,
        name: &str,
        w: &[f32],
        b: &[f32],
        shape: [usize; 4],
        stride: usize,
        pad: usize,
        out: Option<&str>,
    ) -> String {
        let wn = self.weight(&format!("{name}.weight"), &shape, w);
        let bn = self.weight(&format!("{name}.bias"), &[shape[1]], b);
        self.node(
            "ConvTranspose",
            &[x, &wn, &bn],
            out,
            &[
                ("kernel_shape", Attr::Ints(vec![shape[2] as i64, shape[3] as i64])),
                ("strides", Attr::Ints(vec![stride as i64; 2])),
                ("pads", Attr::Ints(vec![pad as i64; 4])),
            ],
        )
    }

    /// `Gemm` computing `x · W + b` with `W` stored `[in, out]` (burn's layout, `transB = 0`).
    pub fn dense(&mut self, x: &str, name: &str, w: &[f32], b: &[f32], d_in: usize, d_out: usize, out: Option<&str>) -> String {
        let wn = self.weight(&format!("{name}.weight"), &[d_in, d_out], w);
        let bn = self.weight(&format!("{name}.bias"), &[d_out], b);
        self.node("Gemm", &[x, &wn, &bn], out, &[])
    }

    /// `Relu`.
    pub fn relu(&mut self, x: &str) -> String {
        self.node("Relu", &[x], None, &[])
    }

    /// `Reshape` to a static shape.
    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        self.counter += 1;
        let s = self.int64s(&format!("shape_{}", self.counter), shape);
        self.node("Reshape", &[x, &s], None, &[])
    }
}

/// Serializes a model to bytes.
pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Writes a model atomically.
pub fn save(model: &ModelProto, path: &std::path::Path) -> Result<()> {
    crate::data::write_atomic(path, &encode(model))
}

/// Writes one f32 tensor as an ONNX `TensorProto` file.
pub fn save_tensor(path: &std::path::Path, name: &str, dims: &[usize], values: &[f32]) -> Result<()> {
    crate::data::write_atomic(path, &f32_tensor(name, dims, values).encode_to_vec())
}

/// Reads an f32 `TensorProto` file: returns its name, dims and values.
pub fn load_tensor(path: &std::path::Path) -> Result<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let t = TensorProto::decode(&bytes[..]).with_context(|| format!("{}: not an ONNX TensorProto", path.display()))?;
    ensure!(t.data_type == DataType::Float as i32, "{}: expected a float tensor", path.display());
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let values: Vec<f32> = if !t.raw_data.is_empty() {
        ensure!(t.raw_data.len() % 4 == 0, "{}: raw data is not a whole number of floats", path.display());
        t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    } else {
        t.float_data.clone()
    };
    ensure!(dims.iter().product::<usize>() == values.len(), "{}: {} values for dims {dims:?}", path.display(), values.len());
    Ok((t.name, dims, values))
}
