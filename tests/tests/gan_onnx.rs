//! GAN: BatchNorm folding, trainer (burn) vs tract vs onnxruntime, and the bundled card's
//! quality figures.

mod common;

use burn::module::Module;
use burn::prelude::*;
use edgegen_runtime::onnx::OnnxGan;
use edgegen_trainer::gan::{export, GanConfig};
use edgegen_trainer::loss::to_vec;

#[test]
fn folded_generator_matches_burn_inference_in_tract() {
    let device = Device::flex().autodiff();
    device.seed(2);
    let gan = GanConfig::new().with_latent(8).init(&device);
    // A few forward passes in training mode move BatchNorm's running statistics away from
    // (0, 1), so the folding is really exercised.
    for s in 0..5 {
        let mut z = vec![0f32; 16 * 8];
        edgegen_runtime::rng::Rng::new(s).fill_normal(&mut z);
        let _ = gan.generator.forward(Tensor::from_data(TensorData::new(z.iter().map(|v| v * 3.0 + 1.0).collect::<Vec<_>>(), [16, 8]), &device));
    }
    let generator = gan.generator.valid();
    let dir = common::temp_dir("fresh-gan");
    edgegen_trainer::onnx::save(&export::generator_onnx(&generator), &dir.join("generator.onnx")).unwrap();
    let engine = OnnxGan::load(&dir).unwrap();
    let model = edgegen_runtime::onnx::OnnxModel::load(&dir.join("generator.onnx")).unwrap();
    for s in 0..3 {
        let mut z = vec![0f32; 8];
        edgegen_runtime::rng::Rng::new(100 + s).fill_normal(&mut z);
        let want = to_vec(generator.forward(Tensor::from_data(TensorData::new(z.clone(), [1, 8]), &Device::flex())));
        let got = model.run(&z, "generator").unwrap().swap_remove(0);
        assert!(common::max_abs_diff(&want, &got) < 1e-4, "differs by {}", common::max_abs_diff(&want, &got));
    }
    let mut img = [0u8; 784];
    engine.sample(1, &mut img).unwrap();
    // The card's parameter count is what the exported file holds.
    let onnx = export::generator_onnx(&generator);
    let floats: usize = onnx.graph.as_ref().unwrap().initializer.iter().filter(|t| t.data_type == 1).map(|t| t.dims.iter().product::<i64>() as usize).sum();
    assert_eq!(export::exported_params(&generator), floats);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bundled_gan_matches_golden_and_card() {
    let dir = common::model_dir("gan-fmnist");
    common::check_golden(&dir, "generator", 1e-4);
    common::check_golden(&dir, "discriminator", 1e-4);
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    let (fd, floor) = (card["fd"].as_f64().unwrap(), card["fd_floor"].as_f64().unwrap());
    assert!(floor > 0.0 && fd > floor, "fd {fd} floor {floor}");
    let engine = OnnxGan::load(&dir).unwrap();
    let (mut a, mut b) = ([0u8; 784], [0u8; 784]);
    engine.sample(9, &mut a).unwrap();
    engine.sample(9, &mut b).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|&p| p > 100), "a generated garment has bright pixels");
}

#[test]
fn bundled_gan_passes_onnx_checker_and_onnxruntime() {
    common::python_check(&common::model_dir("gan-fmnist"), &["generator.onnx", "discriminator.onnx", "generator.int8.onnx"]);
}
