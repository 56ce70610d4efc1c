//! The table of kernel functions the interpreter calls, chosen once (as tract's `linalg`
//! does with `generic()` and a per-ISA `plug()`): [`reference`] is the oracle, [`portable`]
//! the fast Rust that runs everywhere, and [`best`] starts from the portable table and lets
//! each instruction set this build and this CPU have replace the entries it does better
//! (Arm DSP at compile time, x86-64 AVX2 / AVX-512 VNNI at run time). Every entry of every
//! table is bit-exact with the reference; [`by_name`] gives the test suite each one.

use super::{AddParams, ConvGeometry, Layer, OutSpec, Packed};

/// A 2-D convolution or transposed convolution: geometry, input, weights, biases, output
/// spec, output, and the op's packed constants when the table's `pack` made some.
pub type ConvFn = fn(&ConvGeometry, &[u8], &[u8], &[u8], &OutSpec, &mut [u8], Option<&Packed>);
/// A dense layer: input, input zero point, weights, biases, outputs, output spec, output,
/// packed constants.
pub type DenseFn = fn(&[u8], i32, &[u8], &[u8], usize, &OutSpec, &mut [u8], Option<&Packed>);
/// An int8 addition.
pub type AddFn = fn(&AddParams, &[u8], &[u8], &mut [u8]);
/// An int8 ReLU at a zero point.
pub type ReluFn = fn(i32, &[u8], &mut [u8]);
/// Packs a weighted layer's weights and biases ahead of the first run (the interpreter's
/// prepare step); `None` when the table reads this layer's constants as stored.
pub type PackFn = fn(&Layer, &[u8], &[u8]) -> Option<Packed>;

/// One implementation of every kernel.
#[derive(Clone, Copy)]
pub struct KernelTable {
    /// Which instruction sets the entries use, e.g. `"portable"`, `"x86-avx2"`.
    pub name: &'static str,
    /// Conv2d.
    pub conv2d: ConvFn,
    /// ConvTranspose2d.
    pub conv_transpose2d: ConvFn,
    /// FullyConnected.
    pub fully_connected: DenseFn,
    /// Add.
    pub add: AddFn,
    /// Relu.
    pub relu: ReluFn,
    /// The prepare step's packing.
    pub pack: PackFn,
}

impl core::fmt::Debug for KernelTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KernelTable({})", self.name)
    }
}

fn no_packing(_: &Layer, _: &[u8], _: &[u8]) -> Option<Packed> {
    None
}

/// The reference kernels (the oracle).
pub const REFERENCE: KernelTable = {
    use super::reference as r;
    KernelTable {
        name: "reference",
        conv2d: |g, x, w, b, s, o, _| r::conv2d(g, x, w, b, s, o),
        conv_transpose2d: |g, x, w, b, s, o, _| r::conv_transpose2d(g, x, w, b, s, o),
        fully_connected: |x, zp, w, b, n, s, o, _| r::fully_connected(x, zp, w, b, n, s, o),
        add: r::add,
        relu: r::relu,
        pack: no_packing,
    }
};

/// The portable optimized kernels: no architecture code.
pub const PORTABLE: KernelTable = {
    use super::portable as p;
    KernelTable {
        name: "portable",
        conv2d: |g, x, w, b, s, o, _| p::conv2d(g, x, w, b, s, o),
        conv_transpose2d: |g, x, w, b, s, o, _| p::conv_transpose2d(g, x, w, b, s, o),
        fully_connected: |x, zp, w, b, n, s, o, _| p::fully_connected(x, zp, w, b, n, s, o),
        add: p::add,
        relu: super::reference::relu,
        pack: no_packing,
    }
};

/// The reference table.
pub fn reference() -> &'static KernelTable {
    &REFERENCE
}

/// The portable table.
pub fn portable() -> &'static KernelTable {
    &PORTABLE
}

/// The fastest table for this build and this CPU, chosen on the first call.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
pub fn best() -> &'static KernelTable {
    static BEST: std::sync::OnceLock<KernelTable> = std::sync::OnceLock::new();
    BEST.get_or_init(|| {
        let mut t = PORTABLE;
        super::x86::plug(&mut t);
        t
    })
}

/// The fastest table for this build: the Helium kernels on Armv8.1-M cores with MVE.
#[cfg(all(target_arch = "arm", feature = "mve"))]
pub fn best() -> &'static KernelTable {
    &super::arm_mve::TABLE
}

/// The fastest table for this build: the SMLAD kernels on Arm cores with the DSP extension.
#[cfg(all(target_arch = "arm", feature = "dsp", not(feature = "mve")))]
pub fn best() -> &'static KernelTable {
    &super::arm_dsp::TABLE
}

/// The fastest table for this build: the portable kernels.
#[cfg(not(any(all(target_arch = "x86_64", feature = "std"), all(target_arch = "arm", any(feature = "dsp", feature = "mve")))))]
pub fn best() -> &'static KernelTable {
    &PORTABLE
}

/// Every table this build has, by name, `None` where this CPU lacks the instructions: the
/// kernel suite runs each present one and says which it skipped.
pub fn by_name(name: &str) -> Option<&'static KernelTable> {
    match name {
        "reference" => Some(&REFERENCE),
        "portable" => Some(&PORTABLE),
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        "x86-avx2" => super::x86::avx2_table(),
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        "x86-avx512-vnni" => super::x86::vnni_table(),
        #[cfg(all(target_arch = "arm", feature = "dsp"))]
        "arm-dsp" => Some(&super::arm_dsp::TABLE),
        #[cfg(all(target_arch = "arm", feature = "mve"))]
        "arm-mve" => Some(&super::arm_mve::TABLE),
        _ => None,
    }
}
