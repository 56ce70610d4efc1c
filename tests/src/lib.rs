//! placeholder-free: cross-crate tests live in tests/tests/.
