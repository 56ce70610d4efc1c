//! The VAE family: a convolutional encoder to a diagonal Gaussian q(z|x) and a decoder from
//! z to a discretized logistic mixture over every pixel, so the ELBO is a true lower bound on
//! log p(x) of 8-bit images. Laid out as burn's examples are: model, training, export, eval.

pub mod eval;
pub mod export;
pub mod model;
pub mod run;
pub mod training;

pub use model::{Decoder, Encoder, Vae, VaeConfig};
