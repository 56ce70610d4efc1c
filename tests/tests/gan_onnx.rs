//! GAN: BatchNorm folding, trainer (burn) vs tract vs onnxruntime, and the bundled card's
//! quality figures.

mod common;

use burn::module::Module;
use burn::prelude::*;
use edgegen_runtime::onnx::OnnxGan;
use edgegen_trainer::families::gan::{export, GanConfig};
use edgegen_trainer::families::loss::to_vec;
use tract_onnx::prelude::{tract_ndarray, tvec, Framework, InferenceModelExt, IntoRunnable, IntoTValue};

/// Exports a fresh generator whose BatchNorm running statistics moved away from (0, 1) and
/// checks tract's output against burn's inference, and the card's parameter count against the
/// file's floats.
fn check_folding(cfg: GanConfig, seed: u64) {
    let device = Device::flex().autodiff();
    device.seed(seed);
    let gan = cfg.init(&device);
    let latent = cfg.latent;
    // A few forward passes in training mode move BatchNorm's running statistics away from
    // (0, 1), so the folding is really exercised.
    for s in 0..5 {
        let mut z = vec![0f32; 16 * latent];
        edgegen_runtime::rng::Rng::new(s).fill_normal(&mut z);
        let _ = gan
            .generator
            .forward(Tensor::from_data(TensorData::new(z.iter().map(|v| v * 3.0 + 1.0).collect::<Vec<_>>(), [16, latent]), &device));
    }
    let generator = gan.generator.valid();
    let dir = common::temp_dir("fresh-gan");
    edgegen_trainer::export::onnx::save(&export::generator_onnx(&generator), &dir.join("generator.onnx")).unwrap();
    let engine = OnnxGan::load(&dir).unwrap();
    let model = edgegen_runtime::onnx::OnnxModel::load(&dir.join("generator.onnx")).unwrap();
    for s in 0..3 {
        let mut z = vec![0f32; latent];
        edgegen_runtime::rng::Rng::new(100 + s).fill_normal(&mut z);
        let want = to_vec(generator.forward(Tensor::from_data(TensorData::new(z.clone(), [1, latent]), &Device::flex())));
        let got = model.run(&z, "generator").unwrap().swap_remove(0);
        assert!(common::max_abs_diff(&want, &got) < 1e-4, "differs by {}", common::max_abs_diff(&want, &got));
    }
    let (c, h, w) = generator.image_dims();
    let mut img = vec![0u8; c * h * w];
    engine.sample(1, &mut img).unwrap();
    assert_eq!(engine.geometry().values(), c * h * w, "the engine takes the frame from the model");
    // The card's parameter count is what the exported file holds.
    let onnx = export::generator_onnx(&generator);
    let floats: usize =
        onnx.graph.as_ref().unwrap().initializer.iter().filter(|t| t.data_type == 1).map(|t| t.dims.iter().product::<i64>() as usize).sum();
    assert_eq!(export::exported_params(&generator), floats);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn folded_generator_matches_burn_inference_in_tract() {
    // A non-default width: the 7×7 map has 24 channels, the 14×14 map half as many.
    let cfg = GanConfig::new().with_latent(8).with_features(24);
    let gan = cfg.init(&Device::flex());
    assert_eq!(gan.generator.deconvs[0].weight.dims(), [24, 12, 4, 4]);
    assert_eq!(gan.generator.deconvs[1].weight.dims(), [12, 1, 4, 4]);
    assert!(gan.generator.fine.is_none());
    assert_eq!(gan.generator.macs(), 8 * 24 * 49 + 24 * 12 * 16 * 49 + 12 * 16 * 196);
    check_folding(cfg, 2);
}

#[test]
fn generator_with_a_fine_stage_folds_its_third_batchnorm() {
    // The last transposed convolution writes a 5-channel 28×28 map (BatchNorm, ReLU), which a
    // 3×3 convolution turns into the image.
    let cfg = GanConfig::new().with_latent(6).with_features(16).with_fine_features(5);
    let gan = cfg.init(&Device::flex());
    assert_eq!(gan.generator.deconvs[1].weight.dims(), [8, 5, 4, 4]);
    assert_eq!(gan.generator.fine.as_ref().unwrap().conv3.weight.dims(), [1, 5, 3, 3]);
    assert_eq!(gan.generator.fine_features(), 5);
    assert_eq!(gan.generator.macs(), 6 * 16 * 49 + 16 * 8 * 16 * 49 + 8 * 5 * 16 * 196 + 5 * 9 * 784);
    check_folding(cfg, 3);
}

/// Exports a fresh discriminator of `cfg` and checks tract's logits against burn's on a few
/// inputs (random pixels and a blank one), each one group of images (one image without the
/// minibatch standard deviation) with its classes.
fn check_discriminator(cfg: GanConfig, seed: u64) -> usize {
    let device = Device::flex();
    device.seed(seed);
    let d = cfg.init(&device).discriminator;
    let dir = common::temp_dir("fresh-d");
    let path = dir.join("discriminator.onnx");
    let group = d.group();
    let shape = [group, cfg.channels, cfg.height, cfg.width];
    edgegen_trainer::export::onnx::save(&export::discriminator_onnx(&d, [1, cfg.channels, cfg.height, cfg.width]), &path).unwrap();
    let model = tract_onnx::onnx().model_for_path(&path).unwrap().into_optimized().unwrap().into_runnable().unwrap();
    for s in 0..3u64 {
        let mut img = vec![0f32; shape.iter().product()];
        if s > 0 {
            edgegen_runtime::rng::Rng::new(seed + s).fill_normal(&mut img);
        }
        let labels: Vec<u8> = (0..group).map(|j| ((s as usize + 3 * j) % cfg.classes.max(1)) as u8).collect();
        let want = to_vec(d.forward(Tensor::from_data(TensorData::new(img.clone(), shape), &device), &labels));
        let mut inputs = tvec![tract_ndarray::Array::from_shape_vec(shape.to_vec(), img).unwrap().into_tvalue()];
        if cfg.classes > 0 {
            let mut one_hot = vec![0f32; group * cfg.classes];
            for (j, &l) in labels.iter().enumerate() {
                one_hot[j * cfg.classes + l as usize] = 1.0;
            }
            inputs.push(tract_ndarray::Array::from_shape_vec(vec![group, cfg.classes], one_hot).unwrap().into_tvalue());
        }
        let out = model.run(inputs).unwrap();
        let got: Vec<f32> = out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
        assert_eq!(got.len(), group);
        assert!(common::max_abs_diff(&want, &got) < 1e-4, "differs by {}", common::max_abs_diff(&want, &got));
    }
    std::fs::remove_dir_all(dir).ok();
    d.num_params()
}

#[test]
fn discriminator_exports_with_two_or_three_strided_convolutions() {
    let two = check_discriminator(GanConfig::new().with_d_features(6), 4);
    assert_eq!(two, (16 * 6 + 6) + (6 * 12 * 16 + 12) + (12 * 49 + 1));
    // A third convolution reads the 7×7 map down to 3×3 with four times the channels.
    let three = check_discriminator(GanConfig::new().with_d_features(6).with_d_layers(3), 5);
    assert_eq!(three, (16 * 6 + 6) + (6 * 12 * 16 + 12) + (12 * 24 * 16 + 24) + (24 * 9 + 1));
    // With the minibatch standard deviation the file scores a group of images at once; the
    // conditional one also adds its class projection to each image's logit.
    let grouped = check_discriminator(GanConfig::new().with_d_features(6).with_d_layers(3).with_mbstd(4), 6);
    assert_eq!(grouped, three + 9);
    check_discriminator(GanConfig::new().with_d_features(6).with_mbstd(2).with_classes(10), 7);
    check_discriminator(GanConfig::new().with_d_features(6).with_classes(10), 8);
}

#[test]
fn generator_and_discriminator_follow_the_frame_size_and_colour() {
    // 32×32 RGB: two stages from 8×8, the image has three channels.
    let cfg = GanConfig::new().with_latent(8).with_features(16).with_channels(3).with_height(32).with_width(32);
    cfg.check().unwrap();
    let gan = cfg.init(&Device::flex());
    assert_eq!(gan.generator.base(), (8, 8));
    assert_eq!(gan.generator.deconvs[1].weight.dims(), [8, 3, 4, 4]);
    assert_eq!(gan.generator.image_dims(), (3, 32, 32));
    assert_eq!(gan.generator.macs(), 8 * 16 * 64 + 16 * 8 * 16 * 64 + 8 * 3 * 16 * 256);
    check_folding(cfg.clone(), 6);
    check_discriminator(cfg, 7);
    // 48×64 RGB with a fine stage: three stages from 6×8, widths 16 → 8 → 4.
    let cfg = GanConfig::new()
        .with_latent(8)
        .with_features(16)
        .with_fine_features(4)
        .with_channels(3)
        .with_height(48)
        .with_width(64)
        .with_d_layers(4)
        .with_d_features(4);
    cfg.check().unwrap();
    let gan = cfg.init(&Device::flex());
    assert_eq!(gan.generator.base(), (6, 8));
    let widths: Vec<_> = gan.generator.deconvs.iter().map(|d| d.weight.dims()[..2].to_vec()).collect();
    assert_eq!(widths, [vec![16, 8], vec![8, 4], vec![4, 4]]);
    assert_eq!(gan.generator.image_dims(), (3, 48, 64));
    check_folding(cfg.clone(), 8);
    // Four strided convolutions: 48×64 → 24×32 → 12×16 → 6×8 → 3×4.
    assert_eq!(cfg.discriminator_map(), (32, 3, 4));
    check_discriminator(cfg, 9);
}

#[test]
fn gan_refuses_frames_it_cannot_have() {
    let err = GanConfig::new().with_height(30).with_width(30).check().unwrap_err().to_string();
    assert!(err.contains("30x30"), "{err}");
    let err = GanConfig::new().with_d_layers(4).check().unwrap_err().to_string();
    assert!(err.contains("--d-layers must be 2") && err.contains("or 3"), "{err}");
    assert!(GanConfig::new().with_channels(2).check().is_err());
}

#[test]
fn bundled_gan_matches_golden_and_card() {
    let dir = common::model_dir("gan-fmnist");
    common::check_golden(&dir, "generator", 1e-4);
    common::check_golden(&dir, "discriminator", 1e-4);
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    let (fd, floor) = (card["fd"].as_f64().unwrap(), card["fd_floor"].as_f64().unwrap());
    assert!(floor > 0.0 && fd > floor, "fd {fd} floor {floor}");
    // The published generator meets the quality goal, in f32 and on the int8 device path.
    let fd_int8 = card["fd_int8"].as_f64().unwrap();
    assert!(fd <= 4.0 * floor && fd_int8 <= 4.0 * floor, "fd {fd} / int8 {fd_int8} against 4 × floor {floor}");
    assert!((card["fd_ratio"].as_f64().unwrap() - fd / floor).abs() < 1e-3);
    let engine = OnnxGan::load(&dir).unwrap();
    let (mut a, mut b) = ([0u8; 784], [0u8; 784]);
    engine.sample(9, &mut a).unwrap();
    engine.sample(9, &mut b).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|&p| p > 100), "a generated garment has bright pixels");
}

/// The bundled conditional GAN: golden vectors through tract, both networks (the
/// discriminator with its class input) through the onnx checker and onnxruntime, and the
/// card's figures: the FD classifier names the class asked for on at least 90% of samples,
/// in f32 and on the int8 engine (#21's goal), with FD per class beside the floor's.
#[test]
fn bundled_conditional_gan_matches_golden_and_card() {
    let dir = common::model_dir("cgan-fmnist");
    common::check_golden(&dir, "generator", 1e-4);
    common::python_check(&dir, &["generator.onnx", "discriminator.onnx", "generator.int8.onnx"]);
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["classes"].as_array().unwrap().len(), 10);
    let (agree, agree_int8) = (card["class_agreement"].as_f64().unwrap(), card["class_agreement_int8"].as_f64().unwrap());
    assert!(agree >= 0.90 && agree_int8 >= 0.90, "class agreement {agree} / int8 {agree_int8}");
    let (fd, floor) = (card["fd_per_class"].as_array().unwrap(), card["fd_floor_per_class"].as_array().unwrap());
    assert!(fd.len() == 10 && floor.len() == 10);
    assert!(fd.iter().zip(floor).all(|(f, l)| f.as_f64().unwrap() > l.as_f64().unwrap()), "{fd:?} vs {floor:?}");
    let engine = OnnxGan::load(&dir).unwrap();
    assert_eq!((engine.latent(), engine.classes()), (32, 10));
}

#[test]
fn bundled_gan_passes_onnx_checker_and_onnxruntime() {
    common::python_check(&common::model_dir("gan-fmnist"), &["generator.onnx", "discriminator.onnx", "generator.int8.onnx"]);
}

/// Per-channel mean and variance of `[B, C, H, W]` values.
fn channel_moments(v: &[f32], c: usize, plane: usize) -> Vec<(f64, f64)> {
    (0..c)
        .map(|ch| {
            let xs: Vec<f64> =
                v.chunks(plane).enumerate().filter(|(i, _)| i % c == ch).flat_map(|(_, p)| p.iter().map(|&x| x as f64)).collect();
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            (m, xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64)
        })
        .collect()
}

#[test]
fn batchnorm_recalibration_measures_the_generators_own_statistics() {
    use burn::module::RunningState;
    use burn::tensor::activation::relu;
    let device = Device::flex();
    let mut g = GanConfig::new().with_latent(8).with_features(12).with_fine_features(3).init(&device).generator;
    // Statistics that belong to other weights, as a weight average leaves them.
    g.norms[0].running_mean = RunningState::new(Tensor::full([12], 3.0, &device));
    g.norms[0].running_var = RunningState::new(Tensor::full([12], 9.0, &device));
    g.norms[1].running_mean = RunningState::new(Tensor::full([6], -2.0, &device));
    g.fine.as_mut().unwrap().bn2.running_var = RunningState::new(Tensor::full([3], 0.01, &device));
    let kept = edgegen_trainer::families::gan::training::recalibrate_batchnorm(g.clone(), 0, 1);
    assert_eq!(to_vec(kept.norms[0].running_mean.value()), vec![3.0; 12], "0 samples keep the statistics");
    let g = edgegen_trainer::families::gan::training::recalibrate_batchnorm(g, 3000, 1);
    // On noise it has not seen, each layer's pre-BatchNorm activations have the recorded
    // mean and variance (to sampling error).
    let mut z = vec![0f32; 2000 * 8];
    edgegen_runtime::rng::Rng::new(77).fill_normal(&mut z);
    let h0 = g.fc.forward(Tensor::<2>::from_data(TensorData::new(z, [2000, 8]), &device)).reshape([2000, 12, 7, 7]);
    let h1 = g.deconvs[0].forward(relu(g.norms[0].forward(h0.clone())));
    let h2 = g.deconvs[1].forward(relu(g.norms[1].forward(h1.clone())));
    let bn2 = &g.fine.as_ref().unwrap().bn2;
    for (h, bn, c, plane) in [(h0, &g.norms[0], 12, 49), (h1, &g.norms[1], 6, 196), (h2, bn2, 3, 784)] {
        let (mean, var) = (to_vec(bn.running_mean.value()), to_vec(bn.running_var.value()));
        for (ch, (m, v)) in channel_moments(&to_vec(h), c, plane).into_iter().enumerate() {
            let tol = 0.05 * v.sqrt() + 1e-6;
            assert!((m - mean[ch] as f64).abs() < tol, "channel {ch}: mean {m} recorded {}", mean[ch]);
            assert!((v / var[ch] as f64 - 1.0).abs() < 0.05, "channel {ch}: variance {v} recorded {}", var[ch]);
        }
    }
}

/// A walk through the latent space starts at seed A's sample and ends at seed B's, bit for
/// bit, on the int8 engine and through tract; the pictures between differ from both ends.
#[test]
fn interpolation_runs_from_one_seed_to_the_other() {
    use edgegen_trainer::engines::{EngineKind, Loaded};
    for engine in [EngineKind::Int8, EngineKind::Tract] {
        let loaded = Loaded::open(&common::model_dir("gan-fmnist"), engine).unwrap();
        let row = loaded.interpolate(3, 7, 5, None).unwrap();
        assert_eq!(row.len(), 5);
        assert_eq!(row[0], loaded.sample(3).unwrap(), "{engine:?}: the walk starts at seed 3's sample");
        assert_eq!(row[4], loaded.sample(7).unwrap(), "{engine:?}: and ends at seed 7's");
        assert!(row[2] != row[0] && row[2] != row[4]);
    }
    let vae = Loaded::open(&common::model_dir("vae-fmnist"), EngineKind::Int8).unwrap();
    let row = vae.interpolate(1, 2, 3, None).unwrap();
    assert!(row.iter().all(|p| p.len() == 784) && row[0] != row[2]);
    let pixelcnn = Loaded::open(&common::model_dir("pixelcnn-fmnist"), EngineKind::Int8).unwrap();
    let e = pixelcnn.interpolate(1, 2, 3, None).unwrap_err().to_string();
    assert!(e.contains("no latent"), "{e}");
}

/// A conditional GAN: the generator reads the noise and the one-hot class (its ONNX file
/// names the classes, which tract's engine reads back), the same seed drawn as each class
/// gives the trainer's image for that input, a class is drawn from the seed when none is
/// asked, and classes the model lacks are refused; the projection discriminator reads the
/// class too, and onnxruntime reproduces both networks' golden vectors.
#[test]
fn conditional_gan_exports_with_its_classes() {
    let cfg = GanConfig::new().with_latent(6).with_features(16).with_d_features(4).with_classes(4);
    cfg.check().unwrap();
    let device = Device::flex();
    device.seed(11);
    let gan = cfg.init(&device);
    assert_eq!((gan.generator.latent(), gan.generator.input_len(), gan.discriminator.classes()), (6, 10, 4));
    assert!(GanConfig::new().with_classes(300).check().is_err());
    let dir = common::temp_dir("fresh-cgan");
    edgegen_trainer::export::onnx::save(&export::generator_onnx(&gan.generator), &dir.join("generator.onnx")).unwrap();
    edgegen_trainer::export::onnx::save(&export::discriminator_onnx(&gan.discriminator, [1, 1, 28, 28]), &dir.join("discriminator.onnx"))
        .unwrap();
    export::write_golden(&gan, &dir).unwrap();
    let engine = OnnxGan::load(&dir).unwrap();
    assert_eq!((engine.latent(), engine.classes()), (6, 4));
    let mut images = Vec::new();
    for class in 0..4 {
        let mut img = vec![0u8; 784];
        assert_eq!(engine.sample_class(5, Some(class), &mut img).unwrap(), class);
        let mut z = vec![0f32; 10];
        edgegen_runtime::engine::seed_input(5, 6, 4, Some(class), &mut z).unwrap();
        assert_eq!(&z[6..], &(0..4).map(|c| if c == class { 1.0 } else { 0.0 }).collect::<Vec<f32>>()[..]);
        let want: Vec<u8> = to_vec(gan.generator.forward(Tensor::from_data(TensorData::new(z, [1, 10]), &device)))
            .into_iter()
            .map(edgegen_runtime::image::unscale_pixel)
            .collect();
        let off = img.iter().zip(&want).filter(|(a, b)| a.abs_diff(**b) > 1).count();
        assert_eq!(off, 0, "class {class}: tract and burn differ by more than one level at {off} pixels");
        images.push(img);
    }
    assert!(images[0] != images[1] && images[1] != images[3], "the class changes the image");
    // No class asked: the seed draws one, and the image is that class's.
    let mut drawn = vec![0u8; 784];
    let mut seen = [0usize; 4];
    for seed in 0..200 {
        engine.sample(seed, &mut drawn).unwrap();
        let mut z = vec![0f32; 10];
        let class = edgegen_runtime::engine::seed_input(seed, 6, 4, None, &mut z).unwrap();
        seen[class] += 1;
        if seed == 5 {
            assert_eq!(drawn, images[class]);
        }
    }
    assert!(seen.iter().all(|&n| n > 25), "classes drawn uniformly: {seen:?}");
    let mut img = vec![0u8; 784];
    assert!(engine.sample_class(5, Some(4), &mut img).is_err(), "class 4 of 4 refused");
    let plain = OnnxGan::load(&common::model_dir("gan-fmnist")).unwrap();
    assert_eq!(plain.classes(), 0);
    assert!(plain.sample_class(5, Some(0), &mut img).is_err(), "an unconditional generator takes no class");
    // The discriminator's logit depends on the class it is told.
    let x = Tensor::<4>::from_data(TensorData::new(vec![0.3f32; 784], [1, 1, 28, 28]), &device);
    let (a, b) = (to_vec(gan.discriminator.forward(x.clone(), &[0])), to_vec(gan.discriminator.forward(x, &[2])));
    assert!((a[0] - b[0]).abs() > 1e-6, "{a:?} vs {b:?}");
    common::python_check(&dir, &["generator.onnx", "discriminator.onnx"]);
    std::fs::remove_dir_all(dir).ok();
}
