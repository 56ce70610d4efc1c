//! The interpreter: runs a validated [`Model`] op by op over a caller-provided arena, at
//! the offsets the compiler planned. No allocation; the arena is the only RAM it touches
//! besides a few KiB of stack.

use crate::kernels::{self, i32_at, AddParams, ConvGeometry, Kernels, OutSpec};
use crate::model::{DType, Model, OpCode, Tensor, NO_TENSOR};
use crate::Error;
use core::ops::Range;

/// Runs a model over an arena.
#[derive(Debug, Clone, Copy)]
pub struct Interpreter<'m> {
    model: Model<'m>,
    kernels: Kernels,
}

/// Splits `arena` into the output range (mutable) and read-only views of the rest, so the
/// inputs (validated disjoint from the output) can be borrowed alongside it.
fn split<'b>(arena: &'b mut [u8], out: Range<usize>) -> (&'b [u8], &'b mut [u8], &'b [u8], usize) {
    let (left, rest) = arena.split_at_mut(out.start);
    let (o, right) = rest.split_at_mut(out.end - out.start);
    (left, o, right, out.end)
}

fn view<'b>(left: &'b [u8], right: &'b [u8], right_start: usize, r: Range<usize>) -> &'b [u8] {
    if r.end <= left.len() {
        &left[r]
    } else {
        &right[r.start - right_start..r.end - right_start]
    }
}

fn geometry(x: &Tensor, y: &Tensor, kernel: [usize; 2], stride: usize, pad: usize) -> ConvGeometry {
    ConvGeometry {
        input: [x.dims[0] as usize, x.dims[1] as usize, x.dims[2] as usize],
        output: [y.dims[0] as usize, y.dims[1] as usize, y.dims[2] as usize],
        kernel,
        stride,
        pad,
        input_zero_point: x.zero_point,
    }
}

impl<'m> Interpreter<'m> {
    /// An interpreter for `model` using `kernels`.
    pub fn new(model: Model<'m>, kernels: Kernels) -> Self {
        Interpreter { model, kernels }
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// Bytes of arena the model needs (ask before allocating).
    pub fn arena_len(&self) -> usize {
        self.model.arena_len()
    }

    fn check_arena(&self, arena: &[u8]) -> Result<(), Error> {
        if arena.len() < self.model.arena_len() {
            return Err(Error::ArenaTooSmall { needed: self.model.arena_len(), got: arena.len() });
        }
        Ok(())
    }

    /// Writes an 8-bit image into the int8 input tensor: `q = p − 128` (the input is
    /// quantized with scale 1/127.5 and zero point 0, see `docs/model-format.md`).
    pub fn set_input_image(&self, arena: &mut [u8], pixels: &[u8]) -> Result<(), Error> {
        self.check_arena(arena)?;
        let t = self.model.input();
        if t.dtype != DType::I8 || t.len() != pixels.len() {
            return Err(Error::LengthMismatch { expected: t.len(), got: pixels.len() });
        }
        for (o, &p) in arena[t.range()].iter_mut().zip(pixels) {
            *o = p ^ 0x80;
        }
        Ok(())
    }

    /// Writes f32 values into the f32 input tensor (latent vectors).
    pub fn set_input_f32(&self, arena: &mut [u8], values: &[f32]) -> Result<(), Error> {
        self.check_arena(arena)?;
        let t = self.model.input();
        if t.dtype != DType::F32 || t.len() != values.len() {
            return Err(Error::LengthMismatch { expected: t.len(), got: values.len() });
        }
        for (o, v) in arena[t.range()].chunks_exact_mut(4).zip(values) {
            o.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }

    /// Reads output `which` (an f32 tensor) into `out`.
    pub fn output_f32(&self, arena: &[u8], which: usize, out: &mut [f32]) -> Result<(), Error> {
        let Some(&idx) = self.model.outputs().get(which) else {
            return Err(Error::InvalidParameter("no such output"));
        };
        let t = self.model.tensor(idx as usize);
        if t.dtype != DType::F32 || t.len() != out.len() {
            return Err(Error::LengthMismatch { expected: t.len(), got: out.len() });
        }
        self.check_arena(arena)?;
        for (o, b) in out.iter_mut().zip(arena[t.range()].chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }

    /// Runs every op.
    pub fn invoke(&self, arena: &mut [u8]) -> Result<(), Error> {
        self.invoke_ops(arena, 0..self.model.op_count())
    }

    /// Runs ops `ops` (in order); for callers that re-run only part of a graph.
    pub fn invoke_ops(&self, arena: &mut [u8], ops: Range<usize>) -> Result<(), Error> {
        self.check_arena(arena)?;
        if ops.end > self.model.op_count() {
            return Err(Error::InvalidParameter("op range past the end of the model"));
        }
        for i in ops {
            self.run_op(arena, i);
        }
        Ok(())
    }

    fn run_op(&self, arena: &mut [u8], i: usize) {
        let m = &self.model;
        let op = m.op(i);
        let x = m.tensor(op.input0 as usize);
        let y = m.tensor(op.output as usize);
        let (left, out, right, right_start) = split(arena, y.range());
        let input = view(left, right, right_start, x.range());
        let reference = self.kernels == Kernels::Reference;
        match op.code {
            OpCode::Conv2d | OpCode::ConvTranspose2d | OpCode::FullyConnected => {
                let co = if op.code == OpCode::FullyConnected { y.len() } else { y.dims[0] as usize };
                let weights = m.data(op.weights, op.weights_len as usize);
                let bias = m.data(op.bias, 4 * co);
                let quant = m.data(op.quant, op.quant_len as usize);
                let spec = match y.dtype {
                    DType::I8 => OutSpec::Int8 { zero_point: y.zero_point, act_min: op.act_min, act_max: op.act_max, quant },
                    DType::F32 => OutSpec::F32 { quant },
                };
                let g = geometry(&x, &y, [op.kernel_h as usize, op.kernel_w as usize], op.stride as usize, op.pad as usize);
                match (op.code, reference) {
                    (OpCode::Conv2d, true) => kernels::reference::conv2d(&g, input, weights, bias, &spec, out),
                    (OpCode::Conv2d, false) => kernels::optimized::conv2d(&g, input, weights, bias, &spec, out),
                    (OpCode::ConvTranspose2d, true) => kernels::reference::conv_transpose2d(&g, input, weights, bias, &spec, out),
                    (OpCode::ConvTranspose2d, false) => kernels::optimized::conv_transpose2d(&g, input, weights, bias, &spec, out),
                    (_, true) => kernels::reference::fully_connected(input, x.zero_point, weights, bias, co, &spec, out),
                    (_, false) => kernels::optimized::fully_connected(input, x.zero_point, weights, bias, co, &spec, out),
                }
            }
            OpCode::Add => {
                debug_assert!(op.input1 != NO_TENSOR);
                let x2 = m.tensor(op.input1 as usize);
                let other = view(left, right, right_start, x2.range());
                let q = m.data(op.quant, 28);
                let p = AddParams {
                    left_shift: i32_at(q, 0),
                    zero_points: [x.zero_point, x2.zero_point],
                    inputs: [(i32_at(q, 1), i32_at(q, 2)), (i32_at(q, 3), i32_at(q, 4))],
                    output: (i32_at(q, 5), i32_at(q, 6)),
                    output_zero_point: y.zero_point,
                    act: (op.act_min, op.act_max),
                };
                if reference {
                    kernels::reference::add(&p, input, other, out)
                } else {
                    kernels::optimized::add(&p, input, other, out)
                }
            }
            OpCode::Relu => kernels::reference::relu(x.zero_point, input, out),
            OpCode::Tanh => kernels::reference::tanh(input, out),
            OpCode::Quantize => kernels::reference::quantize(y.scale, y.zero_point, input, out),
        }
    }
}
