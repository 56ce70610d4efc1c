//! Errors of the runtime: small, copyable, allocation-free.

use core::fmt;

/// Everything that can go wrong in the runtime. Carries only plain numbers, so it is `Copy`
/// and usable without an allocator.
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
    /// A parameter was outside its valid range (for example zero mixture components).
    InvalidParameter(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LengthMismatch { expected, got } => {
                write!(f, "buffer length mismatch: expected {expected} elements, got {got}")
            }
            Error::InvalidParameter(what) => write!(f, "invalid parameter: {what}"),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(feature = "defmt")]
impl defmt::Format for Error {
    fn format(&self, f: defmt::Formatter) {
        match self {
            Error::LengthMismatch { expected, got } => {
                defmt::write!(f, "LengthMismatch {{ expected: {}, got: {} }}", expected, got)
            }
            Error::InvalidParameter(what) => defmt::write!(f, "InvalidParameter({})", what),
        }
    }
}
