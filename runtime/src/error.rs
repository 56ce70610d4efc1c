//! Errors of the runtime: small, copyable, allocation-free.

use core::fmt;

pub use crate::model::Section;

/// Everything that can go wrong in the runtime. Carries only plain numbers and static
/// strings, so it is `Copy` and usable without an allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A buffer had the wrong number of elements.
    LengthMismatch {
        /// What the buffer should hold.
        expected: usize,
        /// What it held.
        got: usize,
    },
    /// A parameter was outside its valid range.
    InvalidParameter(&'static str),
    /// A model file is shorter than its header says (or than a header).
    Truncated {
        /// Bytes needed.
        needed: u32,
        /// Bytes present.
        got: u32,
    },
    /// Not a model file: the magic bytes are wrong.
    BadMagic,
    /// A model file of a format version this runtime does not read.
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Newest version this runtime reads.
        supported: u16,
    },
    /// The checksum does not match the contents: the file is corrupt.
    ChecksumMismatch {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum of the contents.
        computed: u32,
    },
    /// A structurally invalid model file: what is wrong and where.
    Malformed {
        /// The part of the file.
        section: Section,
        /// Index of the tensor or op (0 for the header and metadata).
        index: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// The arena the caller passed is smaller than the model needs.
    ArenaTooSmall {
        /// Bytes the model needs.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The model is of another family than the engine asked for.
    WrongFamily,
    /// The model file holds no calibrated guard, or its score needs a model that was not
    /// given (the background model, or the VAE its guard block was fitted with).
    NoGuard,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LengthMismatch { expected, got } => write!(f, "buffer length mismatch: expected {expected} elements, got {got}"),
            Error::InvalidParameter(what) => write!(f, "invalid parameter: {what}"),
            Error::Truncated { needed, got } => write!(f, "model file truncated: header says {needed} bytes, file has {got}"),
            Error::BadMagic => write!(f, "not an edgegen model file (bad magic; expected \"EGMF\")"),
            Error::UnsupportedVersion { found, supported } => {
                if *found > *supported {
                    write!(
                        f,
                        "model file format version {found} is newer than this runtime (it reads versions 1 to {supported}): update edgegen"
                    )
                } else {
                    write!(f, "model file format version {found} is not one this runtime reads (versions 1 to {supported}): recompile the model with `edgegen compile --model DIR`")
                }
            }
            Error::ChecksumMismatch { stored, computed } => {
                write!(f, "model file corrupt: checksum 0x{computed:08x} does not match stored 0x{stored:08x}")
            }
            Error::Malformed { section, index, reason } => write!(f, "malformed model file: {section:?} {index}: {reason}"),
            Error::ArenaTooSmall { needed, got } => write!(f, "arena too small: the model needs {needed} bytes, got {got}"),
            Error::WrongFamily => write!(f, "the model file is of another family than this engine runs"),
            Error::NoGuard => write!(
                f,
                "no usable calibrated guard: the PixelCNN file holds none (`edgegen calibrate` writes one) or its score needs the background model or the VAE"
            ),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(feature = "defmt")]
impl defmt::Format for Error {
    fn format(&self, f: defmt::Formatter) {
        match self {
            Error::LengthMismatch { expected, got } => defmt::write!(f, "LengthMismatch {{ expected: {}, got: {} }}", expected, got),
            Error::InvalidParameter(what) => defmt::write!(f, "InvalidParameter({})", what),
            Error::Truncated { needed, got } => defmt::write!(f, "Truncated {{ needed: {}, got: {} }}", needed, got),
            Error::BadMagic => defmt::write!(f, "BadMagic"),
            Error::UnsupportedVersion { found, supported } => {
                defmt::write!(f, "UnsupportedVersion {{ found: {}, supported: {} }}", found, supported)
            }
            Error::ChecksumMismatch { stored, computed } => {
                defmt::write!(f, "ChecksumMismatch {{ stored: {=u32:x}, computed: {=u32:x} }}", stored, computed)
            }
            Error::Malformed { section, index, reason } => defmt::write!(f, "Malformed {{ {}, {}, {} }}", section, index, reason),
            Error::ArenaTooSmall { needed, got } => defmt::write!(f, "ArenaTooSmall {{ needed: {}, got: {} }}", needed, got),
            Error::WrongFamily => defmt::write!(f, "WrongFamily"),
            Error::NoGuard => defmt::write!(f, "NoGuard"),
        }
    }
}
