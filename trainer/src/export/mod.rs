//! What leaves the trainer for other tools: ONNX files (written with prost types, read back by
//! tract and onnxruntime), int8 TFLite files (for TFLite Micro, LiteRT and Vela) and the model
//! card.

pub mod c_array;
pub mod card;
pub mod onnx;
pub mod tflite;
