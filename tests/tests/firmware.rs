//! The firmware in QEMU (Cortex-M4F on mps2-an386, Cortex-M55 on mps3-an547) against the host: every score, verdict and
//! generated sample it logs must equal, bit for bit, what the same runtime code computes
//! here for the same embedded models, frames and seeds.
//!
//! Needs qemu-system-arm, defmt-print and the thumbv7em-none-eabihf target (the README's
//! test command installs them and sets EDGEGEN_REQUIRE_QEMU=1, which turns their absence
//! into a failure instead of a skip).

mod common;

use edgegen_runtime::crc32::crc32;
use edgegen_runtime::engine::{Classifier, Gan, PixelCnn, Vae};
use edgegen_runtime::guard::PixelCnnScorer;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::Model;
use edgegen_runtime::rng::Rng;
use std::collections::HashMap;
use std::process::Command;

fn tools_available() -> bool {
    common::qemu_tools_available(&["defmt-print"])
}

use common::{fields, hex};

/// Section sizes of an ELF32 file: (name, size, flags, is_nobits) for allocated sections.
fn elf_sections(elf: &[u8]) -> Vec<(String, u64, u32, bool)> {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    assert_eq!(&elf[..5], b"\x7fELF\x01", "an ELF32 file");
    let (shoff, shentsize, shnum, shstrndx) = (u32_at(0x20) as usize, u16_at(0x2E), u16_at(0x30), u16_at(0x32));
    let sh = |i: usize| shoff + i * shentsize;
    let strtab = u32_at(sh(shstrndx) + 16) as usize;
    let mut out = Vec::new();
    for i in 0..shnum {
        let (name_off, kind, flags, size) = (u32_at(sh(i)) as usize, u32_at(sh(i) + 4), u32_at(sh(i) + 8), u32_at(sh(i) + 20));
        if flags & 2 == 0 || size == 0 {
            continue;
        }
        let name: String = elf[strtab + name_off..].iter().take_while(|&&b| b != 0).map(|&b| b as char).collect();
        out.push((name, size as u64, flags, kind == 8));
    }
    out
}

/// What a firmware image embeds (its cargo feature chooses; see firmware/src/assets.rs).
struct UseCase {
    /// The name the firmware logs at boot.
    name: &'static str,
    /// The cargo feature that builds it (none: the default image).
    feature: Option<&'static str>,
    /// The guard's PixelCNN and its background model (`models/...`).
    pixelcnn: &'static str,
    background: &'static str,
    /// The VAE's encoder and decoder, if embedded.
    vae: Option<(&'static str, &'static str)>,
    /// The GAN's generator.
    gan: &'static str,
    /// Whether the PixelCNN also samples on the device.
    pixelcnn_samples: bool,
    /// Whether the VAE samples and bounds every frame (else it only feeds the guard).
    vae_scores: bool,
    /// Scored frame sets: (name, file in models/frames).
    frames: &'static [(&'static str, &'static str)],
    /// The classifier that labels accepted frames, when the use case has classes.
    classifier: Option<&'static str>,
    /// The VAE's class priors, when the image runs the VAE as a Bayes classifier.
    class_priors: Option<&'static str>,
    /// The normalizing flow's file, when the image runs the flow.
    flow: Option<&'static str>,
}

const FASHION: UseCase = UseCase {
    name: "fashion",
    feature: None,
    pixelcnn: "pixelcnn-fmnist/model.egm",
    background: "pixelcnn-fmnist-bg/model.egm",
    vae: Some(("vae-fmnist/encoder.egm", "vae-fmnist/decoder.egm")),
    gan: "gan-fmnist/generator.egm",
    pixelcnn_samples: true,
    vae_scores: true,
    frames: &[("fashion", "fashion-mnist-test.idx"), ("mnist", "mnist-digits.idx"), ("faults", "sensor-faults.idx")],
    classifier: Some("classifier-fmnist/classifier.egm"),
    class_priors: None,
    flow: None,
};

/// The Fashion-MNIST image with classes: the VAE's Bayes classifier too (feature `bayes`)
/// and the class-conditional GAN in the GAN's place (feature `cgan`), each class drawn on
/// request; and the normalizing flow (feature `flow`).
const FASHION_CLASSES: UseCase = UseCase {
    feature: Some("bayes,cgan,flow"),
    class_priors: Some("bayes/class-priors.bin"),
    gan: "cgan-fmnist/generator.egm",
    flow: Some("flow-fmnist/flow.egf"),
    ..FASHION
};

const SLIDE: UseCase = UseCase {
    name: "slide",
    feature: Some("slide"),
    pixelcnn: "pixelcnn-ihc/model.egm",
    background: "pixelcnn-ihc-bg/model.egm",
    vae: Some(("vae-ihc/encoder.egm", "vae-ihc/decoder.egm")),
    gan: "gan-ihc/generator.egm",
    pixelcnn_samples: false,
    vae_scores: false,
    frames: &[("slide", "slide-test.idx"), ("defects", "slide-defects.idx")],
    classifier: None,
    class_priors: None,
    flow: None,
};

/// Runs the firmware of `case` for `target` in QEMU and checks its log against the host;
/// returns the footprint figures it measured.
fn run_and_check(case: &UseCase, target: &str, machine: &str) -> serde_json::Value {
    let root = common::root();
    let base = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    // One target directory per use case: switching features would rebuild every time.
    let target_dir = base.join(match case.feature {
        Some(f) => format!("firmware-{}", f.replace(',', "-")),
        None => "firmware".to_string(),
    });
    let mut args = vec!["run", "--release", "--quiet", "--target", target];
    if let Some(f) = case.feature {
        args.extend(["--features", f]);
    }
    let out = Command::new("cargo")
        .args(&args)
        .current_dir(root.join("firmware"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let log = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "firmware on {target} failed:\n{log}\n{err}");
    assert!(log.contains("done: all checks passed"), "{log}");

    assert!(log.contains(&format!("use_case={}", case.name)), "{log}");

    let read = |p: &str| std::fs::read(root.join("models").join(p)).unwrap();
    let (pbytes, bbytes, gbytes) = (read(case.pixelcnn), read(case.background), read(case.gan));
    let vae_bytes = case.vae.map(|(e, d)| (read(e), read(d)));
    let pixelcnn = PixelCnn::new(Model::from_bytes(&pbytes).unwrap(), Kernels::Optimized).unwrap();
    let background = PixelCnn::new(Model::from_bytes(&bbytes).unwrap(), Kernels::Optimized).unwrap();
    let vae = vae_bytes
        .as_ref()
        .map(|(e, d)| Vae::new(Model::from_bytes(e).unwrap(), Model::from_bytes(d).unwrap(), Kernels::Optimized).unwrap());
    let gan = Gan::new(Model::from_bytes(&gbytes).unwrap(), Kernels::Optimized).unwrap();
    let cbytes = case.classifier.map(read);
    let classifier = cbytes.as_ref().map(|b| Classifier::new(Model::from_bytes(b).unwrap(), Kernels::Optimized).unwrap());
    let values = pixelcnn.geometry().values();
    let mut arena = vec![0u8; pixelcnn.sample_arena_len().max(vae.as_ref().map_or(0, |v| v.arena_len())).max(gan.arena_len())];
    let guard_len = PixelCnnScorer::arena_len(&pixelcnn, Some(&background), vae.as_ref());
    let mut guard_arena = vec![0u8; guard_len];
    let mut guard = PixelCnnScorer::guard(pixelcnn.clone(), Some(background), vae.clone(), &mut guard_arena)
        .expect("the PixelCNN file holds a calibrated guard");
    let frames: HashMap<&str, edgegen_trainer::data::Images> = case
        .frames
        .iter()
        .map(|(s, f)| (*s, edgegen_trainer::data::read_idx_images(&root.join("models/frames").join(f)).unwrap()))
        .collect();

    let (mut samples, mut scored, mut ops, mut walks, mut classified) = (0, 0, Vec::new(), 0usize, 0usize);
    let mut classify_instr = Vec::new();
    let priors_bytes = case.class_priors.map(read);
    let priors = priors_bytes.as_ref().map(|b| edgegen_runtime::guard::GuardBlock::parse(b).unwrap());
    let (mut bayes_instr, mut bayes_lines) = (Vec::new(), 0usize);
    let flow_bytes = case.flow.map(read);
    let flow = flow_bytes.as_ref().map(|b| edgegen_runtime::flow::Flow::from_bytes(b, Kernels::Optimized).unwrap());
    let mut flow_scratch = vec![0f32; flow.as_ref().map_or(0, |f| f.scratch_len())];
    let mut flow_arena = vec![0u8; flow.as_ref().map_or(0, |f| f.arena_len())];
    let (mut flow_instr, mut flow_lines) = (Vec::new(), 0usize);
    // The flow's profile: each coupling's network (MACs, instructions), and the ops of the
    // first coupling of each stage.
    let (mut flow_nets, mut flow_ops) = (Vec::new(), Vec::new());
    let mut last_verdict = None;
    let (mut guard_instr, mut vae_instr, mut sample_instr) = (Vec::new(), Vec::new(), HashMap::<String, Vec<u64>>::new());
    let mut boot = HashMap::new();
    let mut stack = 0u64;
    for line in log.lines() {
        let f = fields(line);
        if line.contains(" boot ") {
            boot = f.iter().map(|(k, v)| (k.to_string(), v.parse::<u64>().unwrap_or(0))).collect();
        } else if line.contains(" sample ") {
            let seed: u64 = f["seed"].parse().unwrap();
            let mut img = vec![0u8; values];
            match f["model"] {
                "vae" => vae.as_ref().expect("a VAE in this image").sample(&mut arena, seed, &mut img).unwrap(),
                // A conditional generator's line names the class it was asked for.
                "gan" => match f.get("class") {
                    Some(c) => assert_eq!(
                        gan.sample_class(&mut arena, seed, Some(c.parse().unwrap()), &mut img).unwrap(),
                        c.parse::<usize>().unwrap()
                    ),
                    None => gan.sample(&mut arena, seed, &mut img).unwrap(),
                },
                "flow" => flow.as_ref().expect("a flow in this image").sample(&mut flow_arena, &mut flow_scratch, seed, &mut img).unwrap(),
                _ => pixelcnn.sample(&mut arena, seed, &mut img).unwrap(),
            }
            assert_eq!(hex(f["crc"]) as u32, crc32(&img), "{line}");
            sample_instr.entry(f["model"].to_string()).or_default().push(f["instructions"].parse().unwrap());
            samples += 1;
        } else if line.contains(" walk ") {
            // The latent walk (sample --interpolate 0:1 --count 5): recomputed here.
            let (step, of): (usize, usize) = (f["step"].parse().unwrap(), f["of"].parse().unwrap());
            let t = step as f32 / (of - 1) as f32;
            let mut img = vec![0u8; values];
            // (noise dimensions, classes): a conditional generator walks within class 0.
            let (n, k) =
                if f["model"] == "vae" { (vae.as_ref().expect("a VAE in this image").latent(), 0) } else { (gan.latent(), gan.classes()) };
            let (mut za, mut zb) = (vec![0f32; n + k], vec![0f32; n + k]);
            let class = (k > 0).then_some(0);
            edgegen_runtime::engine::seed_input(0, n, k, class, &mut za).unwrap();
            edgegen_runtime::engine::seed_input(1, n, k, class, &mut zb).unwrap();
            let mut z = za.clone();
            edgegen_runtime::likelihood::slerp(&za[..n], &zb[..n], t, &mut z[..n]).unwrap();
            match f["model"] {
                "vae" => vae.as_ref().unwrap().decode_mean(&mut arena, &z, &mut img).unwrap(),
                _ => gan.generate(&mut arena, &z, &mut img).unwrap(),
            }
            assert_eq!(hex(f["crc"]) as u32, crc32(&img), "{line}");
            walks += 1;
        } else if line.contains(" op ") {
            ops.push((
                f["code"].parse::<u8>().unwrap(),
                f["macs"].parse::<u64>().unwrap(),
                f["executed_macs"].parse::<u64>().unwrap(),
                f["instructions"].parse::<u64>().unwrap(),
            ));
        } else if line.contains(" frame ") {
            let index: usize = f["index"].parse().unwrap();
            let image = frames[f["set"]].image(index);
            let v = guard.check(image).unwrap();
            let stats = guard.scorer().last().unwrap();
            let mut want = vec![stats.bpd.to_bits()];
            if let Some(vae) = vae.as_ref().filter(|_| case.vae_scores) {
                let vae_bpd = vae.bounds(&mut arena, image, 4, &mut Rng::with_stream(0, index as u64)).unwrap().iwae_bpd();
                want.push(vae_bpd.to_bits());
                vae_instr.push(f["vae_instructions"].parse::<u64>().unwrap());
            }
            let bits: Vec<u64> = line.split_whitespace().filter_map(|t| t.strip_prefix("bits=")).map(hex).collect();
            assert_eq!(bits, want, "{line}");
            assert_eq!(hex(f["score_bits"]) as u32, v.score.to_bits(), "{line}");
            assert_eq!(f["score_kind"], guard.scorer().kind().name(), "{line}");
            assert_eq!(f["verdict"], if v.accept { "accept" } else { "reject" }, "{line}");
            guard_instr.push(f["guard_instructions"].parse::<u64>().unwrap());
            last_verdict = Some((f["set"].to_string(), index, v));
            scored += 1;
        } else if line.contains(" flow_coupling ") {
            let (index, macs): (usize, u64) = (f["index"].parse().unwrap(), f["macs"].parse().unwrap());
            let net = flow.as_ref().expect("a flow in this image").network(index).expect("a coupling of the flow");
            assert_eq!(macs, (0..net.model().op_count()).map(|i| net.op_macs(i).0).sum::<u64>(), "{line}");
            flow_nets.push((macs, f["instructions"].parse::<u64>().unwrap()));
        } else if line.contains(" flow_op ") {
            flow_ops.push((f["macs"].parse::<u64>().unwrap(), f["instructions"].parse::<u64>().unwrap()));
        } else if line.contains(" flow ") {
            // The flow's log p of a frame, recomputed here (its couplings int8, the rest f32).
            let index: usize = f["index"].parse().unwrap();
            let image = frames[f["set"]].image(index);
            let lp = flow.as_ref().expect("a flow in this image").log_prob(&mut flow_arena, &mut flow_scratch, image).unwrap();
            assert_eq!(hex(f["bits"]), lp.to_bits(), "{line}");
            flow_instr.push(f["instructions"].parse::<u64>().unwrap());
            flow_lines += 1;
        } else if line.contains(" bayes ") {
            // The VAE as a Bayes classifier: class, p(y|x) and log p(x), recomputed here.
            let index: usize = f["index"].parse().unwrap();
            let image = frames[f["set"]].image(index);
            let a = vae
                .as_ref()
                .unwrap()
                .bayes(&mut arena, image, 4, priors.as_ref().expect("class priors in this image"), &mut Rng::with_stream(1, index as u64))
                .unwrap();
            let bits: Vec<u64> = line.split_whitespace().filter_map(|t| t.strip_prefix("bits=")).map(hex).collect();
            assert_eq!(bits, vec![a.probability.to_bits(), a.log_px.to_bits()], "{line}");
            assert_eq!(f["class"].parse::<usize>().unwrap(), a.class, "{line}");
            bayes_instr.push(f["instructions"].parse::<u64>().unwrap());
            bayes_lines += 1;
        } else if line.contains(" classify ") {
            // The classifier's answer on the frame just scored: class, probability bits, and
            // a label only when the guard accepted it.
            let index: usize = f["index"].parse().unwrap();
            let (set, at, v) = last_verdict.clone().expect("a frame line before its classify line");
            assert!(set == f["set"] && at == index, "{line}");
            let image = frames[f["set"]].image(index);
            let answer = guard.answer(classifier.as_ref().expect("a classifier in this image"), image, v).unwrap();
            assert_eq!(f["class"].parse::<usize>().unwrap(), answer.class, "{line}");
            assert_eq!(hex(f["bits"]), answer.probability.to_bits(), "{line}");
            assert_eq!(f["label"] != "none", answer.label().is_some(), "{line}");
            classify_instr.push(f["instructions"].parse::<u64>().unwrap());
            classified += 1;
        } else if line.contains(" stack ") {
            stack = f["used_bytes"].parse().unwrap();
        }
    }
    // A conditional generator draws every class of each seed.
    let families = gan.classes().max(1) + usize::from(case.vae_scores) + usize::from(case.pixelcnn_samples) + usize::from(flow.is_some());
    assert_eq!(samples, 4 * families, "{log}");
    assert_eq!(walks, 5 * (1 + usize::from(case.vae_scores)), "the latent walks: {log}");
    assert_eq!(scored, frames.values().map(|f| f.len()).sum::<usize>(), "{log}");
    assert_eq!(classified, if classifier.is_some() { scored } else { 0 }, "a classify line per frame: {log}");
    let bayes_expected = if priors.is_some() { 4 * case.frames.len() } else { 0 };
    assert_eq!(bayes_lines, bayes_expected, "the Bayes classifier on four frames per set: {log}");
    assert_eq!(flow_lines, if flow.is_some() { 4 * case.frames.len() } else { 0 }, "the flow on four frames per set: {log}");
    assert_eq!(boot.get("guard_arena").copied(), Some(guard_len as u64), "{log}");
    assert_eq!(ops.len(), pixelcnn.interpreter().model().op_count(), "{log}");
    assert!(stack > 0 && stack <= STACK_RESERVE, "stack {stack} B over the boards' reserve: {log}");

    let elf = std::fs::read(target_dir.join(target).join("release/edgegen-firmware")).unwrap();
    let sections = elf_sections(&elf);
    let flash: u64 = sections.iter().filter(|s| !s.3).map(|s| s.1).sum();
    let ram: u64 = sections.iter().filter(|s| s.2 & 1 != 0).map(|s| s.1).sum();
    // SysTick reads in steps of 40 instructions: report thousands, which are repeatable.
    let k = |v: u64| (v + 500) / 1000 * 1000;
    let mean = |v: &[u64]| k(v.iter().sum::<u64>() / v.len().max(1) as u64);
    // The main conv kernel: the op with the most multiply-accumulates (a masked 3×3).
    let main = ops.iter().copied().max_by_key(|o| o.1).unwrap();
    let conv: Vec<_> = ops.iter().filter(|o| o.1 > 0).collect();
    let (conv_macs, conv_exec, conv_instr) = conv.iter().fold((0, 0, 0), |a, o| (a.0 + o.1, a.1 + o.2, a.2 + o.3));
    let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
    let mut instructions = serde_json::json!({
        "guard_per_frame": mean(&guard_instr),
        "pixelcnn_log_prob": k(ops.iter().map(|o| o.3).sum::<u64>()),
        "gan_sample": mean(&sample_instr["gan"]),
    });
    if case.vae_scores {
        instructions["vae_iwae_k4_per_frame"] = mean(&vae_instr).into();
        instructions["vae_sample"] = mean(&sample_instr["vae"]).into();
    }
    if case.pixelcnn_samples {
        instructions["pixelcnn_sample"] = mean(&sample_instr["pixelcnn"]).into();
    }
    if classifier.is_some() {
        instructions["classifier_per_frame"] = mean(&classify_instr).into();
    }
    if bayes_lines > 0 {
        instructions["vae_bayes_k4_per_frame"] = mean(&bayes_instr).into();
    }
    let mut flow_profile = serde_json::Value::Null;
    if flow_lines > 0 {
        instructions["flow_log_prob_per_frame"] = mean(&flow_instr).into();
        instructions["flow_sample"] = mean(&sample_instr["flow"]).into();
        let couplings = flow.as_ref().unwrap().couplings();
        assert_eq!(flow_nets.len(), couplings, "a profile line per coupling: {log}");
        // The flow's largest convolution (a full 3×3 of the hidden width, before the squeeze).
        let main = flow_ops.iter().copied().max_by_key(|o| o.0).expect("the flow's ops profiled");
        let (macs, instr) = flow_nets.iter().fold((0, 0), |a, n| (a.0 + n.0, a.1 + n.1));
        flow_profile = serde_json::json!({
            "networks": { "macs": macs, "instructions": k(instr), "instructions_per_mac": r3(instr as f64 / macs as f64) },
            "main_conv": { "macs": main.0, "instructions": k(main.1), "instructions_per_mac": r3(main.1 as f64 / main.0 as f64) },
        });
    }
    let mut report = serde_json::json!({
        "machine": machine,
        "sections_bytes": sections.iter().map(|s| (s.0.clone(), s.1)).collect::<std::collections::BTreeMap<_, _>>(),
        "flash_bytes": flash,
        "static_ram_bytes": ram,
        "models_bytes": boot.get("models_bytes"),
        "arena_plan_bytes": {
            "pixelcnn": boot.get("pixelcnn_arena"), "pixelcnn_background": boot.get("background_arena"),
            "pixelcnn_sampling": case.pixelcnn_samples.then(|| boot.get("pixelcnn_sample_arena")),
            "vae": vae.is_some().then(|| boot.get("vae_arena")), "gan": boot.get("gan_arena"),
            "guard": boot.get("guard_arena"),
            "classifier": classifier.is_some().then(|| boot.get("classifier_arena")),
        },
        "stack_peak_bytes": stack,
        "guard_ram_bytes": boot["guard_arena"] + stack,
        "instructions": instructions,
        "main_conv": {
            "macs": main.1, "executed_macs": main.2, "instructions": k(main.3),
            "instructions_per_mac": r3(main.3 as f64 / main.1 as f64),
            "instructions_per_executed_mac": r3(main.3 as f64 / main.2 as f64),
        },
        "all_convs": {
            "macs": conv_macs, "executed_macs": conv_exec, "instructions": k(conv_instr),
            "instructions_per_mac": r3(conv_instr as f64 / conv_macs as f64),
            "instructions_per_executed_mac": r3(conv_instr as f64 / conv_exec as f64),
        },
    });
    if !flow_profile.is_null() {
        report["flow_profile"] = flow_profile;
    }
    report
}

#[test]
fn firmware_in_qemu_matches_the_host_bit_for_bit() {
    if !tools_available() {
        return;
    }
    let root = common::root();
    let m4 = run_and_check(&FASHION, "thumbv7em-none-eabihf", "mps2-an386 (Cortex-M4F)");
    // The screen the M4 firmware drew, as a PNG the README shows.
    save_screen(&root.join("firmware/screen.png"));
    let m55 = run_and_check(&FASHION, "thumbv8m.main-none-eabihf", "mps3-an547 (Cortex-M55, Helium)");
    std::fs::remove_file(root.join("firmware/edgegen-screen.pgm")).ok();
    // The second use case: 32×32 RGB slide tiles (feature `slide`).
    let slide_m4 = run_and_check(&SLIDE, "thumbv7em-none-eabihf", "mps2-an386 (Cortex-M4F)");
    save_screen(&root.join("firmware/screen-slide.png"));
    let slide_m55 = run_and_check(&SLIDE, "thumbv8m.main-none-eabihf", "mps3-an547 (Cortex-M55, Helium)");
    std::fs::remove_file(root.join("firmware/edgegen-screen.pgm")).ok();
    // The image with classes (features `bayes` and `cgan`): the VAE as a Bayes classifier
    // and the conditional GAN drawing each class, on both boards.
    let bayes = |case_target: &str, machine: &str| {
        let r = run_and_check(&FASHION_CLASSES, case_target, machine);
        std::fs::remove_file(root.join("firmware/edgegen-screen.pgm")).ok();
        serde_json::json!({
            "flash_bytes": r["flash_bytes"],
            "vae_bayes_k4_per_frame": r["instructions"]["vae_bayes_k4_per_frame"],
            "cgan_sample": r["instructions"]["gan_sample"],
            "cgan_arena_bytes": r["arena_plan_bytes"]["gan"],
            "flow_log_prob_per_frame": r["instructions"]["flow_log_prob_per_frame"],
            "flow_sample": r["instructions"]["flow_sample"],
            "flow_profile": r["flow_profile"],
        })
    };
    let bayes_m4 = bayes("thumbv7em-none-eabihf", "mps2-an386 (Cortex-M4F)");
    let bayes_m55 = bayes("thumbv8m.main-none-eabihf", "mps3-an547 (Cortex-M55, Helium)");
    // The footprint report the README quotes (written atomically).
    let report = serde_json::json!({
        "command": "scripts/test.sh (tests/tests/firmware.rs)",
        "note": "instructions counted by SysTick under QEMU -icount shift=0 (rounded to thousands); executed MACs leave out the masked kernel taps the optimized kernels skip; guard_ram_bytes = the guard's planned arena (the larger arena of the PixelCNN and its background model, and two f32 per-value likelihood buffers) + the measured peak stack",
        "cortex_m4": m4,
        "cortex_m55": m55,
        "bayes": {
            "note": "cargo run --release --features bayes,cgan,flow: the Fashion-MNIST image plus the VAE as a Bayes classifier (models/bayes/class-priors.bin; k = 4 importance samples, the first four frames of each set), the class-conditional GAN (models/cgan-fmnist) in the GAN's place, every class of seeds 0..3 drawn on request, and the normalizing flow (models/flow-fmnist/flow.egf: log p of the first four frames of each set, seeds 0..3 sampled)",
            "cortex_m4": bayes_m4,
            "cortex_m55": bayes_m55,
        },
        "slide": {
            "note": "cargo run --release --features slide: the pixelcnn-ihc structural guard (with pixelcnn-ihc-bg and the vae-ihc encoder) on 32x32 RGB tiles and the gan-ihc generator",
            "cortex_m4": slide_m4,
            "cortex_m55": slide_m55,
        },
    });
    let path = root.join("firmware/footprint.json");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    // The budgets of the firmware issue (Fashion-MNIST image).
    assert!(m4["flash_bytes"].as_u64().unwrap() <= 1 << 20, "flash over 1 MiB: {m4}");
    assert!(m4["guard_ram_bytes"].as_u64().unwrap() <= 256 << 10, "PixelCNN guard RAM over 256 KiB: {m4}");
}

/// Stack room a board keeps above its statics: the QEMU runs' measured peak must stay
/// under it (checked there).
const STACK_RESERVE: u64 = 64 << 10;

/// The real boards' images (firmware/boards/): each profile, guard only and guard with
/// generation, built for its target and memory map, so the linker proves the image fits the
/// board's flash and static RAM; the stack the QEMU run measured must fit what is left.
/// Writes firmware/boards.json, the README's footprint table per profile.
#[test]
fn board_profiles_build_and_fit() {
    if !tools_available() {
        return;
    }
    let root = common::root();
    let base = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    // (board, target, chip, flash and RAM bytes of its memory map)
    let boards = [
        ("nucleo-l4r5zi", "thumbv7em-none-eabihf", "STM32L4R5ZI (Cortex-M4F)", 2048u64 << 10, 640u64 << 10),
        ("alif-e7-hp", "thumbv8m.main-none-eabihf", "Alif Ensemble E7, HP core (Cortex-M55)", 4096 << 10, 1024 << 10),
    ];
    let mut report = serde_json::Map::new();
    for (board, target, chip, flash_max, ram_max) in boards {
        for generate in [false, true] {
            let features = if generate { format!("{board},generate") } else { board.to_string() };
            let target_dir = base.join(format!("firmware-board-{}", features.replace(',', "-")));
            let out = Command::new("cargo")
                .args(["build", "--release", "--quiet", "--target", target, "--no-default-features", "--features", &features])
                .current_dir(root.join("firmware"))
                .env("CARGO_TARGET_DIR", &target_dir)
                .env_remove("RUSTFLAGS")
                .output()
                .expect("cargo runs");
            assert!(out.status.success(), "{features} does not build:\n{}", String::from_utf8_lossy(&out.stderr));
            let elf = std::fs::read(target_dir.join(target).join("release/edgegen-firmware")).unwrap();
            let sections = elf_sections(&elf);
            let flash: u64 = sections.iter().filter(|s| !s.3).map(|s| s.1).sum();
            let ram: u64 = sections.iter().filter(|s| s.2 & 1 != 0).map(|s| s.1).sum();
            // The linker refuses what overflows; the stack needs room above the statics.
            assert!(flash <= flash_max && ram + STACK_RESERVE <= ram_max, "{features}: flash {flash}, RAM {ram} + stack");
            let models: u64 = sections.iter().filter(|s| s.0 == ".models").map(|s| s.1).sum();
            report.insert(
                features.clone(),
                serde_json::json!({
                    "board": board, "chip": chip, "target": target,
                    "embeds": if generate { "guard + classifier + generation (PixelCNN, background PixelCNN, VAE, classifier, GAN)" } else { "guard + classifier (PixelCNN, background PixelCNN, VAE, classifier)" },
                    "flash_bytes": flash, "flash_available_bytes": flash_max,
                    "static_ram_bytes": ram, "ram_available_bytes": ram_max,
                    "models_and_frames_bytes": models,
                    "sections_bytes": sections.iter().map(|s| (s.0.clone(), s.1)).collect::<std::collections::BTreeMap<_, _>>(),
                    "cargo": format!("cd firmware && cargo {}", if generate { format!("{board}-generate") } else { board.to_string() }),
                }),
            );
        }
    }
    let report = serde_json::json!({
        "command": "scripts/test.sh (tests/tests/firmware.rs: board_profiles_build_and_fit)",
        "note": "built, not run here (no boards attached): the linker checks that each image fits the board's memory map; static RAM = .data + .bss (arenas sized from the models by build.rs); 64 KiB are kept for the stack on top (the QEMU runs' measured peak, firmware/footprint.json, must stay under it)",
        "profiles": report,
    });
    let path = root.join("firmware/boards.json");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// Converts the PGM screen the firmware wrote through semihosting into a PNG at `png`.
fn save_screen(png: &std::path::Path) {
    let root = common::root();
    let pgm = std::fs::read(root.join("firmware/edgegen-screen.pgm")).expect("the firmware wrote its screen");
    let header_end = pgm.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(2).unwrap().0 + 1;
    let dims: Vec<usize> =
        String::from_utf8_lossy(&pgm[..header_end]).split_whitespace().skip(1).take(2).map(|v| v.parse().unwrap()).collect();
    assert_eq!(pgm.len() - header_end, dims[0] * dims[1]);
    edgegen_trainer::data::imageio::write_gray_png(png, dims[0], dims[1], &pgm[header_end..]).unwrap();
    std::fs::remove_file(root.join("firmware/edgegen-screen.pgm")).ok();
}
