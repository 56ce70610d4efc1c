//! The C API from C (#22): the example firmware `capi/examples/guard` (main.c with its own
//! startup and linker script, Debian's gcc-arm-none-eabi and newlib-nano) links
//! libedgegen_capi.a and the bundled models as C arrays (`edgegen export c-array`), runs on
//! QEMU's mps2-an386 (Cortex-M4F), and prints every verdict, label and a VAE sample with
//! their exact bits. The same source built for the host must print the same lines, and the
//! Rust runtime recomputes every one of them. Writes the figures to `capi/footprint.json`:
//! the static library's size per target, the example's flash and RAM, and its instructions
//! per guard frame beside the Rust firmware's on the same frames.
//!
//! Needs arm-none-eabi-gcc (with newlib), qemu-system-arm and the thumb targets (the
//! README's test command installs them); with EDGEGEN_REQUIRE_QEMU=1 their absence fails
//! the test instead of skipping it.

mod common;

use edgegen_runtime::engine::{Classifier, PixelCnn, Vae};
use edgegen_runtime::guard::PixelCnnScorer;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::Model;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const FRAMES_PER_SET: usize = 12;
const SETS: [(&str, &str); 3] =
    [("fashion-mnist", "fashion-mnist-test.idx"), ("mnist", "mnist-digits.idx"), ("sensor-faults", "sensor-faults.idx")];
/// The models the example links, by the names its Makefile and models.h use.
const MODELS: [(&str, &str); 5] = [
    ("pixelcnn", "pixelcnn-fmnist/model.egm"),
    ("background", "pixelcnn-fmnist-bg/model.egm"),
    ("vae_encoder", "vae-fmnist/encoder.egm"),
    ("vae_decoder", "vae-fmnist/decoder.egm"),
    ("classifier", "classifier-fmnist/classifier.egm"),
];

fn tools_available() -> bool {
    common::qemu_tools_available(&["arm-none-eabi-gcc"])
}

use common::{fields, hex};

/// Bytes of the linked image that came from `libedgegen_capi.a`, from the linker's map:
/// (flash: code and read-only data, RAM: data and bss).
fn library_share(map: &str) -> (u64, u64) {
    let (mut flash, mut ram) = (0, 0);
    let mut pending: Option<String> = None;
    for line in map.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        // An input section: "NAME ADDR SIZE FILE", or NAME alone with the rest on the next line.
        let (name, rest) = match (t.as_slice(), pending.take()) {
            ([n], None) if n.starts_with('.') => {
                pending = Some(n.to_string());
                continue;
            }
            ([a, s, f], Some(n)) if a.starts_with("0x") => (n, [*a, *s, *f]),
            ([n, a, s, f], _) if n.starts_with('.') && a.starts_with("0x") => (n.to_string(), [*a, *s, *f]),
            _ => continue,
        };
        if !rest[2].contains("libedgegen_capi.a") {
            continue;
        }
        let size = hex(rest[1]);
        if name.starts_with(".text") || name.starts_with(".rodata") || name.starts_with(".ARM") {
            flash += size;
        } else if name.starts_with(".data") {
            flash += size;
            ram += size;
        } else if name.starts_with(".bss") {
            ram += size;
        }
    }
    (flash, ram)
}

/// What `arm-none-eabi-size` says of an ELF: (text, data, bss).
fn elf_size(elf: &Path) -> (u64, u64, u64) {
    let out = Command::new("arm-none-eabi-size").arg(elf).output().expect("arm-none-eabi-size runs");
    let s = String::from_utf8_lossy(&out.stdout);
    let row: Vec<u64> = s.lines().nth(1).expect("a size row").split_whitespace().take(3).map(|v| v.parse().unwrap()).collect();
    (row[0], row[1], row[2])
}

/// The lines that must be identical on every target (the instruction counts are not).
fn comparable(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace().filter(|kv| !kv.contains("instructions=") && !kv.starts_with("counter=")).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

#[test]
fn c_example_on_the_m4_matches_the_host_and_the_runtime() {
    if !tools_available() {
        return;
    }
    let root = common::root();
    let base = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    // Its own target directory: this test's cargo must not wait for the one running it.
    let target_dir = base.join("capi");
    let build = target_dir.join("example");
    std::fs::create_dir_all(&build).unwrap();

    // The models as C arrays, written by the same code as `edgegen export c-array`.
    for (name, file) in MODELS {
        edgegen_trainer::export::c_array::write(&root.join("models").join(file), &build.join(format!("{name}.c")), &format!("{name}_egm"))
            .unwrap();
    }
    let make = |goal: &str| {
        let out = Command::new("make")
            .args(["-C", "capi/examples/guard", goal])
            .arg(format!("BUILD={}", build.display()))
            .arg(format!("CARGO_TARGET_DIR={}", target_dir.display()))
            .arg(format!("FRAMES_PER_SET={FRAMES_PER_SET}"))
            // The arrays are written above; the CLI is not needed (and not built here).
            .arg("EDGEGEN=false")
            .current_dir(&root)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("make runs");
        assert!(
            out.status.success(),
            "make {goal} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    make("host");
    make("qemu");
    let elf = build.join("guard-m4.elf");

    let qemu = Command::new("qemu-system-arm")
        .args(["-machine", "mps2-an386", "-cpu", "cortex-m4", "-nographic", "-icount", "shift=0"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(&elf)
        .current_dir(&root)
        .output()
        .expect("qemu-system-arm runs");
    let m4 = String::from_utf8_lossy(&qemu.stdout).to_string();
    assert!(
        qemu.status.success() && m4.contains("\ndone"),
        "the C example failed on the M4:\n{m4}\n{}",
        String::from_utf8_lossy(&qemu.stderr)
    );
    let host = Command::new(build.join("guard-host")).current_dir(&root).output().expect("the host build runs");
    let host_log = String::from_utf8_lossy(&host.stdout).to_string();
    assert!(host.status.success(), "the C example failed on the host:\n{host_log}");
    assert_eq!(comparable(&m4), comparable(&host_log), "the M4 and the host print different results");

    // The Rust runtime recomputes every line.
    let read = |p: &str| std::fs::read(root.join("models").join(p)).unwrap();
    let bytes: HashMap<&str, Vec<u8>> = MODELS.iter().map(|(n, f)| (*n, read(f))).collect();
    let model = |n: &str| Model::from_bytes(&bytes[n]).unwrap();
    let pixelcnn = PixelCnn::new(model("pixelcnn"), Kernels::Optimized).unwrap();
    let background = PixelCnn::new(model("background"), Kernels::Optimized).unwrap();
    let vae = Vae::new(model("vae_encoder"), model("vae_decoder"), Kernels::Optimized).unwrap();
    let classifier = Classifier::new(model("classifier"), Kernels::Optimized).unwrap();
    let mut guard_arena = vec![0u8; PixelCnnScorer::arena_len(&pixelcnn, Some(&background), Some(&vae))];
    let mut guard = PixelCnnScorer::guard(pixelcnn, Some(background), Some(vae.clone()), &mut guard_arena).unwrap();
    let mut arena = vec![0u8; vae.arena_len().max(classifier.arena_len())];
    let frames: HashMap<&str, edgegen_trainer::data::Images> =
        SETS.iter().map(|(s, f)| (*s, edgegen_trainer::data::read_idx_images(&root.join("models/frames").join(f)).unwrap())).collect();

    let (mut checked, mut guard_instructions, mut classifier_instructions) = (0, Vec::new(), Vec::new());
    for line in m4.lines().filter(|l| l.starts_with("frame ")) {
        let f = fields(line);
        let (set, index): (&str, usize) = (f["set"], f["index"].parse().unwrap());
        let frame = &frames[set].pixels[index * 784..(index + 1) * 784];
        let v = guard.check(frame).unwrap();
        let stats = guard.scorer().last().unwrap();
        assert_eq!(hex(f["score_bits"]) as u32, v.score.to_bits(), "{line}");
        assert_eq!(hex(f["bpd_bits"]), stats.bpd.to_bits(), "{line}");
        assert_eq!(f["verdict"], if v.accept { "accept" } else { "reject" }, "{line}");
        let c = classifier.classify(&mut arena, frame).unwrap();
        assert_eq!(f["class"].parse::<usize>().unwrap(), c.class, "{line}");
        assert_eq!(hex(f["probability_bits"]), c.probability.to_bits(), "{line}");
        assert_eq!(f["label"] == "none", !v.accept, "{line}");
        guard_instructions.push(f["guard_instructions"].parse::<u64>().unwrap());
        classifier_instructions.push(f["classifier_instructions"].parse::<u64>().unwrap());
        checked += 1;
    }
    assert_eq!(checked, SETS.len() * FRAMES_PER_SET, "{m4}");
    let answer = m4.lines().find(|l| l.starts_with("answer ")).expect("an answer line");
    let a = fields(answer);
    let first = &frames["fashion-mnist"].pixels[..784];
    let r = guard.classify(&classifier, first).unwrap();
    assert_eq!((hex(a["score_bits"]) as u32, a["class"].parse::<usize>().unwrap()), (r.verdict.score.to_bits(), r.class));
    assert_eq!(a["label"].parse::<i64>().unwrap(), r.label().map_or(-1, |l| l as i64));
    let sample = fields(m4.lines().find(|l| l.starts_with("sample ")).expect("a sample line"));
    let mut want = vec![0u8; 784];
    vae.sample(&mut arena, 1, &mut want).unwrap();
    let got: Vec<u8> = (0..784).map(|i| u8::from_str_radix(&sample["pixels"][2 * i..2 * i + 2], 16).unwrap()).collect();
    assert_eq!(got, want, "the VAE sample differs");
    assert!(m4.contains("corrupt-model status=EDGEGEN_ERR_CHECKSUM"), "{m4}");

    // Figures.
    let mean = |v: &[u64]| (v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0).round() as u64 * 1000;
    let (text, data, bss) = elf_size(&elf);
    let map = std::fs::read_to_string(build.join("guard-m4.map")).unwrap();
    let (lib_flash, lib_ram) = library_share(&map);
    assert!(lib_flash > 10_000 && lib_flash < text, "the library's share of the image: {lib_flash} of {text}");
    // The library for the M55 (Helium kernels) must build too.
    let m55 = Command::new("cargo")
        .args(["build", "--quiet", "--profile", "capi", "-p", "edgegen-capi", "--target", "thumbv8m.main-none-eabihf", "--features", "mve"])
        .args(["--config", "target.thumbv8m.main-none-eabihf.rustflags=[\"-C\",\"target-cpu=cortex-m55\"]"])
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(m55.status.success(), "{}", String::from_utf8_lossy(&m55.stderr));
    let lib_size = |t: &str| std::fs::metadata(target_dir.join(t).join("libedgegen_capi.a")).map(|m| m.len()).unwrap();
    let firmware: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("firmware/footprint.json")).unwrap()).unwrap();
    let rust_guard = firmware["cortex_m4"]["instructions"]["guard_per_frame"].as_u64().unwrap();
    let rust_classifier = firmware["cortex_m4"]["instructions"]["classifier_per_frame"].as_u64().unwrap();
    let report = serde_json::json!({
        "command": "scripts/test.sh (tests/tests/capi.rs)",
        "static_library_bytes": {
            "host": lib_size("capi"),
            "thumbv7em-none-eabihf (dsp)": lib_size("thumbv7em-none-eabihf/capi"),
            "thumbv8m.main-none-eabihf (mve)": lib_size("thumbv8m.main-none-eabihf/capi"),
            "note": "the archive as built by --profile capi (fat LTO, no debug info; it carries Rust's core and compiler-builtins, of which the linker keeps what is called: see linked_library_bytes)"
        },
        "c_example_cortex_m4": {
            "machine": "mps2-an386 (Cortex-M4F)",
            "flash_bytes": text + data,
            "static_ram_bytes": data + bss,
            "linked_library_bytes": { "flash": lib_flash, "ram": lib_ram },
            "models_bytes": MODELS.iter().map(|(n, _)| bytes[n].len()).sum::<usize>(),
            "frames": checked,
        },
        "instructions_per_frame_cortex_m4": {
            "guard_from_c": mean(&guard_instructions),
            "guard_rust_firmware": rust_guard,
            "classifier_from_c": mean(&classifier_instructions),
            "classifier_rust_firmware": rust_classifier,
            "note": "the same 36 frames (12 per set), SysTick under QEMU -icount shift=0, rounded to thousands; the Rust firmware's figures from firmware/footprint.json"
        },
    });
    let path = root.join("capi/footprint.json");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    eprintln!("{report:#}");
}
