//! Helpers shared by the cross-check tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    // As cargo reports it when running the test: a shared build cache may have compiled this
    // binary in another checkout.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
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

/// Whether `program args…` runs successfully (a Python tool the tests need, `what`). When the
/// test command sets `EDGEGEN_REQUIRE_PYTHON=1`, its absence is a failure instead of a skip.
fn python_tool_available(program: &str, args: &[&str], what: &str) -> bool {
    let ok = std::process::Command::new(program).args(args).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok && std::env::var("EDGEGEN_REQUIRE_PYTHON").as_deref() == Ok("1") {
        panic!("EDGEGEN_REQUIRE_PYTHON=1 but {what} is not available");
    }
    if !ok {
        eprintln!("skipping: {what} is not installed (the README's test command installs it)");
    }
    ok
}

/// Whether `python3` with `onnx`, `onnxruntime` and `numpy` is usable.
pub fn python_onnx_available() -> bool {
    python_tool_available("python3", &["-c", "import onnx, onnxruntime, numpy"], "python3 with onnx, onnxruntime and numpy")
}

/// Whether `python3` with LiteRT (`ai-edge-litert`) and `numpy` is usable.
pub fn python_litert_available() -> bool {
    python_tool_available(
        "python3",
        &["-c", "import numpy; from ai_edge_litert.interpreter import Interpreter"],
        "python3 with ai-edge-litert and numpy",
    )
}

/// Whether `python3` with TensorFlow Lite Micro's Python interpreter (`tflite-micro`) is usable.
pub fn python_tflm_available() -> bool {
    python_tool_available(
        "python3",
        &["-c", "from tflite_micro.python.tflite_micro import runtime"],
        "python3 with tflite-micro (TensorFlow Lite Micro's interpreter)",
    )
}

/// Whether Arm's Vela compiler (`pip install ethos-u-vela`) is on the path.
pub fn vela_available() -> bool {
    python_tool_available("vela", &["--version"], "vela (pip ethos-u-vela)")
}

/// Runs tract on every golden set of `dir/golden/<part>/` against `dir/<part>.onnx` and
/// asserts each output within `tol` of the trainer's.
pub fn check_golden(dir: &std::path::Path, part: &str, tol: f32) {
    let model = edgegen_runtime::onnx::OnnxModel::load(&dir.join(format!("{part}.onnx"))).unwrap();
    let sets: Vec<_> = std::fs::read_dir(dir.join("golden").join(part)).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(sets.len() >= 3, "{part}: expected at least 3 golden sets");
    for set in sets {
        let (_, _, input) = edgegen_trainer::export::onnx::load_tensor(&set.join("input_0.pb")).unwrap();
        let outputs = model.run(&input, "golden").unwrap();
        for (k, got) in outputs.iter().enumerate() {
            let (_, _, want) = edgegen_trainer::export::onnx::load_tensor(&set.join(format!("output_{k}.pb"))).unwrap();
            let d = max_abs_diff(&want, got);
            assert!(d < tol, "{} output {k}: max abs diff {d}", set.display());
        }
    }
}

/// Runs `tests/python/check_onnx.py` (onnx checker with full_check, onnxruntime against the
/// golden vectors) on a model directory; every file in it must pass.
pub fn python_check(dir: &std::path::Path, files: &[&str]) {
    if !python_onnx_available() {
        return;
    }
    let script = root().join("tests/python/check_onnx.py");
    let out = std::process::Command::new("python3").arg(script).arg(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for f in files {
        assert!(text.contains(f), "{f} not checked:\n{text}");
    }
}

/// Two runs' per-epoch histories agree: the same epochs, every figure within 1e-6 (the same
/// steps, reduced in the same order).
pub fn assert_same_history(got: &[(usize, f64, f64)], want: &[(usize, f64, f64)]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.0 == w.0 && (g.1 - w.1).abs() < 1e-6 && (g.2 - w.2).abs() < 1e-6, "history {got:?} vs uninterrupted {want:?}");
    }
}

/// Serializes the tests of one binary that train: burn seeds one generator per backend, so
/// two trainings on parallel test threads draw from each other's stream.
pub fn training_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the QEMU tests can run: `qemu-system-arm`, the thumb targets and each of `tools`
/// (a command run with `--version`). With EDGEGEN_REQUIRE_QEMU=1 a missing one fails the
/// test; otherwise it is skipped with a line saying so.
pub fn qemu_tools_available(tools: &[&str]) -> bool {
    use std::process::Command;
    let ok = |cmd: &str| Command::new(cmd).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            let t = String::from_utf8_lossy(&o.stdout).to_string();
            t.contains("thumbv7em-none-eabihf") && t.contains("thumbv8m.main-none-eabihf")
        })
        .unwrap_or(false);
    let all = ok("qemu-system-arm") && tools.iter().all(|t| ok(t)) && targets;
    let what = format!("qemu-system-arm, {}, or the thumbv7em-none-eabihf / thumbv8m.main-none-eabihf targets", tools.join(", "));
    if !all && std::env::var("EDGEGEN_REQUIRE_QEMU").as_deref() == Ok("1") {
        panic!("EDGEGEN_REQUIRE_QEMU=1 but one of {what} is missing (scripts/test.sh installs them)");
    }
    if !all {
        eprintln!("skipping: one of {what} is missing (scripts/test.sh installs them)");
    }
    all
}

/// `key=value` fields of a log line.
pub fn fields(line: &str) -> std::collections::HashMap<&str, &str> {
    line.split_whitespace().filter_map(|t| t.split_once('=')).collect()
}

/// A hexadecimal field (`0x…`).
pub fn hex(v: &str) -> u64 {
    u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("not a hex field: {v}"))
}
