//! The compiled model file (`.egm`): what `edgegen compile` writes and the device runs in
//! place, from flash, with no allocation.
//!
//! Validation happens once, in [`Model::from_bytes`]: every offset, length, shape,
//! quantization parameter and arena range is checked, including that no operation
//! overwrites a tensor that is still live. After that the interpreter trusts the model and
//! only `debug_assert!`s. Untrusted bytes never panic: they give an [`Error::Malformed`]
//! that names the section, the index and the reason.
//!
//! # Format, version 1 (all integers little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `EGMF` |
//! | 4 | 2 | version (1) |
//! | 6 | 2 | header length (64) |
//! | 8 | 4 | file length in bytes |
//! | 12 | 4 | CRC-32 (IEEE) of bytes 16..file length |
//! | 16 | 4 | arena length in bytes (the RAM the model needs) |
//! | 20 | 2 | tensor count |
//! | 22 | 2 | op count |
//! | 24 | 4 | tensor table offset (records of 32 bytes) |
//! | 28 | 4 | op table offset (records of 48 bytes) |
//! | 32 | 4 | data section offset (16-byte aligned) |
//! | 36 | 4 | data section length |
//! | 40 | 4 | metadata offset (64 bytes) |
//! | 44 | 2 | input tensor |
//! | 46 | 2 | output count (1 or 2) |
//! | 48 | 4 | output tensors (2 × u16; unused = 0xFFFF) |
//! | 52 | 12 | reserved (zero) |
//!
//! **Tensor record** (32 bytes): `dtype u8` (0 = int8, 1 = f32), `rank u8` (1..=3),
//! 2 reserved, `dims [u16; 3]` (C, H, W; a vector is `[n, 1, 1]`), 2 reserved,
//! `arena_offset u32`, `byte_len u32`, `scale f32`, `zero_point i32`, 4 reserved. The batch
//! dimension is always 1. int8 values are `scale · (q − zero_point)`.
//!
//! **Op record** (48 bytes): `opcode u8`, `flags u8`, `act_min i8`, `act_max i8` (the
//! output clamp; a fused ReLU is `act_min = zero_point`), `input0 u16`, `input1 u16`
//! (0xFFFF = none), `output u16`, `kernel_h u8`, `kernel_w u8`, `stride u8`, `pad u8`,
//! 2 reserved, then offsets into the data section: `weights u32`, `weights_len u32`,
//! `bias u32` (int32 per output channel), `quant u32`, `quant_len u32`, 12 reserved.
//!
//! | opcode | op | weights | quant block |
//! |---|---|---|---|
//! | 1 | Conv2d | int8 `[Co, Ci, kh, kw]` | int8 out: `(multiplier i32, shift i32)` per channel; f32 out: `scale f32` per channel |
//! | 2 | ConvTranspose2d | int8 `[Co, Ci, kh, kw]` (gather order) | as Conv2d |
//! | 3 | FullyConnected | int8 `[M, N]` | as Conv2d |
//! | 4 | Add | — | 7 × i32: left shift, (mult, shift) of each input, (mult, shift) of the output |
//! | 5 | Relu | — | — (output has the input's quantization) |
//! | 6 | Tanh (f32) | — | — |
//! | 7 | Quantize (f32 → int8) | — | — |
//!
//! Multipliers and shifts are folded by the compiler (TFLite's `QuantizeMultiplier`); the
//! device never computes a scale. A float output is `acc · scale[c]`, where the int32 bias
//! is already inside `acc`.
//!
//! **Metadata** (64 bytes): `family u8`, `distribution u8` (1 = discretized logistic
//! mixture), `components u8`, `guard_score u8`, `latent u16`, `guard_flags u16`
//! (bit 0 = calibrated), `guard_threshold f32`, `guard_false_reject f32`,
//! `guard_params [f32; 4]` (the score's normalization constants, see `guard::ScoreKind`),
//! `name [u8; 32]` (UTF-8, NUL-padded).

use crate::Error;

/// File magic.
pub const MAGIC: [u8; 4] = *b"EGMF";
/// Format version this runtime reads.
pub const VERSION: u16 = 1;
/// Header length.
pub const HEADER_LEN: usize = 64;
/// Tensor record length.
pub const TENSOR_LEN: usize = 32;
/// Op record length.
pub const OP_LEN: usize = 48;
/// Metadata length.
pub const META_LEN: usize = 64;
/// "No tensor" in an op's second input.
pub const NO_TENSOR: u16 = 0xFFFF;
/// Largest tensor or op count accepted.
pub const MAX_ENTRIES: usize = 1024;

/// Which part of a model file an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Section {
    /// The 64-byte header.
    Header,
    /// The tensor table; the index is the tensor.
    Tensor,
    /// The op table; the index is the op.
    Op,
    /// The metadata block.
    Metadata,
    /// The arena plan; the index is the tensor.
    Arena,
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DType {
    /// Quantized int8.
    I8,
    /// 32-bit float (model edges).
    F32,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::F32 => 4,
        }
    }
}

/// A tensor of the compiled graph.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tensor {
    /// Element type.
    pub dtype: DType,
    /// Number of meaningful dims.
    pub rank: u8,
    /// (C, H, W); trailing dims of lower ranks are 1.
    pub dims: [u16; 3],
    /// Byte offset in the arena.
    pub offset: u32,
    /// Length in bytes.
    pub byte_len: u32,
    /// Quantization scale (int8).
    pub scale: f32,
    /// Quantization zero point (int8).
    pub zero_point: i32,
}

impl Tensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product()
    }

    /// True for zero elements (never, in a validated model).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The arena byte range.
    pub fn range(&self) -> core::ops::Range<usize> {
        self.offset as usize..self.offset as usize + self.byte_len as usize
    }
}

/// Operation codes (a closed set, dispatched by `match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OpCode {
    /// 2-D convolution, int8 in, int8 or f32 out.
    Conv2d = 1,
    /// 2-D transposed convolution, int8 in, int8 or f32 out.
    ConvTranspose2d = 2,
    /// Dense layer, int8 in, int8 or f32 out.
    FullyConnected = 3,
    /// Elementwise int8 addition with rescaling.
    Add = 4,
    /// int8 ReLU (clamp at the zero point).
    Relu = 5,
    /// f32 hyperbolic tangent.
    Tanh = 6,
    /// f32 → int8 quantization.
    Quantize = 7,
}

impl OpCode {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => OpCode::Conv2d,
            2 => OpCode::ConvTranspose2d,
            3 => OpCode::FullyConnected,
            4 => OpCode::Add,
            5 => OpCode::Relu,
            6 => OpCode::Tanh,
            7 => OpCode::Quantize,
            _ => return None,
        })
    }

    /// Short name for logs and `edgegen inspect`.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Conv2d => "Conv2d",
            OpCode::ConvTranspose2d => "ConvTranspose2d",
            OpCode::FullyConnected => "FullyConnected",
            OpCode::Add => "Add",
            OpCode::Relu => "Relu",
            OpCode::Tanh => "Tanh",
            OpCode::Quantize => "Quantize",
        }
    }

    fn has_weights(self) -> bool {
        matches!(self, OpCode::Conv2d | OpCode::ConvTranspose2d | OpCode::FullyConnected)
    }
}

/// One operation of the compiled graph, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Op {
    /// What it computes.
    pub code: OpCode,
    /// Lower clamp of an int8 output.
    pub act_min: i8,
    /// Upper clamp of an int8 output.
    pub act_max: i8,
    /// First input tensor.
    pub input0: u16,
    /// Second input tensor or [`NO_TENSOR`].
    pub input1: u16,
    /// Output tensor.
    pub output: u16,
    /// Kernel height.
    pub kernel_h: u8,
    /// Kernel width.
    pub kernel_w: u8,
    /// Stride (both axes).
    pub stride: u8,
    /// Padding (all sides).
    pub pad: u8,
    /// Weights: offset in the data section.
    pub weights: u32,
    /// Weights: length in bytes.
    pub weights_len: u32,
    /// int32 biases: offset in the data section.
    pub bias: u32,
    /// Requantization block: offset in the data section.
    pub quant: u32,
    /// Requantization block: length in bytes.
    pub quant_len: u32,
}

/// Model family: what the graph computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Family {
    /// VAE encoder: image → (mu, logvar).
    VaeEncoder = 1,
    /// VAE decoder: z → mixture head.
    VaeDecoder = 2,
    /// PixelCNN: image → mixture head.
    PixelCnn = 3,
    /// GAN generator: z → image in (-1, 1).
    GanGenerator = 4,
}

impl Family {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Family::VaeEncoder,
            2 => Family::VaeDecoder,
            3 => Family::PixelCnn,
            4 => Family::GanGenerator,
            _ => return None,
        })
    }

    /// Name as in the cards.
    pub fn name(self) -> &'static str {
        match self {
            Family::VaeEncoder => "vae-encoder",
            Family::VaeDecoder => "vae-decoder",
            Family::PixelCnn => "pixelcnn",
            Family::GanGenerator => "gan-generator",
        }
    }
}

/// Metadata block: family, pixel distribution, and the guard's calibrated threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Metadata {
    /// Model family.
    pub family: Family,
    /// Pixel distribution: 0 = none, 1 = discretized logistic mixture.
    pub distribution: u8,
    /// Mixture components (0 when there is no pixel distribution).
    pub components: u8,
    /// Latent dimensions (VAE and GAN).
    pub latent: u16,
    /// Guard score kind (0 = none calibrated).
    pub guard_score: u8,
    /// Guard flags (bit 0: the threshold is calibrated).
    pub guard_flags: u16,
    /// Guard threshold on the score.
    pub guard_threshold: f32,
    /// False-reject rate the threshold was calibrated for.
    pub guard_false_reject: f32,
    /// Score-specific constants (see [`crate::guard::ScoreKind`]).
    pub guard_params: [f32; 4],
    /// Model name (UTF-8, NUL-padded).
    pub name: [u8; 32],
}

impl Metadata {
    /// The name as a string (up to the first NUL).
    pub fn name_str(&self) -> &str {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(self.name.len());
        core::str::from_utf8(&self.name[..end]).unwrap_or("?")
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
pub fn crc32(bytes: &[u8]) -> u32 {
    !crc32_update(!0, bytes)
}

/// Feeds `bytes` to a running CRC-32 register (start with `!0`, finish with `!`): the CRC of
/// data that arrives in pieces.
pub fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    for &b in bytes {
        crc = TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at) as i32
}
#[inline]
fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_at(b, at))
}

fn malformed(section: Section, index: usize, reason: &'static str) -> Error {
    Error::Malformed { section, index: index as u32, reason }
}

/// A validated model file, read in place.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    bytes: &'a [u8],
    arena_len: usize,
    tensor_count: usize,
    op_count: usize,
    tensors_off: usize,
    ops_off: usize,
    data_off: usize,
    data_len: usize,
    meta_off: usize,
    input: u16,
    outputs: [u16; 2],
    output_count: usize,
}

impl<'a> Model<'a> {
    /// Parses and validates a model file. Never panics on any input.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let h = Section::Header;
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated { needed: HEADER_LEN as u32, got: bytes.len() as u32 });
        }
        if bytes[0..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(bytes, 4);
        if version != VERSION {
            return Err(Error::UnsupportedVersion { found: version, supported: VERSION });
        }
        if u16_at(bytes, 6) as usize != HEADER_LEN {
            return Err(malformed(h, 0, "header length is not 64"));
        }
        let file_len = u32_at(bytes, 8) as usize;
        if file_len != bytes.len() {
            return Err(Error::Truncated { needed: file_len as u32, got: bytes.len() as u32 });
        }
        let stored = u32_at(bytes, 12);
        let computed = crc32(&bytes[16..]);
        if stored != computed {
            return Err(Error::ChecksumMismatch { stored, computed });
        }
        let m = Model {
            bytes,
            arena_len: u32_at(bytes, 16) as usize,
            tensor_count: u16_at(bytes, 20) as usize,
            op_count: u16_at(bytes, 22) as usize,
            tensors_off: u32_at(bytes, 24) as usize,
            ops_off: u32_at(bytes, 28) as usize,
            data_off: u32_at(bytes, 32) as usize,
            data_len: u32_at(bytes, 36) as usize,
            meta_off: u32_at(bytes, 40) as usize,
            input: u16_at(bytes, 44),
            output_count: u16_at(bytes, 46) as usize,
            outputs: [u16_at(bytes, 48), u16_at(bytes, 50)],
        };
        m.validate()?;
        Ok(m)
    }

    fn within(&self, off: usize, len: usize) -> bool {
        off.checked_add(len).is_some_and(|end| end <= self.bytes.len())
    }

    fn validate(&self) -> Result<(), Error> {
        let h = Section::Header;
        if self.tensor_count == 0 || self.tensor_count > MAX_ENTRIES || self.op_count == 0 || self.op_count > MAX_ENTRIES {
            return Err(malformed(h, 0, "tensor or op count out of range"));
        }
        if !self.within(self.tensors_off, self.tensor_count * TENSOR_LEN) {
            return Err(malformed(h, 0, "tensor table outside the file"));
        }
        if !self.within(self.ops_off, self.op_count * OP_LEN) {
            return Err(malformed(h, 0, "op table outside the file"));
        }
        if !self.within(self.data_off, self.data_len) || self.data_off % 16 != 0 {
            return Err(malformed(h, 0, "data section outside the file or not 16-byte aligned"));
        }
        if !self.within(self.meta_off, META_LEN) {
            return Err(malformed(h, 0, "metadata outside the file"));
        }
        if self.arena_len > (1 << 26) {
            return Err(malformed(h, 0, "arena larger than 64 MiB"));
        }
        if self.output_count == 0 || self.output_count > 2 {
            return Err(malformed(h, 0, "output count must be 1 or 2"));
        }
        if self.input as usize >= self.tensor_count || self.outputs[..self.output_count].iter().any(|&o| o as usize >= self.tensor_count) {
            return Err(malformed(h, 0, "input or output tensor index out of range"));
        }
        for i in 0..self.tensor_count {
            self.validate_tensor(i)?;
        }
        self.metadata_checked()?;
        // Every op's inputs must be the model input or produced by an earlier op; each
        // tensor is produced once.
        let mut produced_by = [u16::MAX; MAX_ENTRIES];
        for i in 0..self.op_count {
            let op = self.op_checked(i)?;
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
                return Err(malformed(h, 0, "an output tensor is never produced"));
            }
        }
        self.validate_lifetimes(&produced_by)
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
                let or = self.tensor_unchecked(op.output as usize).range();
                if or.start < tr.end && tr.start < or.end {
                    return Err(malformed(Section::Arena, t, "a live tensor is overwritten by a later op"));
                }
            }
        }
        Ok(())
    }

    fn validate_tensor(&self, i: usize) -> Result<(), Error> {
        let s = Section::Tensor;
        let b = &self.bytes[self.tensors_off + i * TENSOR_LEN..][..TENSOR_LEN];
        let dtype = match b[0] {
            0 => DType::I8,
            1 => DType::F32,
            _ => return Err(malformed(s, i, "unknown dtype")),
        };
        if !(1..=3).contains(&b[1]) {
            return Err(malformed(s, i, "rank must be 1, 2 or 3"));
        }
        let dims = [u16_at(b, 4), u16_at(b, 6), u16_at(b, 8)];
        if dims.contains(&0) {
            return Err(malformed(s, i, "zero dimension"));
        }
        let count = dims.iter().map(|&d| d as usize).product::<usize>();
        let byte_len = u32_at(b, 16) as usize;
        if count.checked_mul(dtype.size()) != Some(byte_len) {
            return Err(malformed(s, i, "byte length does not match dims and dtype"));
        }
        let off = u32_at(b, 12) as usize;
        if off.checked_add(byte_len).is_none_or(|end| end > self.arena_len) {
            return Err(malformed(Section::Arena, i, "tensor extends past the arena"));
        }
        if dtype == DType::F32 && off % 4 != 0 {
            return Err(malformed(Section::Arena, i, "f32 tensor not 4-byte aligned"));
        }
        if dtype == DType::I8 {
            let scale = f32_at(b, 20);
            let zp = i32_at(b, 24);
            if !(scale.is_finite() && scale > 0.0) || !(-128..=127).contains(&zp) {
                return Err(malformed(s, i, "int8 tensor needs a positive finite scale and a zero point in -128..=127"));
            }
        }
        Ok(())
    }

    fn tensor_unchecked(&self, i: usize) -> Tensor {
        let b = &self.bytes[self.tensors_off + i * TENSOR_LEN..][..TENSOR_LEN];
        Tensor {
            dtype: if b[0] == 0 { DType::I8 } else { DType::F32 },
            rank: b[1],
            dims: [u16_at(b, 4), u16_at(b, 6), u16_at(b, 8)],
            offset: u32_at(b, 12),
            byte_len: u32_at(b, 16),
            scale: f32_at(b, 20),
            zero_point: i32_at(b, 24),
        }
    }

    fn op_unchecked(&self, i: usize) -> Op {
        let b = &self.bytes[self.ops_off + i * OP_LEN..][..OP_LEN];
        Op {
            code: OpCode::from_u8(b[0]).unwrap_or(OpCode::Relu),
            act_min: b[2] as i8,
            act_max: b[3] as i8,
            input0: u16_at(b, 4),
            input1: u16_at(b, 6),
            output: u16_at(b, 8),
            kernel_h: b[10],
            kernel_w: b[11],
            stride: b[12],
            pad: b[13],
            weights: u32_at(b, 16),
            weights_len: u32_at(b, 20),
            bias: u32_at(b, 24),
            quant: u32_at(b, 28),
            quant_len: u32_at(b, 32),
        }
    }

    fn op_checked(&self, i: usize) -> Result<Op, Error> {
        let b = &self.bytes[self.ops_off + i * OP_LEN..][..OP_LEN];
        OpCode::from_u8(b[0]).ok_or(malformed(Section::Op, i, "unknown opcode"))?;
        Ok(self.op_unchecked(i))
    }

    fn blob_ok(&self, off: u32, len: usize) -> bool {
        (off as usize).checked_add(len).is_some_and(|end| end <= self.data_len)
    }

    fn validate_op(&self, i: usize, op: &Op) -> Result<(), Error> {
        let s = Section::Op;
        let bad = |reason| Err(malformed(s, i, reason));
        let n = self.tensor_count;
        if op.input0 as usize >= n || op.output as usize >= n || (op.input1 != NO_TENSOR && op.input1 as usize >= n) {
            return bad("tensor index out of range");
        }
        let x = self.tensor_unchecked(op.input0 as usize);
        let y = self.tensor_unchecked(op.output as usize);
        let (xr, yr) = (x.range(), y.range());
        if xr.start < yr.end && yr.start < xr.end {
            return bad("output overlaps an input in the arena");
        }
        if op.act_min > op.act_max {
            return bad("activation range is empty");
        }
        match op.code {
            OpCode::Conv2d | OpCode::ConvTranspose2d | OpCode::FullyConnected => {
                if x.dtype != DType::I8 || op.input1 != NO_TENSOR {
                    return bad("weighted ops take one int8 input");
                }
                // A dense layer's output may carry (C, H, W) dims: the reshape that follows
                // it in the graph is free, so the compiler gives the tensor its final shape.
                let co = if op.code == OpCode::FullyConnected { y.len() } else { y.dims[0] as usize };
                let ci = x.dims[0] as usize;
                let (kh, kw, st, pad) = (op.kernel_h as usize, op.kernel_w as usize, op.stride as usize, op.pad as usize);
                let expected_weights = match op.code {
                    OpCode::FullyConnected => co * x.len(),
                    _ => {
                        if kh == 0 || kw == 0 || st == 0 || pad >= kh || pad >= kw {
                            return bad("kernel, stride or padding out of range");
                        }
                        let (hi, wi, ho, wo) = (x.dims[1] as usize, x.dims[2] as usize, y.dims[1] as usize, y.dims[2] as usize);
                        let shape_ok = if op.code == OpCode::Conv2d {
                            hi + 2 * pad >= kh
                                && wi + 2 * pad >= kw
                                && ho == (hi + 2 * pad - kh) / st + 1
                                && wo == (wi + 2 * pad - kw) / st + 1
                        } else {
                            (hi - 1) * st + kh >= 2 * pad && wo + 2 * pad == (wi - 1) * st + kw && ho + 2 * pad == (hi - 1) * st + kh
                        };
                        if !shape_ok {
                            return bad("output shape does not follow from input, kernel, stride and padding");
                        }
                        co * ci * kh * kw
                    }
                };
                if op.weights_len as usize != expected_weights || !self.blob_ok(op.weights, expected_weights) {
                    return bad("weights have the wrong length or lie outside the data section");
                }
                if op.bias % 4 != 0 || !self.blob_ok(op.bias, 4 * co) {
                    return bad("biases misaligned or outside the data section");
                }
                let per = if y.dtype == DType::I8 { 8 } else { 4 };
                if op.quant_len as usize != per * co || op.quant % 4 != 0 || !self.blob_ok(op.quant, per * co) {
                    return bad("requantization block has the wrong length or lies outside the data section");
                }
                let q = &self.bytes[self.data_off + op.quant as usize..][..per * co];
                for c in 0..co {
                    if y.dtype == DType::I8 {
                        let (mult, shift) = (i32_at(q, 8 * c), i32_at(q, 8 * c + 4));
                        if mult < 0 || !(-31..=30).contains(&shift) {
                            return bad("multiplier negative or shift outside -31..=30");
                        }
                    } else if !f32_at(q, 4 * c).is_finite() {
                        return bad("output scale is not finite");
                    }
                }
            }
            OpCode::Add => {
                if op.input1 == NO_TENSOR {
                    return bad("Add needs two inputs");
                }
                let x2 = self.tensor_unchecked(op.input1 as usize);
                let r2 = x2.range();
                if r2.start < yr.end && yr.start < r2.end {
                    return bad("output overlaps an input in the arena");
                }
                if x.dtype != DType::I8 || x2.dtype != DType::I8 || y.dtype != DType::I8 || x.dims != x2.dims || x.dims != y.dims {
                    return bad("Add takes two int8 tensors of the output's shape");
                }
                if op.quant_len != 28 || op.quant % 4 != 0 || !self.blob_ok(op.quant, 28) {
                    return bad("Add needs a 7-word requantization block");
                }
                let q = &self.bytes[self.data_off + op.quant as usize..][..28];
                let left = i32_at(q, 0);
                if !(0..=20).contains(&left) {
                    return bad("Add left shift outside 0..=20");
                }
                for k in 0..3 {
                    let (mult, shift) = (i32_at(q, 4 + 8 * k), i32_at(q, 8 + 8 * k));
                    if mult < 0 || !(-31..=30).contains(&shift) {
                        return bad("multiplier negative or shift outside -31..=30");
                    }
                }
            }
            OpCode::Relu => {
                if x.dtype != DType::I8 || y.dtype != DType::I8 || x.dims != y.dims || x.zero_point != y.zero_point || x.scale != y.scale {
                    return bad("Relu maps an int8 tensor to one of the same shape and quantization");
                }
            }
            OpCode::Tanh => {
                if x.dtype != DType::F32 || y.dtype != DType::F32 || x.len() != y.len() {
                    return bad("Tanh maps an f32 tensor to one of the same size");
                }
            }
            OpCode::Quantize => {
                if x.dtype != DType::F32 || y.dtype != DType::I8 || x.len() != y.len() {
                    return bad("Quantize maps an f32 tensor to an int8 one of the same size");
                }
            }
        }
        if !op.code.has_weights() && (op.weights_len != 0) {
            return bad("op without weights has a weights blob");
        }
        Ok(())
    }

    fn metadata_checked(&self) -> Result<Metadata, Error> {
        let b = &self.bytes[self.meta_off..][..META_LEN];
        let family = Family::from_u8(b[0]).ok_or(malformed(Section::Metadata, 0, "unknown model family"))?;
        if b[1] > 1 || (b[1] == 1 && !(1..=crate::likelihood::MAX_COMPONENTS as u8).contains(&b[2])) {
            return Err(malformed(Section::Metadata, 0, "unknown pixel distribution or bad component count"));
        }
        let mut name = [0u8; 32];
        name.copy_from_slice(&b[32..64]);
        Ok(Metadata {
            family,
            distribution: b[1],
            components: b[2],
            guard_score: b[3],
            latent: u16_at(b, 4),
            guard_flags: u16_at(b, 6),
            guard_threshold: f32_at(b, 8),
            guard_false_reject: f32_at(b, 12),
            guard_params: [f32_at(b, 16), f32_at(b, 20), f32_at(b, 24), f32_at(b, 28)],
            name,
        })
    }

    /// The metadata block.
    pub fn metadata(&self) -> Metadata {
        self.metadata_checked().unwrap_or_else(|_| unreachable!("validated in from_bytes"))
    }

    /// RAM the interpreter needs for activations, in bytes.
    pub fn arena_len(&self) -> usize {
        self.arena_len
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.tensor_count
    }

    /// Number of ops.
    pub fn op_count(&self) -> usize {
        self.op_count
    }

    /// Tensor `i` (< [`Model::tensor_count`]).
    pub fn tensor(&self, i: usize) -> Tensor {
        debug_assert!(i < self.tensor_count);
        self.tensor_unchecked(i)
    }

    /// Op `i` (< [`Model::op_count`]).
    pub fn op(&self, i: usize) -> Op {
        debug_assert!(i < self.op_count);
        self.op_unchecked(i)
    }

    /// The input tensor.
    pub fn input(&self) -> Tensor {
        self.tensor(self.input as usize)
    }

    /// Index of the input tensor.
    pub fn input_index(&self) -> usize {
        self.input as usize
    }

    /// The output tensors' indices.
    pub fn outputs(&self) -> &[u16] {
        &self.outputs[..self.output_count]
    }

    /// A blob of the data section (validated ranges only).
    pub fn data(&self, off: u32, len: usize) -> &'a [u8] {
        &self.bytes[self.data_off + off as usize..][..len]
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Bytes of weights, biases and requantization constants.
    pub fn data_len(&self) -> usize {
        self.data_len
    }
}
