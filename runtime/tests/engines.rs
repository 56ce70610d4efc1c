//! The runtime's engines on the bundled models, for every host the runtime runs on (the
//! test command also runs this under qemu-aarch64): the int8 engine reproduces the golden
//! vectors bit for bit and agrees with the tract engine on the QDQ ONNX.

use edgegen_runtime::engine::Vae;
use edgegen_runtime::golden::Golden;
use edgegen_runtime::interpreter::Interpreter;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::Model;
use edgegen_runtime::rng::Rng;
use std::path::PathBuf;

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn frames() -> Vec<u8> {
    let bytes = std::fs::read(models().join("frames/fashion-mnist-test.idx")).unwrap();
    assert_eq!(&bytes[..4], &[0, 0, 8, 3]);
    bytes[16..].to_vec()
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

#[cfg(feature = "onnx")]
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
