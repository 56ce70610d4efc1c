//! `edgegen export tflite`: LiteRT and TensorFlow Lite Micro run each exported int8 network as
//! the int8 engine does (TFLite Micro's interpreter: every int8 tensor bit for bit).
//!
//! With LiteRT's reference kernels every int8 tensor of the program equals the engine's bit for
//! bit — CONV_2D, TRANSPOSE_CONV, ADD, RELU, RESHAPE, QUANTIZE — except after an int8
//! FULLY_CONNECTED: LiteRT 2.3's reference per-channel FULLY_CONNECTED requantizes with one
//! 64-bit rounding, where the engine (like LiteRT's reference CONV_2D and its optimized
//! FULLY_CONNECTED) uses TFLite's two-step `MultiplyByQuantizedMultiplier`: one step apart on a
//! few values (3 of 6,272 on the GAN's first layer). LiteRT's optimized kernels and XNNPACK
//! requantize their own ways (XNNPACK in fp32): a step here and there, which a residual network
//! accumulates (the figures are printed and bounded below, so a wrong weight order or layout,
//! tens of steps off everywhere, fails).

mod common;

use edgegen_runtime::interpreter::{Interpreter, PrivateLayout};
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::{DType, Model};
use edgegen_runtime::rng::Rng;
use edgegen_trainer::export::tflite::Edges;
use serde_json::{json, Value};
use std::path::Path;

/// What goes into the network: frames (int8 images) or latents.
enum Inputs {
    Frames(usize),
    Latents(usize),
}

/// Exports `model_dir` as TFLite into a fresh directory and writes there the engine's every
/// tensor for each input (reference kernels, private layout): `meta.json`, `case_K/t{i}.bin`.
fn dump_cases(model_dir: &Path, part: &str, inputs: Inputs, edges: Edges) -> std::path::PathBuf {
    let out = common::temp_dir(&format!("tflite-{}-{part}-{edges:?}", model_dir.file_name().unwrap().to_string_lossy()));
    let report = edgegen_trainer::export::tflite::export_dir(model_dir, &out, edges).unwrap();
    let entry = &report["parts"][part];
    let bytes = std::fs::read(model_dir.join(format!("{part}.egm"))).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(entry["program_tensors"].as_u64().unwrap() as usize, model.tensor_count());
    let interp = Interpreter::new(model, Kernels::Reference);
    let layout = PrivateLayout::new(&model).unwrap();
    let mut arena = vec![0u8; layout.arena_len()];
    let input = model.input_index();
    let frames = matches!(inputs, Inputs::Frames(_))
        .then(|| edgegen_trainer::data::read_idx_images(&common::root().join("models/frames/fashion-mnist-test.idx")).unwrap());
    let cases = match inputs {
        Inputs::Frames(n) | Inputs::Latents(n) => n,
    };
    let mut rng = Rng::new(17);
    for k in 0..cases {
        let x = interp.tensor_bytes_mut(&mut arena, &layout, input);
        match inputs {
            Inputs::Frames(_) => {
                for (o, &p) in x.iter_mut().zip(frames.as_ref().unwrap().image(k)) {
                    *o = p ^ 0x80;
                }
            }
            Inputs::Latents(_) => {
                for o in x.chunks_exact_mut(4) {
                    o.copy_from_slice(&rng.normal().to_le_bytes());
                }
            }
        }
        interp.invoke_in(&mut arena, &layout).unwrap();
        let case = out.join(format!("case_{k}"));
        std::fs::create_dir_all(&case).unwrap();
        for i in 0..model.tensor_count() {
            std::fs::write(case.join(format!("t{i}.bin")), interp.tensor_bytes(&arena, &layout, i)).unwrap();
        }
    }
    let tensors: Vec<Value> = (0..model.tensor_count())
        .map(|i| {
            let t = model.tensor(i);
            json!({"dtype": if t.dtype == DType::I8 { "int8" } else { "float32" }, "dims": t.dims, "rank": t.rank})
        })
        .collect();
    std::fs::write(out.join("meta.json"), json!({"input": input, "tensors": tensors, "cases": cases}).to_string()).unwrap();
    out
}

/// Runs tests/python/check_tflite.py on the exported file against the engine's tensors;
/// returns its report.
fn check(model_dir: &Path, part: &str, inputs: Inputs, edges: Edges) -> Value {
    let out = dump_cases(model_dir, part, inputs, edges);
    let script = common::root().join("tests/python/check_tflite.py");
    let run = std::process::Command::new("python3").arg(script).arg(out.join(format!("{part}.tflite"))).arg(&out).output().unwrap();
    assert!(run.status.success(), "check_tflite.py failed:\n{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    eprintln!("{} {part} ({edges:?} edges): {report}", model_dir.display());
    if common::python_tflm_available() {
        assert!(report.get("tflm").is_some(), "check_tflite.py did not run TFLite Micro: {report}");
    }
    if std::env::var("EDGEGEN_KEEP").is_err() {
        std::fs::remove_dir_all(&out).ok();
    }
    report
}

/// TensorFlow Lite Micro's interpreter gives every int8 tensor of the engine exactly, and its
/// float outputs to float rounding (its FULLY_CONNECTED rounds in two steps, as the engine);
/// LiteRT's reference kernels exactly (`reference_steps` 0) or at most that many steps apart
/// (a network with an int8 FULLY_CONNECTED); the optimized kernels and XNNPACK within
/// `other_steps`.
fn assert_matches(report: &Value, reference_steps: u64, other_steps: u64) {
    for (config, r) in report.as_object().unwrap() {
        if config == "tflm" {
            assert!(r["int8_tensors"].as_u64().unwrap() > 0, "TFLite Micro: no int8 tensor compared: {r}");
            assert_eq!(r["int8_max_steps"].as_u64().unwrap(), 0, "TFLite Micro: int8 tensors differ from the engine's: {r}");
            assert!(r["float_max_rel"].as_f64().unwrap() <= 1e-5, "TFLite Micro: float outputs differ: {r}");
            continue;
        }
        let edges = r.get("edges").and_then(Value::as_object).map_or(0, |e| e.len());
        assert!(r["int8_tensors"].as_u64().unwrap() > 0 || edges > 0, "{config}: no int8 tensor compared");
        let steps = r["int8_max_steps"].as_u64().unwrap();
        if config == "reference" {
            assert!(steps <= reference_steps, "reference kernels: int8 values {steps} steps from the engine's: {r}");
            if reference_steps == 0 {
                let rel = r["float_max_rel"].as_f64().unwrap();
                assert!(rel <= 1e-5, "reference kernels: float outputs differ by {rel} (relative): {r}");
            }
        } else {
            assert!(steps <= other_steps, "{config}: int8 values {steps} steps from the engine's: {r}");
        }
    }
}

#[test]
fn litert_runs_the_exported_pixelcnn_as_the_engine_does() {
    if !common::python_litert_available() {
        return;
    }
    assert_matches(&check(&common::model_dir("pixelcnn-fmnist"), "model", Inputs::Frames(3), Edges::Float), 0, 16);
}

#[test]
fn litert_runs_the_exported_vae_as_the_engine_does() {
    if !common::python_litert_available() {
        return;
    }
    let dir = common::model_dir("vae-fmnist");
    assert_matches(&check(&dir, "encoder", Inputs::Frames(3), Edges::Float), 0, 2);
    assert_matches(&check(&dir, "decoder", Inputs::Latents(3), Edges::Float), 1, 2);
}

#[test]
fn litert_runs_the_exported_gan_as_the_engine_does() {
    if !common::python_litert_available() {
        return;
    }
    assert_matches(&check(&common::model_dir("gan-fmnist"), "generator", Inputs::Latents(3), Edges::Float), 1, 2);
}

/// `--npu` files: the int8 tensors the engine has are LiteRT's bit for bit as in the plain
/// export (reference kernels; one step after an int8 FULLY_CONNECTED, as there), and each edge
/// the engine keeps in float differs by the one more rounding. Where LiteRT's int8 tensors equal
/// the engine's (its optimized kernels here), `mu`/`logvar` and the pre-tanh image are at most
/// one step of their own scale from the engine's values (clipped to the int8 range) and the
/// tanh image at most [`TANH_LEVELS`] pixel levels; where a kernel requantizes its own way (the
/// reference FULLY_CONNECTED, XNNPACK) the finer pre-tanh steps carry its one-step differences
/// further: at most [`TANH_LEVELS_ANY`].
#[test]
fn litert_runs_the_npu_export_as_the_engine_but_for_its_int8_edges() {
    if !common::python_litert_available() {
        return;
    }
    for (model, part, inputs, reference_steps) in [
        ("vae-fmnist", "encoder", Inputs::Frames(3), 0),
        ("vae-fmnist", "decoder", Inputs::Latents(3), 1),
        ("gan-fmnist", "generator", Inputs::Latents(3), 1),
    ] {
        let report = check(&common::model_dir(model), part, inputs, Edges::Int8);
        assert_matches(&report, reference_steps, 16);
        for (config, r) in report.as_object().unwrap() {
            let edges = r.get("edges").and_then(Value::as_object).cloned().unwrap_or_default();
            // The decoder's only edge is its latent input (the engine's own int8 tensor).
            assert_eq!(edges.is_empty(), part == "decoder", "{model}/{part} {config}: int8 edges compared: {edges:?}");
            // XNNPACK shows only graph outputs: its intermediate int8 tensors are not known equal.
            let same_int8 = r["int8_tensors"].as_u64().unwrap() > 0 && r["int8_max_steps"].as_u64().unwrap() == 0;
            for (name, e) in &edges {
                let steps = e["max_steps"].as_f64().unwrap();
                match e.get("max_pixel_levels").and_then(Value::as_u64) {
                    Some(levels) => {
                        let bound = if same_int8 { TANH_LEVELS } else { TANH_LEVELS_ANY };
                        assert!(levels <= bound, "{model}/{part} {config}: {name} {e}");
                        assert!(e["mean_pixel_levels"].as_f64().unwrap() < 1.0, "{model}/{part} {config}: {name} {e}");
                    }
                    None if same_int8 => assert!(steps <= 1.0 + 1e-3, "{model}/{part} {config}: {name} is {steps} steps off: {e}"),
                    None => {}
                }
            }
        }
    }
}

/// The largest difference, in pixel levels, of the `--npu` generator's int8 TANH image from the
/// engine's float one when every int8 tensor before it is the engine's: the pre-tanh value's
/// int8 step (±3 over 255 levels: 0.0235, half of it ≈ 1.5 of TANH's 1/128 output steps),
/// TANH's own rounding (½ step) and its approximation (under one step).
const TANH_LEVELS: u64 = 3;
/// The same where one-step differences of LiteRT's own requantization precede it (measured:
/// 9 levels at most, under one level on average).
const TANH_LEVELS_ANY: u64 = 12;

/// Vela (Ethos-U55-128, its default system configuration) compiles each exported network and
/// leaves on the CPU only the float edges: the DEQUANTIZE before a float head, the head, TANH,
/// and QUANTIZE of a float latent; with `--npu` only the mixture heads of the PixelCNN and the
/// VAE decoder (DEQUANTIZE and the head), and nothing of the encoder and the generator.
#[test]
fn vela_puts_every_int8_operator_on_the_npu() {
    if !common::vela_available() {
        return;
    }
    let networks = [("pixelcnn-fmnist", "model"), ("vae-fmnist", "encoder"), ("vae-fmnist", "decoder"), ("gan-fmnist", "generator")];
    for ((model, part), edges) in networks.iter().flat_map(|n| [(*n, Edges::Float), (*n, Edges::Int8)]) {
        let out = common::temp_dir(&format!("vela-{model}-{part}-{edges:?}"));
        let report = edgegen_trainer::export::tflite::export_dir(&common::model_dir(model), &out, edges).unwrap();
        let float_ops: Vec<String> =
            report["parts"][part]["float_ops"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        let run = std::process::Command::new("vela")
            .args(["--accelerator-config", "ethos-u55-128", "--output-dir"])
            .arg(out.join("vela"))
            .arg(out.join(format!("{part}.tflite")))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "vela failed on {model}/{part}:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
        let on_cpu: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("Warning (supported operators) operator: "))
            .map(|l| l.split(',').next().unwrap())
            .collect();
        let npu_ops = stdout.lines().find(|l| l.starts_with("NPU operators")).unwrap_or("");
        assert!(!npu_ops.is_empty() && !npu_ops.contains("= 0 "), "{model}/{part}: nothing on the NPU:\n{stdout}");
        assert_eq!(on_cpu.len(), float_ops.len(), "{model}/{part}: on the CPU {on_cpu:?}, float edges {float_ops:?}");
        for op in &on_cpu {
            assert!(float_ops.iter().any(|f| f == op), "{model}/{part}: Vela leaves {op} on the CPU, not a float edge");
        }
        if edges == Edges::Int8 {
            let head = matches!(part, "model" | "decoder");
            let expect: &[&str] = if head { &["CONV_2D", "DEQUANTIZE"] } else { &[] };
            let mut got = on_cpu.clone();
            got.sort();
            assert_eq!(got, expect, "{model}/{part} --npu: on the CPU {on_cpu:?}");
        }
        std::fs::remove_dir_all(&out).ok();
    }
}

/// Where the QDQ ONNX (`model.int8.onnx`, the reference tract and onnxruntime run) parts from
/// the engine: its Conv accumulates in float and its QuantizeLinear rounds half to even, where
/// the engine accumulates in int32 and requantizes in fixed point (what the TFLite export
/// reproduces). On the PixelCNN's first layer that is one step on a fraction of a percent of
/// the values; the residual blocks compound it (printed per tensor).
#[test]
fn qdq_parts_from_the_engine_by_rounding_only() {
    if !common::python_onnx_available() {
        return;
    }
    let dir = common::model_dir("pixelcnn-fmnist");
    let out = dump_cases(&dir, "model", Inputs::Frames(3), Edges::Float);
    let script = common::root().join("tests/python/trace_qdq.py");
    let run = std::process::Command::new("python3").arg(script).arg(dir.join("model.int8.onnx")).arg(&out).output().unwrap();
    assert!(run.status.success(), "trace_qdq.py failed:\n{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    eprintln!("QDQ vs engine, per int8 tensor: {report}");
    let first = &report["t1"];
    let (differing, values) = (first["differing"].as_u64().unwrap(), first["values"].as_u64().unwrap());
    assert!(first["max_steps"].as_u64().unwrap() <= 1 && differing * 200 < values, "first layer: {first}");
    for (t, r) in report.as_object().unwrap() {
        assert!(r["max_steps"].as_u64().unwrap() <= 16, "{t}: {r}");
    }
    std::fs::remove_dir_all(&out).ok();
}
