//! What leaves the trainer for other tools: ONNX files (written with prost types, read back by
//! tract and onnxruntime) and the model card.

pub mod card;
pub mod onnx;
