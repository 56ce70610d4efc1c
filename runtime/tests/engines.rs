//! The runtime's engines on the bundled models, for every host the runtime runs on (the
//! test command also runs this under qemu-aarch64): the int8 engine reproduces the golden
//! vectors bit for bit and agrees with the tract engine on the QDQ ONNX.

use edgegen_runtime::golden::Golden;
use edgegen_runtime::interpreter::Interpreter;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::Model;
use std::path::PathBuf;

fn models() -> PathBuf {
    // The package directory as cargo reports it when running the test (the compile-time one
    // may be another checkout's when a build cache is shared).
    std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR"))).join("../models")
}

#[test]
fn golden_vectors_reproduce_with_both_kernel_sets() {
    for part in ["encoder", "decoder"] {
        let file = std::fs::read(models().join(format!("vae-fmnist/{part}.egm"))).unwrap();
        let model = Model::from_bytes(&file).unwrap();
        let blob = std::fs::read(models().join(format!("vae-fmnist/golden/int8/{part}.bin"))).unwrap();
        let golden = Golden::parse(&blob).unwrap();
        assert!(golden.len() >= 3);
        for kernels in [Kernels::Reference, Kernels::Optimized] {
            let interp = Interpreter::new(model, kernels);
            let mut arena = vec![0u8; interp.arena_len()];
            assert_eq!(golden.passed(&interp, &mut arena).unwrap(), golden.len(), "{part} {kernels:?}");
        }
    }
}

#[test]
fn golden_digest_form_checks_the_same_bits() {
    for part in ["encoder", "decoder"] {
        let file = std::fs::read(models().join(format!("vae-fmnist/{part}.egm"))).unwrap();
        let interp = Interpreter::new(Model::from_bytes(&file).unwrap(), Kernels::Optimized);
        let mut arena = vec![0u8; interp.arena_len()];
        let blob = std::fs::read(models().join(format!("vae-fmnist/golden/int8/{part}.bin"))).unwrap();
        let full = Golden::parse(&blob).unwrap();
        let mut v2 = full.to_digest(0..full.len()).unwrap();
        // Encoding the full form again gives the file back; the digest of a digest is itself.
        assert_eq!(edgegen_runtime::golden::encode((0..full.len()).map(|i| full.set(i)), false).unwrap(), blob);
        assert_eq!(Golden::parse(&v2).unwrap().to_digest(0..full.len()).unwrap(), v2);
        let golden = Golden::parse(&v2).unwrap();
        let sets = golden.len();
        assert!(sets >= 3 && v2.len() < blob.len());
        assert_eq!(golden.passed(&interp, &mut arena).unwrap(), sets, "{part}");
        // One flipped bit in a stored CRC fails exactly that set.
        let at = v2.len() - 1;
        v2[at] ^= 1;
        assert_eq!(Golden::parse(&v2).unwrap().passed(&interp, &mut arena).unwrap(), sets - 1);
        // A version-2 header over full outputs is refused, not misread.
        let mut bad = blob.clone();
        bad[4..8].copy_from_slice(&2u32.to_le_bytes());
        assert!(Golden::parse(&bad).is_err());
    }
}

/// The int8 engine against tract on the QDQ ONNX (feature `onnx`).
#[cfg(feature = "onnx")]
mod against_tract {
    use super::*;
    use edgegen_runtime::engine::Vae;
    use edgegen_runtime::rng::Rng;

    fn frames() -> Vec<u8> {
        let bytes = std::fs::read(models().join("frames/fashion-mnist-test.idx")).unwrap();
        assert_eq!(&bytes[..4], &[0, 0, 8, 3]);
        bytes[16..].to_vec()
    }

    #[test]
    fn int8_engine_agrees_with_tract_on_the_qdq_files() {
        let dir = models().join("vae-fmnist");
        let tract = edgegen_runtime::onnx::OnnxVae::load_files(&dir.join("encoder.int8.onnx"), &dir.join("decoder.int8.onnx")).unwrap();
        let (e, d) = (std::fs::read(dir.join("encoder.egm")).unwrap(), std::fs::read(dir.join("decoder.egm")).unwrap());
        let vae = Vae::new(Model::from_bytes(&e).unwrap(), Model::from_bytes(&d).unwrap(), Kernels::Optimized).unwrap();
        let mut arena = vec![0u8; vae.arena_len()];
        let pixels = frames();
        for (i, image) in pixels.chunks_exact(784).take(4).enumerate() {
            let a = vae.bounds(&mut arena, image, 2, &mut Rng::with_stream(3, i as u64)).unwrap();
            let b = tract.bounds(image, 2, &mut Rng::with_stream(3, i as u64)).unwrap();
            assert!((a.iwae_bpd() - b.iwae_bpd()).abs() < 0.01, "frame {i}: {} vs {}", a.iwae_bpd(), b.iwae_bpd());
        }
    }
}
