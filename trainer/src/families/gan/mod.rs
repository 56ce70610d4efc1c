//! The DCGAN family: a generator from z ~ N(0, I) to an image of the data's frame size and
//! channels (a dense layer to the smallest map, then one stride-2 transposed convolution per
//! resolution stage; BatchNorm while training, folded into the weights on export) and a
//! discriminator of as many strided convolutions, trained with the non-saturating loss and
//! one-sided label smoothing. Fashion-MNIST models are measured by the Fréchet distance in a
//! Fashion-MNIST classifier's features ([`crate::eval::fd`]); others by their samples.

pub mod export;
pub mod model;
pub mod run;
pub mod training;

pub use model::{Gan, GanConfig};
