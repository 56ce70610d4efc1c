//! The compiled model file (`.egm`): what `edgegen compile` writes and the device runs in
//! place, from flash, with no allocation.
//!
//! Validation happens once, in [`Model::from_bytes`]: every offset, length, shape,
//! quantization parameter and arena range is checked, including that no operation
//! overwrites a tensor that is still live. After that the interpreter trusts the model and
//! only `debug_assert!`s. Untrusted bytes never panic: they give an [`Error::Malformed`]
//! that names the section, the index and the reason.
//!
//! The byte layout has one owner, [`layout`]: each record's `decode` and `encode` sit side by
//! side there; [`write`] (feature `std`) lays a whole file out for the compiler; [`validate`]
//! holds one check per op, as TFLite Micro's per-op `Prepare` does.
//!
//! # Format, version 3 (all integers little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `EGMF` |
//! | 4 | 2 | version (3; version 2 files have no guard block, version 1 files, written before geometry was stored, are read as 28×28×1) |
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
//! | 52 | 6 | image geometry: channels, height, width (u16 each; zero in version 1) |
//! | 58 | 4 | guard block offset (version 3; 0 = none, zero before version 3) |
//! | 62 | 2 | guard block length |
//!
//! The image geometry is the frame every engine takes (stored planar, channel by channel):
//! an image model's input tensor is `[C, H, W]`, a mixture head `[3K·C, H, W]` (per channel
//! `c`, its `3K` planes at `3K·c`), a generator's output `[C, H, W]`.
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
//!
//! **Guard block** (optional, at the end of the file, 4-byte aligned, covered by the CRC):
//! the structural guard's density over a VAE encoder's posterior mean, see
//! [`crate::guard::GuardBlock`].

mod layout;
mod validate;
#[cfg(feature = "std")]
pub mod write;

pub use layout::{
    DType, Family, Header, Metadata, Op, OpCode, Tensor, CRC_START, DATA_ALIGN, HEADER_LEN, MAGIC, MAX_ENTRIES, META_LEN, MIN_VERSION,
    NO_TENSOR, OP_LEN, TENSOR_LEN, VERSION,
};

use crate::Error;

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

pub(crate) fn malformed(section: Section, index: usize, reason: &'static str) -> Error {
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
    version: u16,
    geometry: crate::image::Geometry,
    guard_off: usize,
    guard_len: usize,
    crc: u32,
}

impl<'a> Model<'a> {
    /// Parses and validates a model file. Never panics on any input.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated { needed: HEADER_LEN as u32, got: bytes.len() as u32 });
        }
        if bytes[0..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let h = Header::decode(bytes);
        if !(MIN_VERSION..=VERSION).contains(&h.version) {
            return Err(Error::UnsupportedVersion { found: h.version, supported: VERSION });
        }
        if h.header_len as usize != HEADER_LEN {
            return Err(malformed(Section::Header, 0, "header length is not 64"));
        }
        if h.file_len as usize != bytes.len() {
            return Err(Error::Truncated { needed: h.file_len, got: bytes.len() as u32 });
        }
        let computed = crate::crc32::crc32(&bytes[CRC_START..]);
        if h.crc != computed {
            return Err(Error::ChecksumMismatch { stored: h.crc, computed });
        }
        if h.version < 3 && (h.guard_off != 0 || h.guard_len != 0) {
            return Err(malformed(Section::Header, 0, "reserved header bytes are not zero"));
        }
        let geometry = match (h.version, h.geometry) {
            (1, [0, 0, 0]) => crate::image::Geometry::VERSION_1,
            (1, _) => return Err(malformed(Section::Header, 0, "reserved header bytes are not zero")),
            (_, [c, hh, w]) => crate::image::Geometry::new(c, hh, w).map_err(|_| malformed(Section::Header, 0, "bad image geometry"))?,
        };
        let m = Model {
            bytes,
            arena_len: h.arena_len as usize,
            tensor_count: h.tensor_count as usize,
            op_count: h.op_count as usize,
            tensors_off: h.tensors_off as usize,
            ops_off: h.ops_off as usize,
            data_off: h.data_off as usize,
            data_len: h.data_len as usize,
            meta_off: h.meta_off as usize,
            input: h.input,
            output_count: h.output_count as usize,
            outputs: h.outputs,
            version: h.version,
            geometry,
            guard_off: h.guard_off as usize,
            guard_len: h.guard_len as usize,
            crc: h.crc,
        };
        m.validate()?;
        Ok(m)
    }

    fn tensor_record(&self, i: usize) -> &'a [u8] {
        &self.bytes[self.tensors_off + i * TENSOR_LEN..][..TENSOR_LEN]
    }

    fn op_record(&self, i: usize) -> &'a [u8] {
        &self.bytes[self.ops_off + i * OP_LEN..][..OP_LEN]
    }

    fn tensor_unchecked(&self, i: usize) -> Tensor {
        Tensor::read(self.tensor_record(i))
    }

    fn op_unchecked(&self, i: usize) -> Op {
        Op::read(self.op_record(i))
    }

    fn metadata_checked(&self) -> Result<Metadata, Error> {
        Metadata::decode(&self.bytes[self.meta_off..][..META_LEN]).map_err(|reason| malformed(Section::Metadata, 0, reason))
    }

    /// The metadata block.
    pub fn metadata(&self) -> Metadata {
        self.metadata_checked().unwrap_or_else(|_| unreachable!("validated in from_bytes"))
    }

    /// The image geometry the model is about (from the header; 28×28×1 for version 1).
    pub fn geometry(&self) -> crate::image::Geometry {
        self.geometry
    }

    /// The file's format version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The file's CRC-32 (of bytes 16..): what a guard block fitted on this model's outputs
    /// records to recognise it.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The guard block (version 3 on): the structural guard's latent density, when the
    /// guard was calibrated with one.
    pub fn guard_block(&self) -> Option<crate::guard::GuardBlock<'a>> {
        (self.guard_len > 0).then(|| crate::guard::GuardBlock::parse(&self.bytes[self.guard_off..][..self.guard_len]).ok()).flatten()
    }

    /// Where the guard block sits: (offset, length); (0, 0) without one.
    pub fn guard_block_range(&self) -> (usize, usize) {
        (self.guard_off, self.guard_len)
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

    /// The whole data section (weights, biases and requantization constants).
    pub fn data_section(&self) -> &'a [u8] {
        &self.bytes[self.data_off..][..self.data_len]
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
