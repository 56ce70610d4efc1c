//! # edgegen-trainer
//!
//! The host side of edgegen's data path, one module per stage: [`data`] (datasets and image
//! files) → [`families`] (the models in burn, their training loops and checkpoints) →
//! [`export`] (ONNX, the model card) → [`int8`] (calibration, quantization, compilation to
//! the runtime's model file) → [`eval`] (likelihood, guard, Fréchet distance, outlier sets,
//! speed), with [`engines`] (a model directory's loaded engines) and the `edgegen` command
//! line (`src/bin/edgegen/`) on top. Probability is never re-implemented here: evaluation
//! calls `edgegen_runtime::likelihood`.

pub mod data;
pub mod demo;
pub mod device;
pub mod engines;
pub mod eval;
pub mod export;
pub mod families;
pub mod int8;
pub mod parallel;
pub mod progress;
