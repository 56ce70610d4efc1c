//! `edgegen export tflite`: LiteRT runs each exported int8 network as the int8 engine does.
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
use serde_json::{json, Value};
use std::path::Path;

/// What goes into the network: frames (int8 images) or latents.
enum Inputs {
    Frames(usize),
    Latents(usize),
}

/// Exports `model_dir` as TFLite into a fresh directory and writes there the engine's every
/// tensor for each input (reference kernels, private layout): `meta.json`, `case_K/t{i}.bin`.
fn dump_cases(model_dir: &Path, part: &str, inputs: Inputs) -> std::path::PathBuf {
    let out = common::temp_dir(&format!("tflite-{}-{part}", model_dir.file_name().unwrap().to_string_lossy()));
    let report = edgegen_trainer::export::tflite::export_dir(model_dir, &out).unwrap();
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
fn check(model_dir: &Path, part: &str, inputs: Inputs) -> Value {
    let out = dump_cases(model_dir, part, inputs);
    let script = common::root().join("tests/python/check_tflite.py");
    let run = std::process::Command::new("python3").arg(script).arg(out.join(format!("{part}.tflite"))).arg(&out).output().unwrap();
    assert!(run.status.success(), "check_tflite.py failed:\n{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    eprintln!("{} {part}: {report}", model_dir.display());
    if std::env::var("EDGEGEN_KEEP").is_err() {
        std::fs::remove_dir_all(&out).ok();
    }
    report
}

/// The reference kernels give the engine's int8 tensors exactly (`reference_steps` 0) or at
/// most that many steps apart (a network with an int8 FULLY_CONNECTED), and then its float
/// outputs to float rounding; the optimized kernels and XNNPACK within `other_steps`.
fn assert_matches(report: &Value, reference_steps: u64, other_steps: u64) {
    for (config, r) in report.as_object().unwrap() {
        assert!(r["int8_tensors"].as_u64().unwrap() > 0, "{config}: no int8 tensor compared");
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
    assert_matches(&check(&common::model_dir("pixelcnn-fmnist"), "model", Inputs::Frames(3)), 0, 16);
}

#[test]
fn litert_runs_the_exported_vae_as_the_engine_does() {
    if !common::python_litert_available() {
        return;
    }
    let dir = common::model_dir("vae-fmnist");
    assert_matches(&check(&dir, "encoder", Inputs::Frames(3)), 0, 2);
    assert_matches(&check(&dir, "decoder", Inputs::Latents(3)), 1, 2);
}

#[test]
fn litert_runs_the_exported_gan_as_the_engine_does() {
    if !common::python_litert_available() {
        return;
    }
    assert_matches(&check(&common::model_dir("gan-fmnist"), "generator", Inputs::Latents(3)), 1, 2);
}

/// Vela (Ethos-U55-128, its default system configuration) compiles each exported network and
/// leaves on the CPU only the float edges: the DEQUANTIZE before a float head, the head, TANH,
/// and QUANTIZE of a float latent.
#[test]
fn vela_puts_every_int8_operator_on_the_npu() {
    if !common::vela_available() {
        return;
    }
    for (model, part) in [("pixelcnn-fmnist", "model"), ("vae-fmnist", "encoder"), ("vae-fmnist", "decoder"), ("gan-fmnist", "generator")] {
        let out = common::temp_dir(&format!("vela-{model}-{part}"));
        let report = edgegen_trainer::export::tflite::export_dir(&common::model_dir(model), &out).unwrap();
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
        for op in on_cpu {
            assert!(float_ops.iter().any(|f| f == op), "{model}/{part}: Vela leaves {op} on the CPU, not a float edge");
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
    let out = dump_cases(&dir, "model", Inputs::Frames(3));
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
