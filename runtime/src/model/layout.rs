//! The model file's records and where each field sits: the one place that knows the byte
//! layout. Every record decodes and encodes here, so the reader ([`super::Model`]) and the
//! writer ([`super::write`], feature `std`) cannot disagree. The layout itself is documented
//! field by field in [`super`].

/// File magic.
pub const MAGIC: [u8; 4] = *b"EGMF";
/// Format version this runtime writes (and the newest it reads).
pub const VERSION: u16 = 3;
/// Oldest format version this runtime reads (version 1 has no stored geometry: its frames
/// are [`crate::image::Geometry::VERSION_1`]).
pub const MIN_VERSION: u16 = 1;
/// Header length.
pub const HEADER_LEN: usize = 64;
/// Tensor record length.
pub const TENSOR_LEN: usize = 32;
/// Op record length.
pub const OP_LEN: usize = 48;
/// Metadata length.
pub const META_LEN: usize = 64;
/// "No tensor" in an op's second input or an unused output slot.
pub const NO_TENSOR: u16 = 0xFFFF;
/// Largest tensor or op count accepted.
pub const MAX_ENTRIES: usize = 1024;
/// The checksum covers the file from this byte to its end.
pub const CRC_START: usize = 16;
/// Alignment of the data section and of every blob in it.
pub const DATA_ALIGN: usize = 16;

#[inline]
pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
#[inline]
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
pub(crate) fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at) as i32
}
#[inline]
pub(crate) fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_at(b, at))
}
#[inline]
fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

/// The 64-byte header (the magic is implied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Header length (64).
    pub header_len: u16,
    /// File length in bytes.
    pub file_len: u32,
    /// CRC-32 of bytes [`CRC_START`].. of the file.
    pub crc: u32,
    /// Arena length in bytes.
    pub arena_len: u32,
    /// Tensor count.
    pub tensor_count: u16,
    /// Op count.
    pub op_count: u16,
    /// Offset of the tensor table.
    pub tensors_off: u32,
    /// Offset of the op table.
    pub ops_off: u32,
    /// Offset of the data section (16-byte aligned).
    pub data_off: u32,
    /// Length of the data section.
    pub data_len: u32,
    /// Offset of the metadata block.
    pub meta_off: u32,
    /// Input tensor.
    pub input: u16,
    /// Output count (1 or 2).
    pub output_count: u16,
    /// Output tensors (unused = [`NO_TENSOR`]).
    pub outputs: [u16; 2],
    /// The image geometry `[channels, height, width]` (version 2 on; zero in version 1).
    pub geometry: [u16; 3],
    /// Offset of the guard block (version 3 on; 0 = none).
    pub guard_off: u32,
    /// Length of the guard block (0 = none).
    pub guard_len: u16,
}

impl Header {
    /// Reads the fields after the magic (`b` holds at least [`HEADER_LEN`] bytes).
    pub fn decode(b: &[u8]) -> Header {
        Header {
            version: u16_at(b, 4),
            header_len: u16_at(b, 6),
            file_len: u32_at(b, 8),
            crc: u32_at(b, 12),
            arena_len: u32_at(b, 16),
            tensor_count: u16_at(b, 20),
            op_count: u16_at(b, 22),
            tensors_off: u32_at(b, 24),
            ops_off: u32_at(b, 28),
            data_off: u32_at(b, 32),
            data_len: u32_at(b, 36),
            meta_off: u32_at(b, 40),
            input: u16_at(b, 44),
            output_count: u16_at(b, 46),
            outputs: [u16_at(b, 48), u16_at(b, 50)],
            geometry: [u16_at(b, 52), u16_at(b, 54), u16_at(b, 56)],
            guard_off: u32_at(b, 58),
            guard_len: u16_at(b, 62),
        }
    }

    /// Writes the magic and the fields into `b[..HEADER_LEN]` (reserved bytes zero).
    pub fn encode(&self, b: &mut [u8]) {
        b[..HEADER_LEN].fill(0);
        put(b, 0, &MAGIC);
        put(b, 4, &self.version.to_le_bytes());
        put(b, 6, &self.header_len.to_le_bytes());
        put(b, 8, &self.file_len.to_le_bytes());
        put(b, 12, &self.crc.to_le_bytes());
        put(b, 16, &self.arena_len.to_le_bytes());
        put(b, 20, &self.tensor_count.to_le_bytes());
        put(b, 22, &self.op_count.to_le_bytes());
        put(b, 24, &self.tensors_off.to_le_bytes());
        put(b, 28, &self.ops_off.to_le_bytes());
        put(b, 32, &self.data_off.to_le_bytes());
        put(b, 36, &self.data_len.to_le_bytes());
        put(b, 40, &self.meta_off.to_le_bytes());
        put(b, 44, &self.input.to_le_bytes());
        put(b, 46, &self.output_count.to_le_bytes());
        put(b, 48, &self.outputs[0].to_le_bytes());
        put(b, 50, &self.outputs[1].to_le_bytes());
        for (i, v) in self.geometry.iter().enumerate() {
            put(b, 52 + 2 * i, &v.to_le_bytes());
        }
        put(b, 58, &self.guard_off.to_le_bytes());
        put(b, 62, &self.guard_len.to_le_bytes());
    }

    /// Writes the checksum of `file[CRC_START..]` into a whole encoded file.
    pub fn seal(file: &mut [u8]) {
        let crc = crate::crc32::crc32(&file[CRC_START..]);
        put(file, 12, &crc.to_le_bytes());
    }
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DType {
    /// Quantized int8.
    I8 = 0,
    /// 32-bit float (model edges).
    F32 = 1,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::F32 => 4,
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(DType::I8),
            1 => Some(DType::F32),
            _ => None,
        }
    }
}

/// A tensor of the compiled graph (one 32-byte record).
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

    /// Reads a record (`b` holds at least [`TENSOR_LEN`] bytes); fails on an unknown dtype.
    pub fn decode(b: &[u8]) -> Result<Tensor, &'static str> {
        DType::from_u8(b[0]).ok_or("unknown dtype")?;
        Ok(Self::read(b))
    }

    /// Reads a record [`Tensor::decode`] has accepted before (no checks: the interpreter's
    /// path, once the model is validated).
    #[inline]
    pub(crate) fn read(b: &[u8]) -> Tensor {
        Tensor {
            dtype: if b[0] == DType::I8 as u8 { DType::I8 } else { DType::F32 },
            rank: b[1],
            dims: [u16_at(b, 4), u16_at(b, 6), u16_at(b, 8)],
            offset: u32_at(b, 12),
            byte_len: u32_at(b, 16),
            scale: f32_at(b, 20),
            zero_point: i32_at(b, 24),
        }
    }

    /// Writes the record into `b[..TENSOR_LEN]` (reserved bytes zero).
    pub fn encode(&self, b: &mut [u8]) {
        b[..TENSOR_LEN].fill(0);
        b[0] = self.dtype as u8;
        b[1] = self.rank;
        for (k, d) in self.dims.iter().enumerate() {
            put(b, 4 + 2 * k, &d.to_le_bytes());
        }
        put(b, 12, &self.offset.to_le_bytes());
        put(b, 16, &self.byte_len.to_le_bytes());
        put(b, 20, &self.scale.to_le_bytes());
        put(b, 24, &self.zero_point.to_le_bytes());
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

    /// True for the ops that carry weights, biases and per-channel requantization.
    pub fn has_weights(self) -> bool {
        matches!(self, OpCode::Conv2d | OpCode::ConvTranspose2d | OpCode::FullyConnected)
    }
}

/// One operation of the compiled graph (one 48-byte record).
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

impl Op {
    /// An op of `code` from `input0` to `output` with no second input, no kernel, no data
    /// and the full int8 clamp: the fields a writer then sets are the ones that op has.
    pub fn new(code: OpCode, input0: u16, output: u16) -> Op {
        Op {
            code,
            act_min: i8::MIN,
            act_max: i8::MAX,
            input0,
            input1: NO_TENSOR,
            output,
            kernel_h: 0,
            kernel_w: 0,
            stride: 0,
            pad: 0,
            weights: 0,
            weights_len: 0,
            bias: 0,
            quant: 0,
            quant_len: 0,
        }
    }

    /// Reads a record (`b` holds at least [`OP_LEN`] bytes); fails on an unknown opcode.
    pub fn decode(b: &[u8]) -> Result<Op, &'static str> {
        OpCode::from_u8(b[0]).ok_or("unknown opcode")?;
        Ok(Self::read(b))
    }

    /// Reads a record [`Op::decode`] has accepted before (no checks).
    #[inline]
    pub(crate) fn read(b: &[u8]) -> Op {
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

    /// Writes the record into `b[..OP_LEN]` (flags and reserved bytes zero).
    pub fn encode(&self, b: &mut [u8]) {
        b[..OP_LEN].fill(0);
        b[0] = self.code as u8;
        b[2] = self.act_min as u8;
        b[3] = self.act_max as u8;
        put(b, 4, &self.input0.to_le_bytes());
        put(b, 6, &self.input1.to_le_bytes());
        put(b, 8, &self.output.to_le_bytes());
        b[10] = self.kernel_h;
        b[11] = self.kernel_w;
        b[12] = self.stride;
        b[13] = self.pad;
        put(b, 16, &self.weights.to_le_bytes());
        put(b, 20, &self.weights_len.to_le_bytes());
        put(b, 24, &self.bias.to_le_bytes());
        put(b, 28, &self.quant.to_le_bytes());
        put(b, 32, &self.quant_len.to_le_bytes());
    }
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
    /// Classifier: image → class logits.
    Classifier = 5,
    /// One coupling network of a normalizing flow: masked values (f32) → the raw log-scale
    /// and shift `[2C, H, W]` (f32); the coupling's arithmetic runs in [`crate::flow`].
    FlowCoupling = 6,
}

impl Family {
    /// Every family, in opcode order.
    pub const ALL: [Family; 6] =
        [Family::VaeEncoder, Family::VaeDecoder, Family::PixelCnn, Family::GanGenerator, Family::Classifier, Family::FlowCoupling];

    fn from_u8(v: u8) -> Option<Self> {
        Family::ALL.into_iter().find(|f| *f as u8 == v)
    }

    /// Name as in the cards and the ONNX metadata.
    pub fn name(self) -> &'static str {
        match self {
            Family::VaeEncoder => "vae-encoder",
            Family::VaeDecoder => "vae-decoder",
            Family::PixelCnn => "pixelcnn",
            Family::GanGenerator => "gan-generator",
            Family::Classifier => "classifier",
            Family::FlowCoupling => "flow-coupling",
        }
    }

    /// The family of a name as [`Family::name`] writes it.
    pub fn from_name(name: &str) -> Option<Self> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    /// True when the graph's input is an image (else a latent vector).
    pub fn takes_image(self) -> bool {
        matches!(self, Family::VaeEncoder | Family::PixelCnn | Family::Classifier)
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

    /// Reads a block (`b` holds at least [`META_LEN`] bytes); fails on an unknown family or
    /// pixel distribution.
    pub fn decode(b: &[u8]) -> Result<Metadata, &'static str> {
        let family = Family::from_u8(b[0]).ok_or("unknown model family")?;
        if b[1] > 1 || (b[1] == 1 && !(1..=crate::likelihood::MAX_COMPONENTS as u8).contains(&b[2])) {
            return Err("unknown pixel distribution or bad component count");
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

    /// Writes the block into `b[..META_LEN]`.
    pub fn encode(&self, b: &mut [u8]) {
        b[..META_LEN].fill(0);
        b[0] = self.family as u8;
        b[1] = self.distribution;
        b[2] = self.components;
        b[3] = self.guard_score;
        put(b, 4, &self.latent.to_le_bytes());
        put(b, 6, &self.guard_flags.to_le_bytes());
        put(b, 8, &self.guard_threshold.to_le_bytes());
        put(b, 12, &self.guard_false_reject.to_le_bytes());
        for (i, v) in self.guard_params.iter().enumerate() {
            put(b, 16 + 4 * i, &v.to_le_bytes());
        }
        b[32..64].copy_from_slice(&self.name);
    }
}
