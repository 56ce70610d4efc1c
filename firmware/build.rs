//! Copies the memory map of the board the target runs on into the linker's search path.
//! The maps live in `memory/`, not the crate root, where a `memory.x` would win for every
//! target.
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
}
