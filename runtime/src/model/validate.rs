//! Checks a model file once, when it is opened: the header's tables and sections, each
//! tensor, each op (one validator per op kind, as TFLite Micro's per-op `Prepare`), the
//! graph's order and the arena plan. After this the interpreter trusts the file.

use super::layout::{f32_at, i32_at};
use super::{malformed, DType, Model, Op, OpCode, Section, Tensor, MAX_ENTRIES, META_LEN, NO_TENSOR, OP_LEN, TENSOR_LEN};
use crate::Error;

/// Largest arena a model may ask for.
const MAX_ARENA: usize = 1 << 26;

fn overlaps(a: &core::ops::Range<usize>, b: &core::ops::Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Per-channel `(multiplier, shift)` pairs as the kernels' requantization accepts them.
fn multipliers_ok(q: &[u8], pairs: usize, first: usize) -> bool {
    (0..pairs).all(|k| {
        let (mult, shift) = (i32_at(q, first + 8 * k), i32_at(q, first + 8 * k + 4));
        mult >= 0 && (-31..=30).contains(&shift)
    })
}

impl Model<'_> {
    fn within(&self, off: usize, len: usize) -> bool {
        off.checked_add(len).is_some_and(|end| end <= self.bytes.len())
    }

    fn blob_ok(&self, off: u32, len: usize) -> bool {
        (off as usize).checked_add(len).is_some_and(|end| end <= self.data_len)
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        self.validate_sections()?;
        for i in 0..self.tensor_count {
            self.validate_tensor(i)?;
        }
        let family = self.metadata_checked()?.family;
        if family.takes_image() && self.tensor_unchecked(self.input as usize).dims != self.geometry.dims() {
            return Err(malformed(Section::Header, 0, "an image model's input tensor must be [C, H, W] of the image geometry"));
        }
        // Every op's inputs must be the model input or produced by an earlier op; each
        // tensor is produced once.
        let mut produced_by = [u16::MAX; MAX_ENTRIES];
        for i in 0..self.op_count {
            let op = Op::decode(self.op_record(i)).map_err(|reason| malformed(Section::Op, i, reason))?;
            self.validate_op(i, &op)?;
            for input in [op.input0, op.input1] {
                if input == NO_TENSOR {
                    continue;
                }
                if input != self.input && produced_by[input as usize] == u16::MAX {
                    return Err(malformed(Section::Op, i, "reads a tensor no earlier op produced"));
                }
            }
            if op.output == self.input || produced_by[op.output as usize] != u16::MAX {
                return Err(malformed(Section::Op, i, "writes a tensor that is already defined"));
            }
            produced_by[op.output as usize] = i as u16;
        }
        for &o in &self.outputs[..self.output_count] {
            if produced_by[o as usize] == u16::MAX {
                return Err(malformed(Section::Header, 0, "an output tensor is never produced"));
            }
        }
        self.validate_lifetimes(&produced_by)
    }

    fn validate_sections(&self) -> Result<(), Error> {
        let bad = |reason| Err(malformed(Section::Header, 0, reason));
        if self.tensor_count == 0 || self.tensor_count > MAX_ENTRIES || self.op_count == 0 || self.op_count > MAX_ENTRIES {
            return bad("tensor or op count out of range");
        }
        if !self.within(self.tensors_off, self.tensor_count * TENSOR_LEN) {
            return bad("tensor table outside the file");
        }
        if !self.within(self.ops_off, self.op_count * OP_LEN) {
            return bad("op table outside the file");
        }
        if !self.within(self.data_off, self.data_len) || !self.data_off.is_multiple_of(16) {
            return bad("data section outside the file or not 16-byte aligned");
        }
        if !self.within(self.meta_off, META_LEN) {
            return bad("metadata outside the file");
        }
        if self.guard_len > 0 || self.guard_off > 0 {
            let data_end = self.data_off + self.data_len;
            if self.guard_len == 0
                || !self.guard_off.is_multiple_of(4)
                || self.guard_off < data_end.max(self.meta_off + META_LEN)
                || self.guard_off.checked_add(self.guard_len) != Some(self.bytes.len())
            {
                return bad("guard block not at the 4-byte-aligned end of the file");
            }
            if let Err(reason) = crate::guard::GuardBlock::parse(&self.bytes[self.guard_off..]) {
                return Err(malformed(Section::Metadata, 1, reason));
            }
        }
        if self.arena_len > MAX_ARENA {
            return bad("arena larger than 64 MiB");
        }
        if self.output_count == 0 || self.output_count > 2 {
            return bad("output count must be 1 or 2");
        }
        if self.input as usize >= self.tensor_count || self.outputs[..self.output_count].iter().any(|&o| o as usize >= self.tensor_count) {
            return bad("input or output tensor index out of range");
        }
        Ok(())
    }

    /// No op may write over a tensor that is still to be read (or is a model output).
    fn validate_lifetimes(&self, produced_by: &[u16; MAX_ENTRIES]) -> Result<(), Error> {
        for t in 0..self.tensor_count {
            let is_input = t == self.input as usize;
            if !is_input && produced_by[t] == u16::MAX {
                continue;
            }
            let birth = if is_input { 0 } else { produced_by[t] as usize + 1 };
            let is_output = self.outputs[..self.output_count].contains(&(t as u16));
            let mut last = None;
            for j in 0..self.op_count {
                let op = self.op_unchecked(j);
                if op.input0 as usize == t || op.input1 as usize == t {
                    last = Some(j);
                }
            }
            let end = if is_output { self.op_count } else { last.map_or(birth, |l| l + 1) };
            let tr = self.tensor_unchecked(t).range();
            for j in birth..end {
                let op = self.op_unchecked(j);
                if op.output as usize == t {
                    continue;
                }
                if overlaps(&self.tensor_unchecked(op.output as usize).range(), &tr) {
                    return Err(malformed(Section::Arena, t, "a live tensor is overwritten by a later op"));
                }
            }
        }
        Ok(())
    }

    fn validate_tensor(&self, i: usize) -> Result<(), Error> {
        let s = Section::Tensor;
        let t = Tensor::decode(self.tensor_record(i)).map_err(|reason| malformed(s, i, reason))?;
        if !(1..=3).contains(&t.rank) {
            return Err(malformed(s, i, "rank must be 1, 2 or 3"));
        }
        if t.dims.contains(&0) {
            return Err(malformed(s, i, "zero dimension"));
        }
        let byte_len = t.byte_len as usize;
        if t.len().checked_mul(t.dtype.size()) != Some(byte_len) {
            return Err(malformed(s, i, "byte length does not match dims and dtype"));
        }
        let off = t.offset as usize;
        if off.checked_add(byte_len).is_none_or(|end| end > self.arena_len) {
            return Err(malformed(Section::Arena, i, "tensor extends past the arena"));
        }
        if t.dtype == DType::F32 && !off.is_multiple_of(4) {
            return Err(malformed(Section::Arena, i, "f32 tensor not 4-byte aligned"));
        }
        if t.dtype == DType::I8 && !(t.scale.is_finite() && t.scale > 0.0 && (-128..=127).contains(&t.zero_point)) {
            return Err(malformed(s, i, "int8 tensor needs a positive finite scale and a zero point in -128..=127"));
        }
        Ok(())
    }

    /// The checks every op shares (indices, disjoint output, clamp), then its own.
    fn validate_op(&self, i: usize, op: &Op) -> Result<(), Error> {
        let n = self.tensor_count;
        let bad = |reason| Err(malformed(Section::Op, i, reason));
        if op.input0 as usize >= n || op.output as usize >= n || (op.input1 != NO_TENSOR && op.input1 as usize >= n) {
            return bad("tensor index out of range");
        }
        let x = self.tensor_unchecked(op.input0 as usize);
        let y = self.tensor_unchecked(op.output as usize);
        if overlaps(&x.range(), &y.range()) {
            return bad("output overlaps an input in the arena");
        }
        if op.act_min > op.act_max {
            return bad("activation range is empty");
        }
        let reason = match op.code {
            OpCode::Conv2d | OpCode::ConvTranspose2d | OpCode::FullyConnected => self.validate_weighted(op, &x, &y),
            OpCode::Add => self.validate_add(op, &x, &y),
            OpCode::Relu => validate_relu(&x, &y),
            OpCode::Tanh => validate_tanh(&x, &y),
            OpCode::Quantize => validate_quantize(&x, &y),
        };
        if let Some(reason) = reason {
            return bad(reason);
        }
        if !op.code.has_weights() && op.weights_len != 0 {
            return bad("op without weights has a weights blob");
        }
        Ok(())
    }

    /// Conv2d, ConvTranspose2d and FullyConnected: shapes, weights, biases, requantization.
    fn validate_weighted(&self, op: &Op, x: &Tensor, y: &Tensor) -> Option<&'static str> {
        if x.dtype != DType::I8 || op.input1 != NO_TENSOR {
            return Some("weighted ops take one int8 input");
        }
        // A dense layer's output may carry (C, H, W) dims: the reshape that follows it in the
        // graph is free, so the compiler gives the tensor its final shape.
        let co = if op.code == OpCode::FullyConnected { y.len() } else { y.dims[0] as usize };
        let expected_weights = if op.code == OpCode::FullyConnected {
            co * x.len()
        } else {
            match conv_weights(op, x, y) {
                Ok(n) => n,
                Err(reason) => return Some(reason),
            }
        };
        if op.weights_len as usize != expected_weights || !self.blob_ok(op.weights, expected_weights) {
            return Some("weights have the wrong length or lie outside the data section");
        }
        if !op.bias.is_multiple_of(4) || !self.blob_ok(op.bias, 4 * co) {
            return Some("biases misaligned or outside the data section");
        }
        let per = if y.dtype == DType::I8 { 8 } else { 4 };
        if op.quant_len as usize != per * co || !op.quant.is_multiple_of(4) || !self.blob_ok(op.quant, per * co) {
            return Some("requantization block has the wrong length or lies outside the data section");
        }
        let q = self.data(op.quant, per * co);
        if y.dtype == DType::I8 {
            if !multipliers_ok(q, co, 0) {
                return Some("multiplier negative or shift outside -31..=30");
            }
        } else if (0..co).any(|c| !f32_at(q, 4 * c).is_finite()) {
            return Some("output scale is not finite");
        }
        None
    }

    /// Add: two int8 inputs of the output's shape and TFLite's seven rescaling words.
    fn validate_add(&self, op: &Op, x: &Tensor, y: &Tensor) -> Option<&'static str> {
        if op.input1 == NO_TENSOR {
            return Some("Add needs two inputs");
        }
        let x2 = self.tensor_unchecked(op.input1 as usize);
        if overlaps(&x2.range(), &y.range()) {
            return Some("output overlaps an input in the arena");
        }
        if x.dtype != DType::I8 || x2.dtype != DType::I8 || y.dtype != DType::I8 || x.dims != x2.dims || x.dims != y.dims {
            return Some("Add takes two int8 tensors of the output's shape");
        }
        if op.quant_len != 28 || !op.quant.is_multiple_of(4) || !self.blob_ok(op.quant, 28) {
            return Some("Add needs a 7-word requantization block");
        }
        let q = self.data(op.quant, 28);
        if !(0..=20).contains(&i32_at(q, 0)) {
            return Some("Add left shift outside 0..=20");
        }
        if !multipliers_ok(q, 3, 4) {
            return Some("multiplier negative or shift outside -31..=30");
        }
        None
    }
}

/// Weights a convolution's kernel, stride and padding imply, if its shapes follow from them.
fn conv_weights(op: &Op, x: &Tensor, y: &Tensor) -> Result<usize, &'static str> {
    let (kh, kw, st, pad) = (op.kernel_h as usize, op.kernel_w as usize, op.stride as usize, op.pad as usize);
    if kh == 0 || kw == 0 || st == 0 || pad >= kh || pad >= kw {
        return Err("kernel, stride or padding out of range");
    }
    let (hi, wi, ho, wo) = (x.dims[1] as usize, x.dims[2] as usize, y.dims[1] as usize, y.dims[2] as usize);
    let shape_ok = if op.code == OpCode::Conv2d {
        hi + 2 * pad >= kh && wi + 2 * pad >= kw && ho == (hi + 2 * pad - kh) / st + 1 && wo == (wi + 2 * pad - kw) / st + 1
    } else {
        (hi - 1) * st + kh >= 2 * pad && wo + 2 * pad == (wi - 1) * st + kw && ho + 2 * pad == (hi - 1) * st + kh
    };
    if !shape_ok {
        return Err("output shape does not follow from input, kernel, stride and padding");
    }
    Ok(y.dims[0] as usize * x.dims[0] as usize * kh * kw)
}

fn validate_relu(x: &Tensor, y: &Tensor) -> Option<&'static str> {
    let same = x.dtype == DType::I8 && y.dtype == DType::I8 && x.dims == y.dims && x.zero_point == y.zero_point && x.scale == y.scale;
    (!same).then_some("Relu maps an int8 tensor to one of the same shape and quantization")
}

fn validate_tanh(x: &Tensor, y: &Tensor) -> Option<&'static str> {
    let ok = x.dtype == DType::F32 && y.dtype == DType::F32 && x.len() == y.len();
    (!ok).then_some("Tanh maps an f32 tensor to one of the same size")
}

fn validate_quantize(x: &Tensor, y: &Tensor) -> Option<&'static str> {
    let ok = x.dtype == DType::F32 && y.dtype == DType::I8 && x.len() == y.len();
    (!ok).then_some("Quantize maps an f32 tensor to an int8 one of the same size")
}
