//! Copies the memory map of the board the target runs on into the linker's search path.
//! The maps live in `memory/`, not the crate root, where a `memory.x` would win for every
//! target. Also writes the device's golden files: the first set of each model's
//! `golden/int8/*.bin`, its outputs as their CRC-32 (golden version 2; the host tests check
//! every set in full; one digest per model on the device keeps the firmware inside 1 MiB of
//! flash). The use case (feature `slide`, else Fashion-MNIST) picks the models.
use std::path::PathBuf;

fn feature(name: &str) -> bool {
    std::env::var_os(format!("CARGO_FEATURE_{}", name.to_uppercase().replace('-', "_"))).is_some()
}

/// The embedded models of the use case: (golden name, model file, golden file); the GAN's
/// generator only when the image generates.
fn models() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut models = all_models();
    if !feature("generate") {
        models.retain(|m| m.0 != "gan-generator");
    }
    if feature("cgan") {
        assert!(!feature("slide"), "the conditional GAN draws Fashion-MNIST classes: build `cgan` without `slide`");
        // The class-conditional generator in the GAN's place.
        for m in models.iter_mut().filter(|m| m.0 == "gan-generator") {
            *m = ("gan-generator", "../models/cgan-fmnist/generator.egm", "../models/cgan-fmnist/golden/int8/generator.bin");
        }
    }
    models
}

fn all_models() -> Vec<(&'static str, &'static str, &'static str)> {
    if feature("slide") {
        vec![
            ("pixelcnn", "../models/pixelcnn-ihc/model.egm", "../models/pixelcnn-ihc/golden/int8/model.bin"),
            ("pixelcnn-bg", "../models/pixelcnn-ihc-bg/model.egm", "../models/pixelcnn-ihc-bg/golden/int8/model.bin"),
            ("vae-encoder", "../models/vae-ihc/encoder.egm", "../models/vae-ihc/golden/int8/encoder.bin"),
            ("vae-decoder", "../models/vae-ihc/decoder.egm", "../models/vae-ihc/golden/int8/decoder.bin"),
            ("gan-generator", "../models/gan-ihc/generator.egm", "../models/gan-ihc/golden/int8/generator.bin"),
        ]
    } else {
        vec![
            ("pixelcnn", "../models/pixelcnn-fmnist/model.egm", "../models/pixelcnn-fmnist/golden/int8/model.bin"),
            ("pixelcnn-bg", "../models/pixelcnn-fmnist-bg/model.egm", "../models/pixelcnn-fmnist-bg/golden/int8/model.bin"),
            ("vae-encoder", "../models/vae-fmnist/encoder.egm", "../models/vae-fmnist/golden/int8/encoder.bin"),
            ("vae-decoder", "../models/vae-fmnist/decoder.egm", "../models/vae-fmnist/golden/int8/decoder.bin"),
            ("gan-generator", "../models/gan-fmnist/generator.egm", "../models/gan-fmnist/golden/int8/generator.bin"),
            ("classifier", "../models/classifier-fmnist/classifier.egm", "../models/classifier-fmnist/golden/int8/classifier.bin"),
        ]
    }
}

/// The class names of the embedded classifier, from its card (`classes`), cut to the 7
/// characters a screen cell holds (`T-shirt/top` -> `T-shirt`, `Ankle boot` -> `Ankle b`).
fn class_names() -> Vec<String> {
    if feature("slide") {
        return Vec::new();
    }
    let path = "../models/classifier-fmnist/card.json";
    println!("cargo:rerun-if-changed={path}");
    let card = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let start = card.find("\"classes\": [").unwrap_or_else(|| panic!("{path}: no \"classes\" list")) + 12;
    let end = start + card[start..].find(']').unwrap_or_else(|| panic!("{path}: the \"classes\" list does not end"));
    card[start..end]
        .split(',')
        .map(|s| {
            let name = s.trim().trim_matches('"');
            let short = name.split('/').next().unwrap_or(name);
            short.chars().take(7).filter(|c| c.is_ascii() && *c != '"' && *c != '\\').collect()
        })
        .collect()
}

/// The board's memory map: a real board's when its feature is on, else the QEMU board of
/// the target. A board built for the other core's target is refused here, before the linker.
fn board(target: &str) -> &'static str {
    let boards = [("nucleo-l4r5zi", "thumbv7em-none-eabihf"), ("alif-e7-hp", "thumbv8m.main-none-eabihf")];
    let chosen: Vec<_> = boards.iter().filter(|(b, _)| feature(b)).collect();
    match chosen.as_slice() {
        [] if feature("qemu") => match target {
            "thumbv8m.main-none-eabihf" => "mps3-an547",
            _ => "mps2-an386",
        },
        [] => panic!(
            "no board: build with the default features (QEMU) or one board's feature (nucleo-l4r5zi, alif-e7-hp) and --no-default-features"
        ),
        [(b, t)] if feature("qemu") => {
            panic!("board {b}: build it with --no-default-features (the `qemu` feature is for the QEMU boards; target {t})")
        }
        [(b, t)] if *t != target => panic!("board {b} takes target {t}, not {target}: add --target {t}"),
        [(b, _)] => b,
        _ => panic!("more than one board feature: pick one"),
    }
}

/// The Cortex-M4F computes `f64` in software (the guard's statistics, the coder's flag
/// costs, the latent mixture). GCC's `libgcc` has hand-written Thumb-2 versions of the
/// double-precision add, subtract, multiply and divide (`ieee754-df.S`); `compiler_builtins`
/// has portable Rust ones (about 95 instructions an addition here, against about 40). Both
/// are correctly rounded IEEE 754, so the results are the same bits; linking libgcc's
/// addition and multiplication (strong symbols, over `compiler_builtins`' weak ones) takes
/// about 1 M instructions off each guard frame, and 0.5 KB of flash (the division stays
/// `compiler_builtins`', which is faster). Without `arm-none-eabi-gcc` the build keeps
/// `compiler_builtins`' and says so.
fn soft_double(out: &std::path::Path) {
    let found = (|| -> Result<Vec<PathBuf>, String> {
        let gcc = std::process::Command::new("arm-none-eabi-gcc")
            .args(["-mthumb", "-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-print-libgcc-file-name"])
            .output()
            .map_err(|e| format!("arm-none-eabi-gcc: {e}"))?;
        let lib = PathBuf::from(String::from_utf8_lossy(&gcc.stdout).trim());
        if !gcc.status.success() || !lib.is_file() {
            return Err(format!("arm-none-eabi-gcc names no libgcc for the Cortex-M4F ({})", lib.display()));
        }
        println!("cargo:rerun-if-changed={}", lib.display());
        let objects = ["_arm_addsubdf3.o", "_arm_muldf3.o"];
        let ar = std::process::Command::new("arm-none-eabi-ar")
            .arg("x")
            .arg(&lib)
            .args(objects)
            .current_dir(out)
            .status()
            .map_err(|e| format!("arm-none-eabi-ar: {e}"))?;
        let paths: Vec<PathBuf> = objects.iter().map(|o| out.join(o)).collect();
        if !ar.success() || !paths.iter().all(|p| p.is_file()) {
            return Err(format!("{} has no {}", lib.display(), objects.join(", ")));
        }
        // The multiplication alone (`_arm_muldf3.o`; `_arm_muldivdf3.o` would bring libgcc's
        // division too, a slower shift-and-subtract loop) defines its symbols weakly, as
        // `compiler_builtins` does, and the linker would keep theirs: made strong here.
        strengthen(&paths[1], &["__aeabi_dmul", "__muldf3"])?;
        Ok(paths)
    })();
    match found {
        Ok(paths) => {
            for p in paths {
                println!("cargo:rustc-link-arg={}", p.display());
            }
        }
        Err(e) => println!(
            "cargo:warning=f64 arithmetic from compiler_builtins (same results, slower): {e}; install gcc-arm-none-eabi for libgcc's"
        ),
    }
}

/// Makes the weak global symbols `names` of the 32-bit little-endian ELF object at `path`
/// strong (binding GLOBAL), in place.
fn strengthen(path: &std::path::Path, names: &[&str]) -> Result<(), String> {
    let mut elf = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || format!("{}: not a 32-bit little-endian ELF object", path.display());
    let u16_at = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as usize);
    let u32_at = |b: &[u8], at: usize| b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 1, 1][..]) {
        return Err(bad());
    }
    let (shoff, shentsize, shnum) =
        (u32_at(&elf, 0x20).ok_or_else(bad)?, u16_at(&elf, 0x2e).ok_or_else(bad)?, u16_at(&elf, 0x30).ok_or_else(bad)?);
    let mut found = 0;
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        if u32_at(&elf, sh + 4) != Some(2) {
            continue; // not SHT_SYMTAB
        }
        let (off, size, link) =
            (u32_at(&elf, sh + 16).ok_or_else(bad)?, u32_at(&elf, sh + 20).ok_or_else(bad)?, u32_at(&elf, sh + 24).ok_or_else(bad)?);
        let strtab = u32_at(&elf, shoff + link * shentsize + 16).ok_or_else(bad)?;
        for sym in (off..off + size).step_by(16) {
            let name_at = strtab + u32_at(&elf, sym).ok_or_else(bad)?;
            let name_len = elf.get(name_at..).and_then(|s| s.iter().position(|&c| c == 0)).ok_or_else(bad)?;
            let name = std::str::from_utf8(&elf[name_at..name_at + name_len]).unwrap_or("");
            let info = *elf.get(sym + 12).ok_or_else(bad)?;
            if names.contains(&name) && info >> 4 == 2 {
                elf[sym + 12] = (1 << 4) | (info & 0xf);
                found += 1;
            }
        }
    }
    if found != names.len() {
        return Err(format!("{}: {} of the weak symbols {names:?} found", path.display(), found));
    }
    std::fs::write(path, elf).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let board = board(&target);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let map = PathBuf::from("memory").join(format!("{board}.x"));
    std::fs::copy(&map, out.join("memory.x")).expect("memory map exists");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", map.display());
    println!("cargo:rerun-if-changed=build.rs");
    if target.starts_with("thumbv7em") {
        soft_double(&out);
    }

    for (name, _, path) in models() {
        println!("cargo:rerun-if-changed={path}");
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (run `cargo edgegen quantize`)"));
        let golden = edgegen_runtime::golden::Golden::parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(!golden.is_empty(), "{path}: no golden set");
        // The first set in golden version 2: its input, and its outputs as one CRC-32.
        let first = golden.to_digest(0..1).unwrap_or_else(|e| panic!("{path}: {e}"));
        std::fs::write(out.join(format!("golden-{name}.bin")), first).expect("OUT_DIR is writable");
    }

    // Every embedded model file, read once: the frame buffers and the arenas are sized from
    // them, as the device will ask.
    let files: Vec<(&str, Vec<u8>)> = models()
        .iter()
        .map(|&(name, path, _)| {
            println!("cargo:rerun-if-changed={path}");
            (name, std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (run `cargo edgegen compile`)")))
        })
        .collect();
    let model = |name: &str| {
        let bytes = &files.iter().find(|f| f.0 == name).unwrap_or_else(|| panic!("{name} is embedded")).1;
        edgegen_runtime::model::Model::from_bytes(bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
    };

    // Frame buffers are sized for the largest image geometry among the embedded models.
    let values = files.iter().map(|(n, _)| model(n).geometry().values()).max().unwrap_or(0);
    let geometry = format!("/// Values of the largest image among the embedded models (build.rs reads their files).\npub const IMAGE_VALUES: usize = {values};\n");
    std::fs::write(out.join("geometry.rs"), geometry).expect("OUT_DIR is writable");

    // The arenas, so the linker proves that a board holds them: one for the guard, PixelCNN
    // sampling and every network on its own (the golden checks, the op profile), one for the
    // VAE and the GAN beside the guard (only when the image generates).
    use edgegen_runtime::engine::{Gan, PixelCnn, Vae};
    use edgegen_runtime::kernels::Kernels;
    let each = files
        .iter()
        .map(|(n, _)| edgegen_runtime::interpreter::Interpreter::new(model(n), Kernels::Reference).arena_len())
        .max()
        .unwrap_or(0);
    let pixelcnn = PixelCnn::new(model("pixelcnn"), Kernels::Reference).expect("the PixelCNN loads");
    let background = PixelCnn::new(model("pixelcnn-bg"), Kernels::Reference).expect("the background PixelCNN loads");
    let vae = Vae::new(model("vae-encoder"), model("vae-decoder"), Kernels::Reference).expect("the VAE loads");
    let guard = edgegen_runtime::guard::PixelCnnScorer::arena_len(&pixelcnn, Some(&background), Some(&vae));
    let generate = feature("generate");
    // The slide image draws no PixelCNN samples (see assets.rs).
    let sampling = if generate && !feature("slide") { pixelcnn.sample_arena_len() } else { 0 };
    let beside = if generate {
        let gan = Gan::new(model("gan-generator"), Kernels::Reference).expect("the GAN loads");
        // The slide image's VAE only feeds the guard (in the guard's arena).
        let vae = if feature("slide") { 0 } else { vae.arena_len() };
        vae.max(gan.arena_len())
    } else {
        0
    };
    let arenas = format!(
        "/// Arena for the VAE and the GAN beside the guard's (empty when the image only guards).\npub const ARENA: usize = {};\n/// Arena for the guard, PixelCNN sampling, and each network on its own (the largest need).\npub const SAMPLE_ARENA: usize = {};\n/// The memory map the image is linked for.\npub const BOARD: &str = \"{board}\";\n",
        beside.next_multiple_of(16),
        guard.max(sampling).max(each).next_multiple_of(16)
    );
    std::fs::write(out.join("arenas.rs"), arenas).expect("OUT_DIR is writable");

    let names = class_names();
    let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let classes = format!(
        "/// The embedded classifier's class names, cut to 7 characters (build.rs reads its card).\npub const CLASS_NAMES: [&str; {}] = [{}];\n",
        names.len(),
        list.join(", ")
    );
    std::fs::write(out.join("classes.rs"), classes).expect("OUT_DIR is writable");
}
