//! Writes model files (feature `std`): the compiler in the trainer describes the program as
//! typed records ([`ModelFile`]) and this lays them out, seals the checksum and reads the
//! result back through [`Model::from_bytes`], so nothing is written that the device would
//! refuse.

use super::layout::{Header, DATA_ALIGN, HEADER_LEN, MAX_ENTRIES, META_LEN, NO_TENSOR, OP_LEN, TENSOR_LEN, VERSION};
use super::{Metadata, Model, Op, Tensor};
use crate::Error;

/// The data section being filled: every blob starts 16-byte aligned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSection {
    bytes: Vec<u8>,
}

impl DataSection {
    /// An empty section.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a blob at the next aligned offset and returns that offset.
    pub fn push(&mut self, blob: &[u8]) -> u32 {
        self.bytes.resize(self.bytes.len().next_multiple_of(DATA_ALIGN), 0);
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(blob);
        at
    }

    /// Appends 32-bit words (little-endian) as one blob: `(offset, length in bytes)`.
    pub fn push_words(&mut self, words: impl IntoIterator<Item = [u8; 4]>) -> (u32, u32) {
        let blob: Vec<u8> = words.into_iter().flatten().collect();
        (self.push(&blob), blob.len() as u32)
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True before the first blob.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A compiled program as records, before layout.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Arena bytes the plan needs (every tensor's `offset + byte_len` within it).
    pub arena_len: u32,
    /// Tensors, indexed by the ops.
    pub tensors: Vec<Tensor>,
    /// Ops in execution order.
    pub ops: Vec<Op>,
    /// Input tensor.
    pub input: u16,
    /// Output tensors (1 or 2).
    pub outputs: Vec<u16>,
    /// Family, pixel distribution, guard.
    pub metadata: Metadata,
    /// The image geometry the model is about.
    pub geometry: crate::image::Geometry,
    /// Weights, biases and requantization blocks the ops point into.
    pub data: DataSection,
}

impl ModelFile {
    /// Lays the file out (header, tensor table, op table, metadata, data section), seals its
    /// checksum and validates it as the device will.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        if self.tensors.len() > MAX_ENTRIES || self.ops.len() > MAX_ENTRIES {
            return Err(Error::InvalidParameter("more than 1024 tensors or ops"));
        }
        if self.outputs.is_empty() || self.outputs.len() > 2 {
            return Err(Error::InvalidParameter("a model has 1 or 2 outputs"));
        }
        let tensors_off = HEADER_LEN;
        let ops_off = tensors_off + self.tensors.len() * TENSOR_LEN;
        let meta_off = ops_off + self.ops.len() * OP_LEN;
        let data_off = (meta_off + META_LEN).next_multiple_of(DATA_ALIGN);
        let file_len = data_off + self.data.len();
        let header = Header {
            version: VERSION,
            header_len: HEADER_LEN as u16,
            file_len: u32::try_from(file_len).map_err(|_| Error::InvalidParameter("model file over 4 GiB"))?,
            crc: 0,
            arena_len: self.arena_len,
            tensor_count: self.tensors.len() as u16,
            op_count: self.ops.len() as u16,
            tensors_off: tensors_off as u32,
            ops_off: ops_off as u32,
            data_off: data_off as u32,
            data_len: self.data.len() as u32,
            meta_off: meta_off as u32,
            input: self.input,
            output_count: self.outputs.len() as u16,
            outputs: [self.outputs[0], self.outputs.get(1).copied().unwrap_or(NO_TENSOR)],
            geometry: self.geometry.dims(),
            guard_off: 0,
            guard_len: 0,
        };
        let mut out = vec![0u8; file_len];
        header.encode(&mut out);
        for (t, rec) in self.tensors.iter().zip(out[tensors_off..ops_off].chunks_exact_mut(TENSOR_LEN)) {
            t.encode(rec);
        }
        for (op, rec) in self.ops.iter().zip(out[ops_off..meta_off].chunks_exact_mut(OP_LEN)) {
            op.encode(rec);
        }
        self.metadata.encode(&mut out[meta_off..meta_off + META_LEN]);
        out[data_off..].copy_from_slice(&self.data.bytes);
        Header::seal(&mut out);
        Model::from_bytes(&out)?;
        Ok(out)
    }
}

/// A copy of a valid model file with its metadata block changed by `edit` (the guard's
/// calibration, the name) and the checksum sealed again.
pub fn rewrite_metadata(file: &[u8], edit: impl FnOnce(&mut Metadata)) -> Result<Vec<u8>, Error> {
    let model = Model::from_bytes(file)?;
    let mut meta = model.metadata();
    edit(&mut meta);
    let mut out = file.to_vec();
    meta.encode(&mut out[model.meta_off..model.meta_off + META_LEN]);
    Header::seal(&mut out);
    Model::from_bytes(&out)?;
    Ok(out)
}

/// A copy of a valid model file with its guard block replaced by `block` (`None`: removed)
/// and the checksum sealed again. The block goes at the end of the file, 4-byte aligned.
pub fn with_guard_block(file: &[u8], block: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let model = Model::from_bytes(file)?;
    let (off, len) = model.guard_block_range();
    let mut out = if len > 0 { file[..off].to_vec() } else { file.to_vec() };
    let mut h = Header::decode(&out);
    h.version = VERSION;
    (h.guard_off, h.guard_len) = (0, 0);
    if let Some(b) = block {
        out.resize(out.len().next_multiple_of(4), 0);
        h.guard_off = out.len() as u32;
        h.guard_len = u16::try_from(b.len()).map_err(|_| Error::InvalidParameter("guard block over 64 KiB"))?;
        out.extend_from_slice(b);
    }
    h.file_len = u32::try_from(out.len()).map_err(|_| Error::InvalidParameter("model file over 4 GiB"))?;
    h.encode(&mut out);
    Header::seal(&mut out);
    Model::from_bytes(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DType, Family, OpCode};

    fn relu_model() -> ModelFile {
        let t = |offset| Tensor { dtype: DType::I8, rank: 1, dims: [4, 1, 1], offset, byte_len: 4, scale: 0.5, zero_point: -3 };
        let mut name = [0u8; 32];
        name[..4].copy_from_slice(b"relu");
        ModelFile {
            arena_len: 32,
            tensors: vec![t(0), t(16)],
            ops: vec![Op::new(OpCode::Relu, 0, 1)],
            input: 0,
            outputs: vec![1],
            metadata: Metadata {
                family: Family::PixelCnn,
                distribution: 0,
                components: 0,
                latent: 0,
                guard_score: 0,
                guard_flags: 0,
                guard_threshold: 0.0,
                guard_false_reject: 0.0,
                guard_params: [0.0; 4],
                name,
            },
            geometry: crate::image::Geometry { channels: 4, height: 1, width: 1 },
            data: DataSection::new(),
        }
    }

    /// Geometry is stored and checked; version-1 files (no geometry) still load, as 28×28×1;
    /// a newer version is refused with what to do.
    #[test]
    fn geometry_round_trips_and_old_files_load() {
        let bytes = relu_model().to_bytes().unwrap();
        let m = Model::from_bytes(&bytes).unwrap();
        assert_eq!((m.version(), m.geometry().dims()), (3, [4, 1, 1]));
        // Version 2 (no guard block) still loads.
        let mut v2 = bytes.clone();
        v2[4] = 2;
        Header::seal(&mut v2);
        assert_eq!(Model::from_bytes(&v2).unwrap().version(), 2);

        let mut wrong = relu_model();
        wrong.geometry = crate::image::Geometry { channels: 1, height: 2, width: 2 };
        let e = wrong.to_bytes().unwrap_err();
        assert!(std::format!("{e}").contains("image geometry"), "{e}");

        // A version-1 file: version 1, geometry bytes zero (a generator: no image input).
        let mut gen = relu_model();
        gen.metadata.family = Family::GanGenerator;
        let mut v1 = gen.to_bytes().unwrap();
        v1[4] = 1;
        v1[52..58].fill(0);
        Header::seal(&mut v1);
        let m = Model::from_bytes(&v1).unwrap();
        assert_eq!((m.version(), m.geometry()), (1, crate::image::Geometry::VERSION_1));
        // An image model of version 1 is 28×28×1: [4, 1, 1] is not.
        let mut v1_image = bytes.clone();
        v1_image[4] = 1;
        v1_image[52..58].fill(0);
        Header::seal(&mut v1_image);
        assert!(Model::from_bytes(&v1_image).is_err());

        let mut newer = bytes.clone();
        newer[4] = 4;
        Header::seal(&mut newer);
        let e = std::format!("{}", Model::from_bytes(&newer).unwrap_err());
        assert!(e.contains("newer") && e.contains("update edgegen"), "{e}");
        let mut zero = bytes.clone();
        zero[52..54].fill(0);
        Header::seal(&mut zero);
        assert!(Model::from_bytes(&zero).is_err(), "zero channels");
    }

    #[test]
    fn written_files_read_back_record_for_record() {
        let file = relu_model();
        let bytes = file.to_bytes().unwrap();
        let m = Model::from_bytes(&bytes).unwrap();
        assert_eq!((m.tensor(0), m.tensor(1), m.op(0)), (file.tensors[0], file.tensors[1], file.ops[0]));
        assert_eq!((m.metadata(), m.arena_len(), m.outputs()), (file.metadata, 32, &[1u16][..]));
        let edited = rewrite_metadata(&bytes, |meta| meta.guard_threshold = 2.5).unwrap();
        assert_eq!(Model::from_bytes(&edited).unwrap().metadata().guard_threshold, 2.5);
        assert_eq!(edited.len(), bytes.len());
    }

    /// A guard block is added at the aligned end of the file, replaced, removed; it must sit
    /// there and parse, and a version-2 file may not claim one.
    #[test]
    fn guard_blocks_are_added_replaced_and_removed() {
        let bytes = relu_model().to_bytes().unwrap();
        let block = crate::guard::GuardBlock::encode(7, (1.0, 2.0), &[0.0], &[1.0], &[(0.5, std::vec![0.0], std::vec![1.0])], &[]);
        let with = with_guard_block(&bytes, Some(&block)).unwrap();
        let m = Model::from_bytes(&with).unwrap();
        let (off, len) = m.guard_block_range();
        assert_eq!((off % 4, off + len, len), (0, with.len(), block.len()));
        assert_eq!(m.guard_block().unwrap().encoder_crc(), 7);
        let other = crate::guard::GuardBlock::encode(
            9,
            (1.0, 2.0),
            &[0.0, 0.0],
            &[1.0, 1.0],
            &[(0.5, std::vec![0.0; 2], std::vec![1.0, 0.0, 1.0])],
            &[],
        );
        let replaced = with_guard_block(&with, Some(&other)).unwrap();
        assert_eq!(Model::from_bytes(&replaced).unwrap().guard_block().unwrap().encoder_crc(), 9);
        assert_eq!(replaced.len(), off + other.len(), "the old block is gone");
        let removed = with_guard_block(&replaced, None).unwrap();
        assert!(Model::from_bytes(&removed).unwrap().guard_block().is_none());
        // A block whose bytes were damaged (checksum sealed again) or that claims more than
        // the file holds is refused.
        let mut bad = with.clone();
        bad[off] = b'X';
        Header::seal(&mut bad);
        assert!(Model::from_bytes(&bad).is_err());
        let mut short = with.clone();
        short[62..64].copy_from_slice(&((len - 4) as u16).to_le_bytes());
        Header::seal(&mut short);
        assert!(Model::from_bytes(&short).is_err());
        let mut v2 = with.clone();
        v2[4] = 2;
        Header::seal(&mut v2);
        assert!(Model::from_bytes(&v2).is_err(), "version 2 has no guard block");
    }

    #[test]
    fn the_writer_refuses_what_the_reader_would() {
        let mut file = relu_model();
        file.tensors[1].offset = 0;
        assert!(matches!(file.to_bytes(), Err(Error::Malformed { .. })), "output over its input");
        let mut file = relu_model();
        file.outputs.clear();
        assert!(file.to_bytes().is_err());
    }

    #[test]
    fn blobs_are_aligned() {
        let mut d = DataSection::new();
        assert_eq!(d.push(&[1, 2, 3]), 0);
        assert_eq!(d.push_words([[0; 4], [1; 4]]), (16, 8));
        assert_eq!(d.len(), 24);
    }
}
