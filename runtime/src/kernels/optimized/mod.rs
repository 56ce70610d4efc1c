//! Optimized int8 kernels, bit-exact with [`super::reference`] (integer sums are exact in
//! any order). Convolutions accumulate whole output rows per weight ("weight-stationary"):
//! bounds are solved once per kernel tap instead of once per MAC, zero weights (half of
//! every masked PixelCNN kernel) are skipped, and the requantization constants are read
//! once per channel.

mod conv;

pub use conv::{conv2d, conv_transpose2d, fully_connected};

/// int8 addition. The reference loop is already a single pass with no redundant work, so
/// the optimized engine runs it as is.
pub use super::reference::add;
