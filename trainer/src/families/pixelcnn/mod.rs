//! The PixelCNN family: masked convolutions (mask A on the first layer, B after) with
//! bottleneck residual blocks, ending in a discretized logistic mixture per pixel, so
//! log p(x) = Σ_i log p(x_i | x_<i) is exact. Sized for a microcontroller (≤ 300k parameters,
//! ≤ 60M MACs per image).

pub mod eval;
pub mod export;
pub mod model;
pub mod run;
pub mod training;

pub use model::{PixelCnn, PixelCnnConfig};
