//! Copies the memory map of the board the target runs on into the linker's search path.
//! The maps live in `memory/`, not the crate root, where a `memory.x` would win for every
//! target. Also writes the device's golden files: the first set of each model's
//! `golden/int8/*.bin`, its outputs as their CRC-32 (golden version 2; the host tests check
//! every set in full; one digest per model on the device keeps the firmware inside 1 MiB of
//! flash). The use case (feature `slide`, else Fashion-MNIST) picks the models.
use std::path::PathBuf;

/// The embedded models of the use case: (golden name, model file, golden file).
fn models() -> Vec<(&'static str, &'static str, &'static str)> {
    if std::env::var_os("CARGO_FEATURE_SLIDE").is_some() {
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
        ]
    }
}

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let board = match target.as_str() {
        "thumbv8m.main-none-eabihf" => "mps3-an547",
        _ => "mps2-an386",
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let map = PathBuf::from("memory").join(format!("{board}.x"));
    std::fs::copy(&map, out.join("memory.x")).expect("memory map exists");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", map.display());
    println!("cargo:rerun-if-changed=build.rs");

    for (name, _, path) in models() {
        println!("cargo:rerun-if-changed={path}");
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (run `cargo edgegen quantize`)"));
        let golden = edgegen_runtime::golden::Golden::parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(!golden.is_empty(), "{path}: no golden set");
        // The first set in golden version 2: its input, and its outputs as one CRC-32.
        let first = golden.to_digest(0..1).unwrap_or_else(|e| panic!("{path}: {e}"));
        std::fs::write(out.join(format!("golden-{name}.bin")), first).expect("OUT_DIR is writable");
    }

    // Frame buffers are sized for the largest image geometry among the embedded models (read
    // from their files, as the device will).
    let mut values = 0;
    for (_, path, _) in models() {
        println!("cargo:rerun-if-changed={path}");
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (run `cargo edgegen compile`)"));
        let model = edgegen_runtime::model::Model::from_bytes(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        values = values.max(model.geometry().values());
    }
    let geometry = format!("/// Values of the largest image among the embedded models (build.rs reads their files).\npub const IMAGE_VALUES: usize = {values};\n");
    std::fs::write(out.join("geometry.rs"), geometry).expect("OUT_DIR is writable");
}
