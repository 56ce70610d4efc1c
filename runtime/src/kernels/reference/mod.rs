//! Reference int8 kernels: plain loops that read like the definitions. The oracle every
//! optimized kernel is tested against.

mod conv;
mod elementwise;

pub use conv::{conv2d, conv_transpose2d, fully_connected};
pub use elementwise::{add, quantize, relu, tanh};
