//! Helpers shared by the cross-check tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A bundled model directory, which must exist.
pub fn model_dir(name: &str) -> PathBuf {
    let dir = root().join("models").join(name);
    assert!(dir.is_dir(), "bundled model {} is missing", dir.display());
    dir
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgegen-test-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Largest absolute difference of two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Whether `python3` with `onnx` and `onnxruntime` is usable. When the test command sets
/// `EDGEGEN_REQUIRE_PYTHON=1`, their absence is a failure instead of a skip.
pub fn python_onnx_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import onnx, onnxruntime, numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok && std::env::var("EDGEGEN_REQUIRE_PYTHON").as_deref() == Ok("1") {
        panic!("EDGEGEN_REQUIRE_PYTHON=1 but python3 with onnx, onnxruntime and numpy is not available");
    }
    if !ok {
        eprintln!("skipping: python3 with onnx and onnxruntime is not installed (the README's test command installs them)");
    }
    ok
}
