//! The `edgegen` binary on bad input: clear messages and a non-zero exit, never a panic.

use std::process::{Command, Output};

/// The repository root, as cargo reports it when running the test (a shared build cache may
/// have compiled this binary in another checkout).
fn root() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()).join("..")
}

fn edgegen(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgegen"));
    c.args(args).current_dir(root());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("edgegen runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("edgegen-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn inspect_prints_a_valid_model_and_rejects_malformed_ones() {
    let good = std::fs::read(root().join("models/vae-fmnist/decoder.egm")).unwrap();
    let ok = edgegen(&["inspect", "models/vae-fmnist/decoder.egm"], &[]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(text.contains("arena") && text.contains("ConvTranspose2d") && text.contains("vae-decoder"), "{text}");

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() / 3].to_vec(), "truncated"),
        ("flipped", flipped, "checksum"),
        ("garbage", b"hello, I am not a model file at all, but I am longer than a header is.".to_vec(), "bad magic"),
        ("empty", Vec::new(), "truncated"),
    ];
    for (name, bytes, want) in cases {
        let path = temp(name, &bytes);
        let o = edgegen(&["inspect", path.to_str().unwrap()], &[]);
        assert!(!o.status.success(), "{name} accepted");
        let e = stderr(&o);
        assert!(e.contains(want) && !e.contains("panicked"), "{name}: {e}");
        std::fs::remove_file(path).ok();
    }
    let missing = edgegen(&["inspect", "no/such/file.egm"], &[]);
    assert!(!missing.status.success() && stderr(&missing).contains("cannot read"));
    // A flow file: its couplings; a damaged one, the reason.
    let o = edgegen(&["inspect", "models/flow-fmnist/flow.egf"], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && text.contains("flow file") && text.contains("coupling 8: Checker"), "{text}{}", stderr(&o));
    let mut flow = std::fs::read(root().join("models/flow-fmnist/flow.egf")).unwrap();
    let n = flow.len();
    flow[n / 2] ^= 1;
    let path = temp("flow.egf", &flow);
    let o = edgegen(&["inspect", path.to_str().unwrap()], &[]);
    assert!(!o.status.success() && stderr(&o).contains("checksum") && !stderr(&o).contains("panicked"), "{}", stderr(&o));
    std::fs::remove_file(path).ok();
}

#[test]
fn missing_dataset_names_the_install_command() {
    let o = edgegen(
        &["train", "vae", "--epochs", "1", "--limit", "64", "--quiet", "--run-dir", "/tmp/edgegen-never"],
        &[("EDGEGEN_FASHION_MNIST", "/nonexistent")],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("Fashion-MNIST not found") && e.contains("data fetch"), "{e}");
}

#[test]
fn bad_arguments_are_rejected_cleanly() {
    for args in [
        vec!["train", "vae", "--epochs", "0"],
        vec!["train", "vae", "--lr", "7"],
        vec!["train", "vae", "--max-steps", "0"],
        vec!["calibrate", "--model", "models/vae-fmnist", "--score", "loudest"],
        vec!["train", "pixelcnn", "--components", "99"],
        vec!["train", "gan", "--fine-features", "999"],
        vec!["train", "gan", "--features", "7"],
        vec!["train", "gan", "--ema", "1.5"],
        vec!["train", "gan", "--d-layers", "4"],
        vec!["train", "gan", "--epochs", "3", "--lr-decay-from", "3"],
        vec!["quantize", "--model", "no/such/dir"],
        vec!["quantize", "--model", "models/pixelcnn-fmnist", "--ranges", "median"],
        vec!["quantize", "--model", "models/pixelcnn-fmnist", "--ranges", "percentile:40"],
        vec!["demo", "--engine", "fast"],
        vec!["frobnicate"],
        vec!["train", "vae", "--device", "gpu"],
        vec!["train", "vae", "--device", "cuda:x"],
        vec!["train", "flow", "--hidden", "0"],
        vec!["train", "flow", "--pre", "0", "--channel", "0", "--post", "0"],
        vec!["train", "gan", "--conditional", "--data", "models/frames"],
    ] {
        let o = edgegen(&args, &[]);
        assert!(!o.status.success(), "{args:?} accepted");
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
    // A backend this build lacks: refused before any work, naming the feature to build with.
    if !cfg!(feature = "cuda") {
        let o = edgegen(&["train", "vae", "--device", "cuda:0", "--limit", "64"], &[]);
        assert!(!o.status.success() && stderr(&o).contains("--features cuda"), "{}", stderr(&o));
    }
}

#[test]
fn a_closed_pipe_ends_output_without_a_panic() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgegen"))
        .args(["score", "--model", "models/vae-fmnist", "models/frames/fashion-mnist-test.idx", "models/frames/mnist-digits.idx"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then close the pipe while the command still has lines to write.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn score_uses_the_calibrated_guard_of_the_model_file() {
    let o = Command::new(env!("CARGO_BIN_EXE_edgegen"))
        .args(["score", "--model", "models/pixelcnn-fmnist", "models/frames/fashion-mnist-test.idx", "models/frames/mnist-digits.idx"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 24);
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("models/pixelcnn-fmnist/card.json")).unwrap()).unwrap();
    for l in &lines {
        assert_eq!(l["score_kind"], card["guard"]["score"], "{l}");
        let (score, threshold) = (l["score"].as_f64().unwrap(), l["threshold"].as_f64().unwrap());
        assert!((threshold - card["guard"]["threshold"].as_f64().unwrap()).abs() < 1e-4, "{l}");
        // The printed score is rounded to 4 decimals; the verdict is the exact comparison.
        if (score - threshold).abs() > 1e-4 {
            assert_eq!(l["accept"].as_bool().unwrap(), score <= threshold, "{l}");
        }
        assert!(l["bpd"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn inspect_names_the_guard_score_and_its_constants() {
    let o = edgegen(&["inspect", "models/pixelcnn-fmnist/model.egm"], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = text.lines().find(|l| l.starts_with("guard:")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("score evidence") && line.contains("cc_median") && line.contains("line_spread"), "{line}");
    let block = text.lines().find(|l| l.starts_with("guard block:")).unwrap_or_else(|| panic!("{text}"));
    assert!(block.contains("8-component Gaussian mixture over the 16-d posterior mean"), "{block}");
    for term in &edgegen_runtime::guard::EVIDENCE_TERMS[3..] {
        assert!(block.contains(&format!("{term} median")), "{term}: {block}");
    }
    let o = edgegen(&["inspect", "models/vae-fmnist/encoder.egm"], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("guard: score complexity_corrected threshold"), "{text}");
}

/// Every argument of every subcommand says what it does in `--help`.
#[test]
fn every_argument_has_help_text() {
    let commands: &[&[&str]] = &[
        &["data", "fetch"],
        &["data", "frames"],
        &["train", "vae"],
        &["train", "pixelcnn"],
        &["train", "gan"],
        &["train", "classifier"],
        &["train", "flow"],
        &["quantize"],
        &["compile"],
        &["score"],
        &["classify"],
        &["sample"],
        &["calibrate"],
        &["eval", "ood"],
        &["eval", "fd"],
        &["eval", "selective"],
        &["eval", "bayes"],
        &["bench"],
        &["inspect"],
        &["export", "tflite"],
        &["export", "c-array"],
        &["demo"],
    ];
    for words in commands {
        let o = edgegen(&[*words, &["--help"]].concat(), &[]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{words:?}: {}", stderr(&o));
        // clap prints an argument's help after it on its line, or (long help) on the next
        // line; an argument without help has neither, or only its default.
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate().filter(|(_, l)| l.starts_with("--") || l.starts_with('<')) {
            let inline = line.split_once("  ").map_or("", |(_, rest)| rest.trim());
            let next = lines.get(i + 1).copied().unwrap_or("");
            let below = !(next.is_empty() || next.starts_with('-') || next.starts_with('<') || next.starts_with('['));
            let has_help = (!inline.is_empty() && !inline.starts_with('[')) || (inline.is_empty() && below);
            assert!(has_help, "{words:?}: no help for `{line}`:\n{text}");
        }
    }
}

/// A quick run is quick end to end: the published figures follow `--limit` (or
/// `--eval-count`), the card says on how many images each was measured, progress reaches a log
/// (stderr is a pipe here) phase by phase, and nothing is written outside `--out`/`--run-dir`.
#[test]
fn quick_runs_measure_what_they_say_and_log_each_phase() {
    let base = std::env::temp_dir().join(format!("edgegen-cli-{}-quick", std::process::id()));
    let (out, run) = (base.join("model"), base.join("run"));
    let o = edgegen(
        &[
            "train",
            "vae",
            "--epochs",
            "1",
            "--limit",
            "256",
            "--batch",
            "64",
            "--latent",
            "4",
            "--iwae-k",
            "4",
            "--eval-count",
            "24",
            "--out",
            out.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
        ],
        &[],
    );
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    for phase in ["vae: done, 4/4", "on 24 Fashion-MNIST test images", "on 24 MNIST digits", "eval: done, 24/24"] {
        assert!(e.contains(phase), "no `{phase}` in the log:\n{e}");
    }
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["test_images"], 24);
    assert_eq!(card["mnist_images"], 24);
    assert!(card["eval_note"].as_str().unwrap().contains("first 24 of"), "{}", card["eval_note"]);
    assert!(card["dataset"].as_str().unwrap().contains("first 256 training images"), "{}", card["dataset"]);
    let command = card["train_command"].as_str().unwrap();
    assert!(command.contains("--eval-count 24") && command.contains(&format!("--out {}", out.display())), "{command}");
    std::fs::remove_dir_all(base).ok();
}

/// `score` takes any picture: converted to the model's channels, a size mismatch refused
/// with the fix unless `--resize`, and `--fail-on-reject` says in the exit status whether
/// any frame was rejected.
#[test]
fn score_reads_any_picture_and_reports_rejections_in_its_status() {
    let dir = std::env::temp_dir().join(format!("edgegen-cli-{}-pictures", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    // A 64x64 RGB JPEG of a smooth gradient and a 28x28 BMP of uniform noise.
    let gradient = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 128]));
    gradient.save(path("big.jpg")).unwrap();
    let mut rng = 12345u32;
    let noise = image::GrayImage::from_fn(28, 28, |_, _| {
        rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12345);
        image::Luma([(rng >> 16) as u8])
    });
    noise.save(path("noise.bmp")).unwrap();
    std::fs::write(path("notes.txt"), "not a picture").unwrap();
    let model = ["score", "--model", "models/pixelcnn-fmnist"];

    let o = edgegen(&[&model[..], &[&path("big.jpg")]].concat(), &[]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("64x64") && e.contains("--resize") && !e.contains("panicked"), "{e}");
    let o = edgegen(&[&model[..], &["--resize", &path("big.jpg")]].concat(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(line["bpd"].as_f64().unwrap() > 0.0 && line["accept"].is_boolean(), "{line}");

    let o = edgegen(&[&model[..], &["--fail-on-reject", &path("noise.bmp")]].concat(), &[]);
    assert_eq!(o.status.code(), Some(3), "noise is rejected: {}", stderr(&o));
    let o = edgegen(&[&model[..], &[&path("noise.bmp")]].concat(), &[]);
    assert_eq!(o.status.code(), Some(0), "without the flag a rejection is not an error");
    let o = edgegen(&[&model[..], &[&path("notes.txt")]].concat(), &[]);
    let e = stderr(&o);
    assert!(o.status.code() == Some(1) && e.contains("notes.txt") && e.contains("PNG, JPEG"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

/// The whole path on a user's own pictures: a folder of colour pictures of mixed formats and
/// sizes (one unreadable) → `train pixelcnn --data` at a non-square colour geometry →
/// `quantize` (calibrated on the folder's validation part) → `calibrate` → `score`; the
/// geometry is in the compiled file and the card, the int8 engine's row-band colour sampling
/// equals its full-pass sampling, and the default output never touches `models/`.
#[test]
fn own_pictures_train_quantize_calibrate_and_score() {
    let base = std::env::temp_dir().join(format!("edgegen-cli-{}-own", std::process::id()));
    let pictures = base.join("camera");
    std::fs::create_dir_all(pictures.join("day2")).unwrap();
    for i in 0..80u32 {
        // Smooth colour gradients with a per-picture offset, some larger than the frames.
        let (w, h) = if i % 3 == 0 { (24, 20) } else { (12, 10) };
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 9 + i) as u8, (y * 11 + 2 * i) as u8, (100 + i) as u8]));
        let ext = ["png", "bmp", "ppm", "tiff"][i as usize % 4];
        img.save(pictures.join(if i % 2 == 0 { "day2" } else { "." }).join(format!("f{i:03}.{ext}"))).unwrap();
    }
    std::fs::write(pictures.join("half-written.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    let (out, run) = (base.join("model"), base.join("run"));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let o = edgegen(
        &[
            "train",
            "pixelcnn",
            "--data",
            &s(&pictures),
            "--size",
            "10x12",
            "--channels",
            "3",
            "--resize",
            "--epochs",
            "1",
            "--batch",
            "8",
            "--limit",
            "64",
            "--features",
            "6",
            "--inner",
            "3",
            "--blocks",
            "1",
            "--components",
            "2",
            "--out",
            &s(&out),
            "--run-dir",
            &s(&run),
        ],
        &[],
    );
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("skipped 1 unreadable") && e.contains("half-written.png"), "{e}");
    for step in [&["quantize", "--model", &s(&out), "--head-fit"][..], &["calibrate", "--model", &s(&out)][..]] {
        let o = edgegen(step, &[]);
        assert!(o.status.success(), "{step:?}: {}", stderr(&o));
    }
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["geometry"], serde_json::json!({"channels": 3, "height": 10, "width": 12}));
    // The head refit in colour: one scale and offset per head channel (3 colours × 3 × 2
    // components), no worse on the frames it was fitted to, and named in the card.
    let calibration: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("calibration.json")).unwrap()).unwrap();
    let fit = &calibration["head_fit"]["parts"]["model"];
    assert_eq!((fit["scale"].as_array().unwrap().len(), fit["shift"].as_array().unwrap().len()), (18, 18), "{fit}");
    assert!(fit["bpd_after"].as_f64().unwrap() <= fit["bpd_before"].as_f64().unwrap(), "{fit}");
    assert!(card["quantization"]["scheme"].as_str().unwrap().contains("head_fit"), "{card}");
    assert_eq!(card["data"]["kind"], "folder");
    assert!(card["test_bpd_int8"].as_f64().unwrap() > 0.0 && card["guard"]["threshold"].is_number(), "{card}");
    let calibration: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("calibration.json")).unwrap()).unwrap();
    assert_eq!(calibration["calibration_images"], "validation");

    let bytes = std::fs::read(out.join("model.egm")).unwrap();
    let model = edgegen_runtime::model::Model::from_bytes(&bytes).unwrap();
    assert_eq!((model.version(), model.geometry().dims()), (edgegen_runtime::model::VERSION, [3, 10, 12]));
    let engine = edgegen_runtime::engine::PixelCnn::new(model, edgegen_runtime::kernels::Kernels::Optimized).unwrap();
    let (mut a, mut b) = (vec![0u8; 360], vec![0u8; 360]);
    engine.sample(&mut vec![0u8; engine.sample_arena_len()], 5, &mut a).unwrap();
    engine.sample_full(&mut vec![0u8; engine.arena_len()], 5, &mut b).unwrap();
    assert_eq!(a, b, "row-band colour sampling differs from full passes");

    let o = edgegen(&["score", "--model", &s(&out), "--resize", &s(&pictures.join("day2/f000.png")), &s(&pictures.join("f001.bmp"))], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);

    // A background model (`--perturb`) has its head refitted on frames perturbed as it was
    // trained, and says so.
    let (bg, bg_run) = (base.join("model-bg"), base.join("run-bg"));
    #[rustfmt::skip]
    let o = edgegen(
        &["train", "pixelcnn", "--data", &s(&pictures), "--size", "10x12", "--channels", "3", "--resize", "--epochs", "1", "--batch", "8",
          "--limit", "64", "--features", "6", "--inner", "3", "--blocks", "1", "--components", "2", "--perturb", "0.2", "--out", &s(&bg),
          "--run-dir", &s(&bg_run)],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = edgegen(&["quantize", "--model", &s(&bg), "--head-fit"], &[]);
    assert!(o.status.success() && stderr(&o).contains("perturbed as in training (--perturb 0.2)"), "{}", stderr(&o));
    let calibration: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(bg.join("calibration.json")).unwrap()).unwrap();
    assert_eq!(calibration["head_fit"]["parts"]["model"]["perturb"], 0.2);

    // The VAE follows the geometry too (one resolution stage for 10x12), through int8.
    let (vae, vae_run) = (base.join("vae"), base.join("vae-run"));
    let o = edgegen(
        &[
            "train",
            "vae",
            "--data",
            &s(&pictures),
            "--size",
            "10x12",
            "--channels",
            "3",
            "--resize",
            "--epochs",
            "1",
            "--batch",
            "8",
            "--limit",
            "64",
            "--latent",
            "2",
            "--iwae-k",
            "2",
            "--out",
            &s(&vae),
            "--run-dir",
            &s(&vae_run),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = edgegen(&["quantize", "--model", &s(&vae)], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for part in ["encoder.egm", "decoder.egm"] {
        let bytes = std::fs::read(vae.join(part)).unwrap();
        assert_eq!(edgegen_runtime::model::Model::from_bytes(&bytes).unwrap().geometry().dims(), [3, 10, 12], "{part}");
    }
    let o = edgegen(&["score", "--model", &s(&vae), "--resize", &s(&pictures.join("f001.bmp"))], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(base).ok();
}

/// `compile --ram/--flash/--board` refuses a model that does not fit, with the numbers, and
/// writes nothing; one that fits compiles as before.
#[test]
fn compile_refuses_a_model_that_does_not_fit() {
    let dir = std::env::temp_dir().join(format!("edgegen-cli-{}-fit", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["card.json", "calibration.json", "model.onnx", "model.egm"] {
        std::fs::copy(root().join("models/pixelcnn-fmnist").join(f), dir.join(f)).unwrap();
    }
    let before = std::fs::read(dir.join("model.egm")).unwrap();
    std::fs::remove_file(dir.join("model.egm")).unwrap();
    let d = dir.to_str().unwrap();
    let o = edgegen(&["compile", "--model", d, "--ram", "64K", "--quiet"], &[]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("does not fit") && e.contains("B over") && e.contains("Nothing was written"), "{e}");
    assert!(!dir.join("model.egm").exists(), "a refused model is not written");
    let o = edgegen(&["compile", "--model", d, "--board", "stm32f407", "--flash", "10K", "--quiet"], &[]);
    assert!(!o.status.success() && stderr(&o).contains("flash: needs"), "{}", stderr(&o));
    let o = edgegen(&["compile", "--model", d, "--board", "nucleo-l4r5zi", "--quiet"], &[]);
    assert!(o.status.success() && stderr(&o).contains("fits nucleo-l4r5zi"), "{}", stderr(&o));
    // The same program as the bundled file (whose guard block, from calibration, a fresh
    // compile without an earlier file does not have).
    let after = std::fs::read(dir.join("model.egm")).unwrap();
    let (off, len) = edgegen_runtime::model::Model::from_bytes(&before).unwrap().guard_block_range();
    let program = if len > 0 { off } else { before.len() };
    assert!(after.len() <= program && program - after.len() < 4, "{} vs {program}", after.len());
    // Compiling again over it keeps what calibration stored (metadata and guard block).
    std::fs::write(dir.join("model.egm"), &before).unwrap();
    let o = edgegen(&["compile", "--model", d, "--quiet"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.join("model.egm")).unwrap(), before, "a recompile keeps the calibrated guard");
    let o = edgegen(&["compile", "--model", d, "--board", "pdp-11"], &[]);
    assert!(!o.status.success() && stderr(&o).contains("unknown board"), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).ok();
}

/// The GAN follows the frame too: a 16×16 colour GAN trains on a folder, quantizes (no FD:
/// its classifier knows Fashion-MNIST only) and samples through the int8 engine; a frame it
/// cannot have is refused before anything is written.
#[test]
fn gan_trains_on_a_folder_of_colour_pictures() {
    let dir = std::env::temp_dir().join(format!("edgegen-cli-{}-gan-folder", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(dir.join("pictures")).unwrap();
    for i in 0..40u32 {
        let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 15) as u8, (y * 15 + i) as u8, (200 - i) as u8]));
        img.save(dir.join("pictures").join(format!("p{i:02}.png"))).unwrap();
    }
    let s = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    let pictures = s(dir.join("pictures"));
    let o = edgegen(&["train", "gan", "--data", &pictures, "--size", "30x30", "--resize", "--run-dir", &s(dir.join("bad"))], &[]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("30x30 cannot"), "{e}");
    assert!(!dir.join("bad").exists(), "a refused run writes nothing");
    let (out, run) = (dir.join("model"), dir.join("run"));
    #[rustfmt::skip]
    let o = edgegen(
        &["train", "gan", "--data", &pictures, "--channels", "3", "--epochs", "1", "--batch", "8", "--latent", "4",
          "--features", "8", "--d-features", "4", "--bn-samples", "64", "--mbstd", "2", "--out", &s(out.clone()), "--run-dir", &s(run)],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
    // A minibatch-std discriminator scores a group of images at once: its ONNX file takes
    // one group of 2, and tract gives the trainer's logits for its golden groups.
    let disc = edgegen_runtime::onnx::OnnxModel::load(&out.join("discriminator.onnx")).unwrap();
    for i in 0..3 {
        let set = out.join(format!("golden/discriminator/test_data_set_{i}"));
        let (_, dims, images) = edgegen_trainer::export::onnx::load_tensor(&set.join("input_0.pb")).unwrap();
        let (_, _, want) = edgegen_trainer::export::onnx::load_tensor(&set.join("output_0.pb")).unwrap();
        assert_eq!(dims, [2, 3, 16, 16]);
        let got = disc.run(&images, "discriminator").unwrap().swap_remove(0);
        assert!(got.len() == 2 && got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-4), "{got:?} vs {want:?}");
    }
    assert!(card["files"]["golden"].as_str().is_some_and(|t| t.contains("group of 2")), "{card}");
    assert_eq!(card["geometry"], serde_json::json!({"channels": 3, "height": 16, "width": 16}));
    assert!(card.get("fd").is_none() && card["fd_note"].as_str().unwrap().contains("Fashion-MNIST"), "{card}");
    let o = edgegen(&["quantize", "--model", &s(out.clone())], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(out.join("generator.egm")).unwrap();
    let model = edgegen_runtime::model::Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.geometry().dims(), [3, 16, 16]);
    let o = edgegen(&["sample", "--model", &s(out.clone()), "--count", "4", "--out", &s(dir.join("grid.png"))], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let grid = image::open(dir.join("grid.png")).unwrap();
    assert!(grid.color().has_color(), "a colour model's samples are drawn in colour");
    std::fs::remove_dir_all(dir).ok();
}

/// `eval ood` covers structure (rotations, mirror images, occlusion, exposure, zoom) beside
/// MNIST and the pixel faults, drops the frames a corruption left unchanged and counts them,
/// and draws its pictures (ROC panels, score histograms, example verdicts).
#[test]
fn eval_ood_covers_structural_faults_and_draws_its_plots() {
    let out = std::env::temp_dir().join(format!("edgegen-cli-{}-ood", std::process::id()));
    std::fs::remove_dir_all(&out).ok();
    let o =
        edgegen(&["eval", "ood", "--models", "models/pixelcnn-fmnist", "--count", "100", "--out", out.to_str().unwrap(), "--quiet"], &[]);
    let e = stderr(&o);
    if e.contains("fonts-dejavu-core") && std::env::var("EDGEGEN_REQUIRE_QEMU").as_deref() != Ok("1") {
        // No font on this machine (scripts/test.sh installs one and requires it): the error
        // names the package, and the report is kept.
        assert!(out.join("ood.json").exists(), "{e}");
        return;
    }
    assert!(o.status.success(), "{e}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("ood.json")).unwrap()).unwrap();
    let rows = report["results"].as_array().unwrap();
    for set in ["mnist", "noise", "dead-columns", "rotated-90", "upside-down", "mirrored", "occluded", "under-exposed", "zoomed-out"] {
        assert!(rows.iter().any(|r| r["outliers"] == set), "no {set} rows");
    }
    assert!(rows.iter().filter(|r| r["group"] == "structural").count() >= 9 * 4);
    // Dead columns over black background leave some frames unchanged: dropped and counted.
    let dead = rows.iter().find(|r| r["outliers"] == "dead-columns").unwrap();
    let dropped = dead["unchanged_frames_dropped"].as_u64().unwrap();
    assert_eq!(dead["frames"].as_u64().unwrap() + dropped, 100, "{dead}");
    for png in ["roc.png", "scores.png", "examples.png"] {
        let img = image::open(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(img.width() > 400 && img.height() > 300, "{png}");
    }
    std::fs::remove_dir_all(out).ok();
}

/// `eval statistics` writes every candidate statistic per frame for the validation frames,
/// the test frames and every outlier set (what `scripts/guard-terms.py` chooses the guard's
/// terms from): the evidence guard's terms are there and finite on every frame.
#[test]
fn eval_statistics_writes_the_guard_candidates() {
    let out = std::env::temp_dir().join(format!("edgegen-cli-{}-statistics.csv", std::process::id()));
    let o = edgegen(&["eval", "statistics", "--vae", "models/vae-fmnist", "--count", "6", "--out", out.to_str().unwrap(), "--quiet"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    for set in ["validation", "test", "mnist", "rotated-90", "occluded", "under-exposed"] {
        assert!(rows.iter().any(|r| r[0] == set), "no {set} rows");
    }
    for term in ["patch_ratio", "latent_score", "rec_elbo_cc", "rec_ratio_line", "rec_ratio_patch", "img_max", "mu_15"] {
        let at = header.iter().position(|h| *h == term).unwrap_or_else(|| panic!("no {term} column: {header:?}"));
        for r in &rows {
            assert!(r[at].parse::<f64>().is_ok_and(f64::is_finite), "{term} of {} {}: {}", r[0], r[2], r[at]);
        }
    }
    // The script that chose the evidence guard reads it: every section runs, down to the
    // weight search and the shares let through.
    let run = std::process::Command::new("python3").arg(root().join("scripts/guard-terms.py")).arg(&out).output().unwrap();
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for section in ["every candidate alone", "evidence: 8 terms, lse@1", "accepted at that threshold", "forward selection", "weights cc="] {
        assert!(printed.contains(section), "no {section:?} in {printed}");
    }
    std::fs::remove_file(out).ok();
}

/// `scripts/classifier-ood.py` (the classifier's features against MNIST digits, in
/// docs/guard.md) runs on the bundled classifier and prints an AUROC for each score; the
/// features' distance tells most digits from garments (0.989 on 2,000 of each).
#[test]
fn classifier_ood_script_scores_the_digits() {
    let run = std::process::Command::new("python3")
        .current_dir(root())
        .arg(root().join("scripts/classifier-ood.py"))
        .args(["--count", "200", "--model"])
        .arg(root().join("models/classifier-fmnist/classifier.onnx"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for score in ["Mahalanobis, 64 penultimate features", "Mahalanobis, 10 logits", "energy", "maximum softmax probability"] {
        let line = printed.lines().find(|l| l.contains(score)).unwrap_or_else(|| panic!("no {score:?} in {printed}"));
        let auroc: f64 = line.split_whitespace().last().unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&auroc), "{line}");
        if score.starts_with("Mahalanobis, 64") {
            assert!(auroc > 0.9, "{line}");
        }
    }
}

/// The structural guard needs its VAE beside the model; without one, or with one elsewhere,
/// calibration is refused before anything is written.
#[test]
fn structural_calibration_names_what_it_needs() {
    let before = std::fs::read(root().join("models/pixelcnn-fmnist/model.egm")).unwrap();
    let o = edgegen(&["calibrate", "--model", "models/pixelcnn-fmnist", "--score", "structural", "--quiet"], &[]);
    assert!(!o.status.success() && stderr(&o).contains("needs a VAE: `--vae DIR`"), "{}", stderr(&o));
    let o = edgegen(&["calibrate", "--model", "models/pixelcnn-fmnist", "--vae", "/tmp/vae-fmnist", "--quiet"], &[]);
    assert!(!o.status.success() && stderr(&o).contains("must sit beside"), "{}", stderr(&o));
    let o = edgegen(&["calibrate", "--model", "models/pixelcnn-fmnist", "--vae", "models/vae-fmnist", "--components", "99"], &[]);
    assert!(!o.status.success() && stderr(&o).contains("--components must be in 1..=16"), "{}", stderr(&o));
    assert_eq!(std::fs::read(root().join("models/pixelcnn-fmnist/model.egm")).unwrap(), before, "nothing was written");
}

/// `sample --interpolate` draws one row per seed pair; a PixelCNN and a malformed pair are
/// refused with what to do.
#[test]
fn sample_walks_the_latent_space() {
    let dir = std::env::temp_dir().join(format!("edgegen-cli-{}-walk", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("walk.png");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let o = edgegen(&["sample", "--model", "models/gan-fmnist", "--interpolate", "3:7,1:2", "--count", "6", "--out", &s(&png)], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let grid = image::open(&png).unwrap();
    assert!(grid.width() > 2 * grid.height(), "two rows of six: {}x{}", grid.width(), grid.height());
    let o = edgegen(&["sample", "--model", "models/pixelcnn-fmnist", "--interpolate", "3:7", "--out", &s(&png)], &[]);
    assert!(!o.status.success() && stderr(&o).contains("VAE or a GAN"), "{}", stderr(&o));
    let o = edgegen(&["sample", "--model", "models/vae-fmnist", "--interpolate", "3-7", "--out", &s(&png)], &[]);
    assert!(!o.status.success() && stderr(&o).contains("SEED:SEED"), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).ok();
}

/// A conditional GAN draws the class asked for by name, start of a name, index or `all` (a
/// column per class), on the int8 engine and through tract alike; a class it does not have,
/// an ambiguous name, and `--class` on a model without classes are refused with the classes
/// listed.
#[test]
fn sample_draws_the_class_asked_for() {
    let dir = std::env::temp_dir().join(format!("edgegen-cli-{}-class", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let png = |n: &str| s(&dir.join(n));
    let model = "models/cgan-fmnist";
    let o = edgegen(&["sample", "--model", model, "--class", "sneaker", "--count", "4", "--out", &png("sneaker.png")], &[]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("class 7 (Sneaker)"), "{}", stderr(&o));
    let o = edgegen(
        &["sample", "--model", model, "--engine", "tract", "--class", "ankle-boot", "--count", "4", "--out", &png("boot.png")],
        &[],
    );
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("class 9 (Ankle boot)"), "{}", stderr(&o));
    let o = edgegen(&["sample", "--model", model, "--class", "all", "--count", "2", "--out", &png("all.png")], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let grid = image::open(dir.join("all.png")).unwrap();
    assert!(grid.width() > 4 * grid.height(), "two rows of ten classes: {}x{}", grid.width(), grid.height());
    let o = edgegen(&["sample", "--model", model, "--class", "hat", "--out", &png("x.png")], &[]);
    assert!(!o.status.success() && stderr(&o).contains("0 T-shirt/top") && stderr(&o).contains("9 Ankle boot"), "{}", stderr(&o));
    let o = edgegen(&["sample", "--model", model, "--class", "t", "--out", &png("x.png")], &[]);
    assert!(!o.status.success() && stderr(&o).contains("several classes"), "{}", stderr(&o));
    let o = edgegen(&["sample", "--model", "models/gan-fmnist", "--class", "1", "--out", &png("x.png")], &[]);
    assert!(!o.status.success() && stderr(&o).contains("without classes"), "{}", stderr(&o));
    let o =
        edgegen(&["sample", "--model", model, "--interpolate", "0:1", "--class", "bag", "--count", "3", "--out", &png("walk.png")], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dir.join("x.png").exists(), "a refused run writes nothing");
    std::fs::remove_dir_all(dir).ok();
}

/// A flow end to end from the command line: a quick run publishes both graphs and a card
/// with its bits/dim, samples, scores and walks through tract; the int8 engine (the default)
/// asks for `quantize` first, which compiles the flow file, after which it samples and
/// scores.
#[test]
fn flow_trains_and_runs_through_tract() {
    let dir = std::env::temp_dir().join(format!("edgegen-cli-{}-flow", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let s = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    let (out, run) = (dir.join("model"), dir.join("run"));
    #[rustfmt::skip]
    let o = edgegen(
        &["train", "flow", "--epochs", "1", "--limit", "64", "--batch", "16", "--hidden", "4", "--pre", "1", "--channel", "1",
          "--post", "0", "--eval-count", "8", "--quiet", "--out", &s(out.clone()), "--run-dir", &s(run)],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["family"], "flow");
    assert!(card["test_bpd"].as_f64().unwrap() > 0.0 && card["test_images"] == 8, "{card}");
    assert!(out.join("density.onnx").exists() && out.join("sampler.onnx").exists() && out.join("samples.png").exists());
    let o = edgegen(&["sample", "--model", &s(out.clone()), "--engine", "tract", "--count", "4", "--out", &s(dir.join("s.png"))], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = edgegen(&["score", "--model", &s(out.clone()), "--engine", "tract", "models/frames/fashion-mnist-test.idx"], &[]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"bpd\""), "{}", stderr(&o));
    let o = edgegen(
        &[
            "sample",
            "--model",
            &s(out.clone()),
            "--engine",
            "tract",
            "--interpolate",
            "1:2",
            "--count",
            "3",
            "--out",
            &s(dir.join("w.png")),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // The int8 engine (the default) before `quantize`: no flow file, and the way to make one.
    let o = edgegen(&["sample", "--model", &s(out.clone()), "--out", &s(dir.join("x.png"))], &[]);
    assert!(!o.status.success() && stderr(&o).contains("quantize") && !stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(!dir.join("x.png").exists(), "a refused run writes nothing");
    // `quantize` compiles the couplings into flow.egf and measures it against f32; then the
    // default engine samples and scores with it.
    let o = edgegen(&["quantize", "--model", &s(out.clone()), "--calibration", "32", "--quiet"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
    let (f, q) = (card["int8"]["test_bpd_centre_f32"].as_f64().unwrap(), card["int8"]["test_bpd_centre_int8"].as_f64().unwrap());
    assert!(f > 0.0 && (q - f).abs() < 0.5, "{card}");
    assert!(out.join("flow.egf").exists() && out.join("calibration.json").exists());
    let o = edgegen(&["sample", "--model", &s(out.clone()), "--count", "4", "--out", &s(dir.join("x.png"))], &[]);
    assert!(o.status.success() && dir.join("x.png").exists(), "{}", stderr(&o));
    let o = edgegen(&["score", "--model", &s(out.clone()), "models/frames/fashion-mnist-test.idx"], &[]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"bpd\""), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).ok();
}

/// `export c-array` writes a model file as C that a C compiler accepts and whose bytes are the
/// file's; a file that is no model and a name that is no identifier are refused.
#[test]
fn c_array_compiles_and_holds_the_model() {
    let dir = std::env::temp_dir().join(format!("edgegen-cli-{}-carray", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join("model.c");
    let o = edgegen(&["export", "c-array", "--file", "models/pixelcnn-fmnist/model.egm", "--out", c.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&c).unwrap();
    let bytes: Vec<u8> = text
        .split('{')
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap()
        .split(',')
        .filter_map(|t| u8::from_str_radix(t.trim().trim_start_matches("0x"), 16).ok())
        .collect();
    assert_eq!(bytes, std::fs::read(root().join("models/pixelcnn-fmnist/model.egm")).unwrap());
    if let Ok(cc) = Command::new("cc").args(["-std=c11", "-Wall", "-Werror", "-c", "-o"]).arg(dir.join("model.o")).arg(&c).output() {
        assert!(cc.status.success(), "cc rejects the file: {}", String::from_utf8_lossy(&cc.stderr));
    }
    let junk = temp("junk.egm", b"not a model at all");
    let o = edgegen(&["export", "c-array", "--file", junk.to_str().unwrap(), "--out", c.to_str().unwrap()], &[]);
    assert!(!o.status.success() && stderr(&o).contains("neither a TFLite file"), "{}", stderr(&o));
    let o =
        edgegen(&["export", "c-array", "--file", "models/pixelcnn-fmnist/model.egm", "--name", "3-x", "--out", c.to_str().unwrap()], &[]);
    assert!(!o.status.success() && stderr(&o).contains("not a C identifier"), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).ok();
}

/// `classify`: the class and probability of every frame, the guard's verdict, and a label
/// only where the guard accepts; the int8 answers equal the runtime's (the same engine the
/// firmware runs), the class names are the card's, and a model that is not a classifier is
/// refused with what to give instead.
#[test]
fn classify_labels_only_the_frames_the_guard_accepts() {
    let o = edgegen(&["classify", "models/frames/fashion-mnist-test.idx", "models/frames/mnist-digits.idx", "--fail-on-reject"], &[]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 24, "{}", stderr(&o));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("models/classifier-fmnist/card.json")).unwrap()).unwrap();
    let names: Vec<&str> = card["classes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let frames = edgegen_trainer::data::read_idx_images(&root().join("models/frames/fashion-mnist-test.idx")).unwrap();
    let bytes = std::fs::read(root().join("models/classifier-fmnist/classifier.egm")).unwrap();
    let model = edgegen_runtime::model::Model::from_bytes(&bytes).unwrap();
    let c = edgegen_runtime::engine::Classifier::new(model, edgegen_runtime::kernels::Kernels::Reference).unwrap();
    let mut arena = vec![0u8; c.arena_len()];
    let mut rejected = 0;
    for (i, l) in lines.iter().enumerate() {
        let class = l["class"].as_u64().unwrap() as usize;
        assert_eq!(l["name"], names[class], "{l}");
        let accept = l["accept"].as_bool().unwrap();
        assert_eq!(l["label"].as_str(), accept.then_some(names[class]), "{l}");
        rejected += !accept as usize;
        if i < 12 {
            let want = c.classify(&mut arena, frames.image(i)).unwrap();
            assert_eq!(class, want.class, "{l}");
            assert!((l["probability"].as_f64().unwrap() - want.probability).abs() < 1e-4, "{l}");
        }
    }
    // Most digits are rejected (so get no label); --fail-on-reject says so in the status.
    assert!(rejected >= 6, "{rejected} rejected");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = edgegen(&["classify", "--model", "models/vae-fmnist", "models/frames/fashion-mnist-test.idx"], &[]);
    assert!(!o.status.success() && stderr(&o).contains("not a classifier"), "{}", stderr(&o));
}

/// `eval selective` measures selective classification and draws its curve.
#[test]
fn eval_selective_reports_coverage_and_outliers_labelled() {
    let out = std::env::temp_dir().join(format!("edgegen-cli-{}-selective", std::process::id()));
    std::fs::remove_dir_all(&out).ok();
    let o = edgegen(&["eval", "selective", "--count", "100", "--out", out.to_str().unwrap(), "--quiet"], &[]);
    let e = stderr(&o);
    if e.contains("fonts-dejavu-core") && std::env::var("EDGEGEN_REQUIRE_QEMU").as_deref() != Ok("1") {
        return;
    }
    assert!(o.status.success(), "{e}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("selective.json")).unwrap()).unwrap();
    let (cov, acc, all) =
        (r["coverage"].as_f64().unwrap(), r["accuracy_on_accepted"].as_f64().unwrap(), r["accuracy_all_test_frames"].as_f64().unwrap());
    assert!(cov > 0.9 && cov <= 1.0 && acc >= all - 0.02 && acc > 0.8, "{r}");
    let sets = r["per_set"].as_array().unwrap();
    assert!(sets.iter().any(|s| s["outliers"] == "mnist") && sets.len() >= 20, "{r}");
    let labelled = r["outliers_labelled"].as_f64().unwrap();
    assert!(labelled > 0.0 && labelled < 0.6, "{r}");
    let img = image::open(out.join("accuracy-coverage.png")).unwrap();
    assert!(img.width() >= 600 && img.height() >= 400);
    std::fs::remove_dir_all(out).ok();
}

/// A quick classifier run end to end: train (cross-entropy, accuracy as the validation
/// figure), publish, quantize (int8 accuracy in the card), and classify with it; a folder of
/// unlabelled pictures is refused before training.
#[test]
fn classifier_trains_quantizes_and_classifies() {
    let base = std::env::temp_dir().join(format!("edgegen-cli-{}-classifier", std::process::id()));
    std::fs::remove_dir_all(&base).ok();
    let (out, run) = (base.join("model"), base.join("run"));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let o = edgegen(
        &["train", "classifier", "--epochs", "1", "--limit", "512", "--batch", "64", "--quiet", "--out", &s(&out), "--run-dir", &s(&run)],
        &[],
    );
    if stderr(&o).contains("dataset-fashion-mnist") {
        return; // no dataset on this machine: missing_dataset_names_the_install_command covers it
    }
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("validation accuracy"), "{}", stderr(&o));
    let o = edgegen(&["quantize", "--model", &s(&out)], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["family"], "classifier");
    let (f32_acc, int8_acc) = (card["test_accuracy"].as_f64().unwrap(), card["test_accuracy_int8"].as_f64().unwrap());
    assert!(f32_acc > 0.3 && (f32_acc - int8_acc).abs() < 0.1, "{f32_acc} {int8_acc}");
    assert!(card["train_command"].as_str().unwrap().starts_with("cargo edgegen train classifier"));
    let o = edgegen(&["classify", "--model", &s(&out), "models/frames/fashion-mnist-test.idx"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 12);
    let pictures = base.join("pictures");
    std::fs::create_dir_all(&pictures).unwrap();
    let o = edgegen(&["train", "classifier", "--data", &s(&pictures), "--out", &s(&base.join("x"))], &[]);
    assert!(!o.status.success() && !stderr(&o).contains("panicked"), "{}", stderr(&o));
    std::fs::remove_dir_all(base).ok();
}

/// `eval bayes`: the VAE with a prior per class classifies (well above chance even on a
/// quick fit) and reports an AUROC per outlier set; the class priors it writes are a valid
/// block tied to the VAE's encoder.
#[test]
fn eval_bayes_classifies_with_the_vae() {
    let out = std::env::temp_dir().join(format!("edgegen-cli-{}-bayes", std::process::id()));
    std::fs::remove_dir_all(&out).ok();
    let o = edgegen(&["eval", "bayes", "--count", "100", "--fit", "2000", "--k", "1", "--out", out.to_str().unwrap(), "--quiet"], &[]);
    if stderr(&o).contains("dataset-fashion-mnist") {
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("bayes.json")).unwrap()).unwrap();
    assert!(r["accuracy"].as_f64().unwrap() > 0.6, "{r}");
    assert!(r["per_set"].as_array().unwrap().len() >= 20, "{r}");
    let block = std::fs::read(out.join("class-priors.bin")).unwrap();
    let block = edgegen_runtime::guard::GuardBlock::parse(&block).unwrap();
    let enc = std::fs::read(root().join("models/vae-fmnist/encoder.egm")).unwrap();
    assert_eq!(block.encoder_crc(), edgegen_runtime::model::Model::from_bytes(&enc).unwrap().crc());
    assert_eq!(block.components(), 10);
    std::fs::remove_dir_all(out).ok();
}
