//! The normalizing flow (RealNVP): exact log p(x) and one-pass sampling.

pub mod export;
pub mod model;
pub mod run;
pub mod training;

pub use model::{Flow, FlowConfig};
