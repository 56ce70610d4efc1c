//! The classifier family: a small convolutional classifier p(y|x) that runs on the int8
//! engine beside the guard, so the device answers "which class is this?" only for frames
//! the guard accepts (`edgegen classify`). Laid out as the other families: model, training,
//! export, run.

pub mod export;
pub mod model;
pub mod run;
pub mod training;

pub use model::{Classifier, ClassifierConfig};
