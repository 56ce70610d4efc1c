//! The DCGAN family: a generator from z ~ N(0, I) to a 28×28 image (BatchNorm while
//! training, folded into the weights on export) and a discriminator, trained with the
//! non-saturating loss and one-sided label smoothing. Quality is measured by the Fréchet
//! distance in a Fashion-MNIST classifier's features ([`crate::eval::fd`]).

pub mod export;
pub mod model;
pub mod run;
pub mod training;

pub use model::{Gan, GanConfig};
