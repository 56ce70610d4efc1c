//! Copies the memory map of the board the target runs on into the linker's search path.
//! The maps live in `memory/`, not the crate root, where a `memory.x` would win for every
//! target. Also writes the device's golden files: the first set of each model's
//! `golden/int8/*.bin` (the host tests check all of them; one per model on the device keeps
//! the firmware inside 1 MiB of flash).
use std::path::PathBuf;

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

    for (name, path) in [
        ("pixelcnn", "../models/pixelcnn-fmnist/golden/int8/model.bin"),
        ("pixelcnn-bg", "../models/pixelcnn-fmnist-bg/golden/int8/model.bin"),
        ("vae-encoder", "../models/vae-fmnist/golden/int8/encoder.bin"),
        ("vae-decoder", "../models/vae-fmnist/golden/int8/decoder.bin"),
        ("gan-generator", "../models/gan-fmnist/golden/int8/generator.bin"),
    ] {
        println!("cargo:rerun-if-changed={path}");
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (run `cargo edgegen quantize`)"));
        let word = |i: usize| u32::from_le_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize;
        assert!(bytes.len() >= 20 && &bytes[..4] == b"EGGV" && word(1) >= 1, "{path}: not a golden file");
        let set = word(2) + word(3);
        assert!(bytes.len() >= 20 + set, "{path}: truncated");
        // The first set in golden version 2: its input, and its outputs as one CRC-32.
        let input = word(2);
        let mut first = bytes[..20 + input].to_vec();
        first[4..8].copy_from_slice(&2u32.to_le_bytes());
        first[8..12].copy_from_slice(&1u32.to_le_bytes());
        first[16..20].copy_from_slice(&4u32.to_le_bytes());
        first.extend_from_slice(&crc32(&bytes[20 + input..20 + set]).to_le_bytes());
        std::fs::write(out.join(format!("golden-{name}.bin")), first).expect("OUT_DIR is writable");
    }
}

/// CRC-32 (IEEE, as zlib and `edgegen_runtime::model::crc32` compute it), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { 0xEDB8_8320 ^ (crc >> 1) } else { crc >> 1 };
        }
    }
    !crc
}
