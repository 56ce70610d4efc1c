//! PixelCNN: trainer (burn) vs tract vs onnxruntime, the autoregressive property through
//! tract, and the runtime's exact likelihood and sampler on the bundled model.

mod common;

use burn::prelude::*;
use edgegen_runtime::onnx::{OnnxModel, OnnxPixelCnn};
use edgegen_trainer::families::pixelcnn::{export, PixelCnnConfig};

fn small(device: &Device, two_stack: bool) -> edgegen_trainer::families::pixelcnn::PixelCnn {
    device.seed(11);
    PixelCnnConfig::new().with_channels(16).with_inner(8).with_blocks(2).with_components(3).with_two_stack(two_stack).init(device)
}

fn frame(seed: u64) -> Vec<u8> {
    let mut rng = edgegen_runtime::rng::Rng::new(seed);
    (0..784).map(|_| (rng.next_u32() >> 24) as u8).collect()
}

#[test]
fn fresh_pixelcnn_export_matches_burn_forward_in_tract() {
    for two_stack in [false, true] {
        export_matches_burn(two_stack);
    }
}

fn export_matches_burn(two_stack: bool) {
    let device = Device::flex();
    let model = small(&device, two_stack);
    let dir = common::temp_dir("fresh-pixelcnn");
    edgegen_trainer::export::onnx::save(&export::onnx(&model, edgegen_trainer::data::FASHION_MNIST), &dir.join("model.onnx")).unwrap();
    let engine = OnnxPixelCnn::load(&dir).unwrap();
    assert_eq!(engine.components(), 3);
    for seed in 0..3 {
        let img = frame(seed);
        let want = edgegen_trainer::families::pixelcnn::eval::heads(&model, &img, edgegen_trainer::data::FASHION_MNIST);
        let got = engine.heads(&img).unwrap();
        assert!(common::max_abs_diff(&want, &got) < 1e-4, "differs by {}", common::max_abs_diff(&want, &got));
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Changing pixel i leaves every output at raster positions <= i unchanged (through tract,
/// on the exported file, so the baked masks are what is tested).
fn assert_autoregressive(model: &OnnxModel) {
    let base = frame(5);
    let x = |img: &[u8]| img.iter().map(|&p| edgegen_runtime::image::scale_pixel(p)).collect::<Vec<f32>>();
    let before = model.run(&x(&base), "pixelcnn").unwrap().swap_remove(0);
    let channels = before.len() / 784;
    for i in [0usize, 1, 27, 28, 391, 500, 782, 783] {
        let mut changed = base.clone();
        changed[i] = changed[i].wrapping_add(128);
        let after = model.run(&x(&changed), "pixelcnn").unwrap().swap_remove(0);
        for c in 0..channels {
            for p in 0..=i {
                assert_eq!(before[c * 784 + p], after[c * 784 + p], "pixel {i} changed output {p} (channel {c})");
            }
        }
        if i < 783 {
            assert!(
                (0..channels).any(|c| before[c * 784 + i + 1..(c + 1) * 784] != after[c * 784 + i + 1..(c + 1) * 784]),
                "pixel {i} influences nothing"
            );
        }
    }
}

#[test]
fn fresh_pixelcnn_is_autoregressive_in_tract() {
    let device = Device::flex();
    let dir = common::temp_dir("ar-pixelcnn");
    for two_stack in [false, true] {
        edgegen_trainer::export::onnx::save(
            &export::onnx(&small(&device, two_stack), edgegen_trainer::data::FASHION_MNIST),
            &dir.join("model.onnx"),
        )
        .unwrap();
        assert_autoregressive(&OnnxModel::load(&dir.join("model.onnx")).unwrap());
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bundled_pixelcnn_is_autoregressive_and_matches_golden() {
    let dir = common::model_dir("pixelcnn-fmnist");
    assert_autoregressive(&OnnxModel::load(&dir.join("model.onnx")).unwrap());
    common::check_golden(&dir, "model", 1e-4);
}

#[test]
fn bundled_pixelcnn_passes_onnx_checker_and_onnxruntime() {
    common::python_check(&common::model_dir("pixelcnn-fmnist"), &["model.onnx", "model.int8.onnx"]);
}

#[test]
fn bundled_background_pixelcnn_is_autoregressive_matches_golden_and_passes_the_checker() {
    let dir = common::model_dir("pixelcnn-fmnist-bg");
    assert_autoregressive(&OnnxModel::load(&dir.join("model.onnx")).unwrap());
    common::check_golden(&dir, "model", 1e-4);
    common::python_check(&dir, &["model.onnx", "model.int8.onnx"]);
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    assert!(card["train_command"].as_str().unwrap().contains("--perturb"), "the background model is trained on perturbed images");
}

/// The second use case's colour PixelCNNs: tract reproduces their golden vectors, and the
/// onnx checker and onnxruntime accept the f32 and QDQ files.
#[test]
fn bundled_slide_pixelcnns_match_golden_and_pass_the_checker() {
    for name in ["pixelcnn-ihc", "pixelcnn-ihc-bg"] {
        let dir = common::model_dir(name);
        common::check_golden(&dir, "model", 1e-4);
        common::python_check(&dir, &["model.onnx", "model.int8.onnx"]);
    }
}

#[test]
fn bundled_pixelcnn_likelihood_and_sampling() {
    let dir = common::model_dir("pixelcnn-fmnist");
    let engine = OnnxPixelCnn::load(&dir).unwrap();
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    assert!(card["params"].as_u64().unwrap() <= 300_000, "parameter budget");
    assert!(card["macs"].as_u64().unwrap() <= 60_000_000, "MAC budget");
    let frames = edgegen_trainer::data::read_idx_images(&common::root().join("models/frames/fashion-mnist-test.idx")).unwrap();
    let bpd: Vec<f64> =
        (0..frames.len()).map(|i| edgegen_runtime::likelihood::bits_per_dim(engine.log_prob(frames.image(i)).unwrap(), 784)).collect();
    let mean = bpd.iter().sum::<f64>() / bpd.len() as f64;
    // The bundled frames are the first test images: their mean must sit near the card's figure.
    let card_bpd = card["test_bpd"].as_f64().unwrap();
    assert!((mean - card_bpd).abs() < 0.6, "frames {mean} vs card {card_bpd}");
    let (mut a, mut b) = ([0u8; 784], [0u8; 784]);
    engine.sample(3, &mut a).unwrap();
    engine.sample(3, &mut b).unwrap();
    assert_eq!(a, b, "same seed, same sample");
    assert!(engine.log_prob(&[0u8; 5]).is_err());
}
