//! # edgegen-trainer
//!
//! The host side of edgegen's data path: datasets → training (burn, `flex` backend) →
//! ONNX export → evaluation, plus the `edgegen` command line. Probability is never
//! re-implemented here: evaluation calls `edgegen_runtime::likelihood`.

pub mod bench;
pub mod card;
pub mod checkpoint;
pub mod data;
pub mod demo;
pub mod engines;
pub mod family;
pub mod fd;
pub mod gan;
pub mod graph;
pub mod imageio;
pub mod int8;
pub mod loss;
pub mod onnx;
pub mod ood;
pub mod parallel;
pub mod pixelcnn;
pub mod progress;
pub mod qdq;
pub mod quantize;
pub mod score;
pub mod training;
pub mod vae;
