//! VAE: trainer (burn) vs tract vs onnxruntime, on fresh and on bundled models.

mod common;

use burn::prelude::*;
use edgegen_runtime::onnx::OnnxVae;
use edgegen_runtime::rng::Rng;
use edgegen_trainer::families::loss::to_vec;
use edgegen_trainer::families::vae::{export, VaeConfig};

fn fixed_images(n: usize) -> Vec<u8> {
    let mut rng = Rng::new(99);
    (0..n * 784).map(|i| if i % 5 == 0 { 0 } else { (rng.next_u32() >> 24) as u8 }).collect()
}

#[test]
fn fresh_vae_export_matches_burn_forward_in_tract() {
    let device = Device::flex();
    device.seed(3);
    let model = VaeConfig::new().with_latent(8).with_components(2).init(&device);
    let dir = common::temp_dir("fresh-vae");
    export::write_onnx(&model, &dir).unwrap();
    let engine = OnnxVae::load(&dir).unwrap();
    assert_eq!((engine.latent(), engine.components()), (8, 2));

    let pixels = fixed_images(3);
    for i in 0..3 {
        let img = &pixels[i * 784..(i + 1) * 784];
        let x = edgegen_trainer::families::loss::images_to_tensor(img, 1, &device);
        let (mu, lv) = model.encoder.forward(x);
        let (mu_t, lv_t) = engine.encode(img).unwrap();
        assert!(common::max_abs_diff(&to_vec(mu), &mu_t) < 1e-4);
        assert!(common::max_abs_diff(&to_vec(lv), &lv_t) < 1e-4);
    }
    let mut z = vec![0f32; 8];
    Rng::new(4).fill_normal(&mut z);
    let want = to_vec(model.decoder.forward(Tensor::from_data(TensorData::new(z.clone(), [1, 8]), &device)));
    let got = engine.decode(&z).unwrap();
    assert!(common::max_abs_diff(&want, &got) < 1e-4, "decoder differs by {}", common::max_abs_diff(&want, &got));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bundled_vae_golden_vectors_match_tract() {
    let dir = common::model_dir("vae-fmnist");
    common::check_golden(&dir, "encoder", 1e-4);
    common::check_golden(&dir, "decoder", 1e-4);
}

#[test]
fn bundled_vae_passes_onnx_checker_and_onnxruntime() {
    common::python_check(&common::model_dir("vae-fmnist"), &["encoder.onnx", "decoder.onnx", "encoder.int8.onnx", "decoder.int8.onnx"]);
}

#[test]
fn tract_engine_rejects_bad_model_files() {
    let dir = common::temp_dir("bad-onnx");
    std::fs::write(dir.join("encoder.onnx"), b"definitely not protobuf").unwrap();
    std::fs::write(dir.join("decoder.onnx"), b"").unwrap();
    let err = OnnxVae::load(&dir).unwrap_err().to_string();
    assert!(err.contains("encoder.onnx"), "{err}");
    let missing = OnnxVae::load(&dir.join("nowhere")).unwrap_err().to_string();
    assert!(missing.contains("not found"), "{missing}");
    // A valid ONNX file with the wrong interface: the decoder passed as encoder.
    let device = Device::flex();
    let model = VaeConfig::new().init(&device);
    export::write_onnx(&model, &dir).unwrap();
    let err = OnnxVae::load_files(&dir.join("decoder.onnx"), &dir.join("decoder.onnx")).unwrap_err().to_string();
    assert!(err.contains("shape [1, 16]"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn tract_engine_sampling_is_deterministic_and_bounds_are_ordered() {
    let dir = common::model_dir("vae-fmnist");
    let vae = OnnxVae::load(&dir).unwrap();
    let (mut a, mut b, mut c) = ([0u8; 784], [0u8; 784], [0u8; 784]);
    vae.sample(7, &mut a).unwrap();
    vae.sample(7, &mut b).unwrap();
    vae.sample(8, &mut c).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let frames = edgegen_trainer::data::read_idx_images(&common::root().join("models/frames/fashion-mnist-test.idx")).unwrap();
    let bounds = vae.bounds(frames.image(0), 16, &mut Rng::new(1)).unwrap();
    // Jensen: the importance-weighted bound is never below the mean of its log weights.
    assert!(bounds.iwae >= bounds.elbo);
    assert!(bounds.iwae_bpd() > 0.5 && bounds.iwae_bpd() < 8.0, "{}", bounds.iwae_bpd());
    assert!(vae.bounds(&[0u8; 10], 4, &mut Rng::new(1)).is_err());
}
