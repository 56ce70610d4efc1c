//! The firmware in QEMU (Cortex-M4F, mps2-an386) against the host: every score, verdict and
//! generated sample it logs must equal, bit for bit, what the same runtime code computes
//! here for the same embedded models, frames and seeds.
//!
//! Needs qemu-system-arm, defmt-print and the thumbv7em-none-eabihf target (the README's
//! test command installs them and sets EDGEGEN_REQUIRE_QEMU=1, which turns their absence
//! into a failure instead of a skip).

mod common;

use edgegen_runtime::engine::{Gan, PixelCnn, Vae};
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::likelihood::bits_per_dim;
use edgegen_runtime::model::{crc32, Model};
use edgegen_runtime::rng::Rng;
use std::collections::HashMap;
use std::process::Command;

fn tools_available() -> bool {
    let ok = |cmd: &str, arg: &str| Command::new(cmd).arg(arg).output().map(|o| o.status.success()).unwrap_or(false);
    let target = Command::new("rustup").args(["target", "list", "--installed"]).output().map(|o| String::from_utf8_lossy(&o.stdout).contains("thumbv7em-none-eabihf")).unwrap_or(false);
    let all = ok("qemu-system-arm", "--version") && ok("defmt-print", "--version") && target;
    if !all && std::env::var("EDGEGEN_REQUIRE_QEMU").as_deref() == Ok("1") {
        panic!("EDGEGEN_REQUIRE_QEMU=1 but qemu-system-arm, defmt-print or the thumbv7em-none-eabihf target is missing");
    }
    if !all {
        eprintln!("skipping: qemu-system-arm, defmt-print or thumbv7em-none-eabihf missing (scripts/test.sh installs them)");
    }
    all
}

/// `key=value` fields of a defmt line.
fn fields(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace().filter_map(|t| t.split_once('=')).collect()
}

fn hex(v: &str) -> u64 {
    u64::from_str_radix(v.trim_start_matches("0x"), 16).expect("hex field")
}

#[test]
fn firmware_in_qemu_matches_the_host_bit_for_bit() {
    if !tools_available() {
        return;
    }
    let root = common::root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target")).join("firmware");
    let out = Command::new("cargo")
        .args(["run", "--release", "--quiet"])
        .current_dir(root.join("firmware"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let log = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "firmware failed:\n{log}\n{err}");
    assert!(log.contains("done: all checks passed"), "{log}");

    let read = |p: &str| std::fs::read(root.join("models").join(p)).unwrap();
    let (pbytes, ebytes, dbytes, gbytes) = (read("pixelcnn-fmnist/model.egm"), read("vae-fmnist/encoder.egm"), read("vae-fmnist/decoder.egm"), read("gan-fmnist/generator.egm"));
    let pixelcnn = PixelCnn::new(Model::from_bytes(&pbytes).unwrap(), Kernels::Optimized).unwrap();
    let vae = Vae::new(Model::from_bytes(&ebytes).unwrap(), Model::from_bytes(&dbytes).unwrap(), Kernels::Optimized).unwrap();
    let gan = Gan::new(Model::from_bytes(&gbytes).unwrap(), Kernels::Optimized).unwrap();
    let mut arena = vec![0u8; pixelcnn.sample_arena_len().max(vae.arena_len())];
    let sets = [("fashion", "fashion-mnist-test.idx"), ("mnist", "mnist-digits.idx")];
    let frames: HashMap<&str, edgegen_trainer::data::Images> =
        sets.iter().map(|(s, f)| (*s, edgegen_trainer::data::read_idx_images(&root.join("models/frames").join(f)).unwrap())).collect();

    let (mut samples, mut scored) = (0, 0);
    for line in log.lines() {
        let f = fields(line);
        if line.contains(" sample ") {
            let seed: u64 = f["seed"].parse().unwrap();
            let mut img = [0u8; 784];
            match f["model"] {
                "vae" => vae.sample(&mut arena, seed, &mut img).unwrap(),
                "gan" => gan.sample(&mut arena, seed, &mut img).unwrap(),
                _ => pixelcnn.sample(&mut arena, seed, &mut img).unwrap(),
            }
            assert_eq!(hex(f["crc"]) as u32, crc32(&img), "{line}");
            samples += 1;
        } else if line.contains(" frame ") {
            let index: usize = f["index"].parse().unwrap();
            let image = frames[f["set"]].image(index);
            let bpd = bits_per_dim(pixelcnn.log_prob(&mut arena, image).unwrap(), 784);
            let vae_bpd = vae.bounds(&mut arena, image, 4, &mut Rng::with_stream(0, index as u64)).unwrap().iwae_bpd();
            let bits: Vec<u64> = line.split_whitespace().filter_map(|t| t.strip_prefix("bits=")).map(hex).collect();
            assert_eq!(bits, vec![bpd.to_bits(), vae_bpd.to_bits()], "{line}");
            let md = pixelcnn.interpreter().model().metadata();
            let want = if md.guard_flags & 1 == 0 { "uncalibrated" } else if bpd as f32 <= md.guard_threshold { "accept" } else { "reject" };
            assert_eq!(f["verdict"], want, "{line}");
            scored += 1;
        }
    }
    assert_eq!(samples, 12, "{log}");
    assert_eq!(scored, 24, "{log}");

    // The screen the firmware drew, as a PNG the README shows.
    let pgm = std::fs::read(root.join("firmware/edgegen-screen.pgm")).expect("the firmware wrote its screen");
    let header_end = pgm.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(2).unwrap().0 + 1;
    let dims: Vec<usize> = String::from_utf8_lossy(&pgm[..header_end]).split_whitespace().skip(1).take(2).map(|v| v.parse().unwrap()).collect();
    assert_eq!(pgm.len() - header_end, dims[0] * dims[1]);
    edgegen_trainer::imageio::write_gray_png(&root.join("firmware/screen.png"), dims[0], dims[1], &pgm[header_end..]).unwrap();
    std::fs::remove_file(root.join("firmware/edgegen-screen.pgm")).ok();
}
