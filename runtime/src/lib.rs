//! # edgegen-runtime
//!
//! The device half of edgegen's data path (see the README's "Where things live"): everything that runs after a
//! model has been trained and exported. It is `no_std` first; the caller owns all memory.
//!
//! * [`likelihood`]: the one definition of log p(x) used everywhere (device, host engines, and
//!   the trainer's evaluation): discretized logistic mixtures, ELBO, importance-weighted bound,
//!   bits per dimension.
//! * [`rng`]: a seeded generator whose numbers are identical on every target, so the same seed
//!   gives the same samples on a workstation and on a Cortex-M.
//! * [`image`]: the image geometry shared by all model families.
//! * [`model`]: the compiled model file, validated once and read in place (and written, with
//!   `std`); [`golden`]: the golden-vector files; [`crc32`]: the checksum both use.
//! * [`kernels`], [`interpreter`], [`quant`]: the int8 path over a statically planned arena.
//! * [`engine`]: `sample`, `log_prob` (and per-pixel log-likelihoods), VAE bounds.
//! * [`guard`], [`complexity`]: the outlier-rejection guard — a calibrated threshold on a
//!   p(x)-based score (raw bits/dim, complexity-corrected, likelihood ratio against a
//!   background model, the worst line's ratio, or their normalized maximum).
//! * [`flow`]: a normalizing flow's couplings on the int8 engine, their arithmetic in f32.
//! * `onnx` (feature `onnx`): engines that run the exported ONNX files through tract-onnx.
//!
//! Features: `std` (default), `onnx`, `defmt`, and `dsp` (Arm DSP-extension kernels).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
// The exceptions: `kernels::arm_dsp` (SMLAD in inline assembly, feature `dsp`) and
// `kernels::x86` (calling the AVX2-compiled variant of the
// convolution after checking the CPU has AVX2); everything else is safe Rust.
#![deny(unsafe_code)]

pub mod complexity;
pub mod crc32;
pub mod engine;
pub mod error;
pub mod flow;
pub mod golden;
pub mod guard;
pub mod image;
pub mod interpreter;
pub mod kernels;
pub mod likelihood;
pub mod model;
pub mod quant;
pub mod rng;
pub mod vmath;

#[cfg(feature = "onnx")]
pub mod onnx;

pub use error::Error;
