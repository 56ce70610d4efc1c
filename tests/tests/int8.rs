//! The int8 path: quantize → compile → run, checked against tract on the QDQ ONNX, against
//! the golden vectors (reference and optimized kernels bit-exact), and against hostile
//! model files.

mod common;

use burn::prelude::*;
use edgegen_runtime::engine;
use edgegen_runtime::guard::{PixelCnnScorer, ScoreKind, Statistics};
use edgegen_runtime::interpreter::{Interpreter, PrivateLayout};
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::Model;
use edgegen_runtime::rng::Rng;
use edgegen_trainer::int8::graph::Graph;
use edgegen_trainer::int8::quantize::{self, Meta};

/// A tiny PixelCNN compiled in-process (random weights, calibrated on random images).
fn tiny_pixelcnn_file() -> Vec<u8> {
    tiny_pixelcnn(false)
}

/// The graph of a tiny PixelCNN (random weights), classic or two-stack.
fn tiny_pixelcnn_graph(two_stack: bool) -> Graph {
    let device = Device::flex();
    device.seed(21);
    let model = edgegen_trainer::families::pixelcnn::PixelCnnConfig::new()
        .with_channels(8)
        .with_inner(4)
        .with_blocks(if two_stack { 2 } else { 1 })
        .with_components(2)
        .with_two_stack(two_stack)
        .init(&device);
    let onnx = edgegen_trainer::export::onnx::encode(&edgegen_trainer::families::pixelcnn::export::onnx(
        &model,
        edgegen_trainer::data::FASHION_MNIST,
    ));
    Graph::parse(&onnx).unwrap()
}

/// A tiny PixelCNN, classic or two-stack, compiled in-process.
fn tiny_pixelcnn(two_stack: bool) -> Vec<u8> {
    let graph = tiny_pixelcnn_graph(two_stack);
    let mut rng = Rng::new(5);
    let inputs: Vec<Vec<f32>> = (0..8).map(|_| (0..784).map(|_| rng.uniform() * 2.0 - 1.0).collect()).collect();
    let q = quantize::quantize(&graph, &quantize::calibrate(&graph, &inputs, false)).unwrap();
    quantize::compile(&q, &Meta { components: 2, latent: 0, name: "tiny".into(), guard: (0, 0, 0.0, 0.0, [0.0; 4]) }).unwrap()
}

/// The PixelCNN head's refit to its int8 features: it lowers the bits/dim on the images it
/// is fitted to, folding it into the last layer gives an int8 program with those bits (its
/// int8 weights unchanged), and a fit of the wrong size is refused.
#[test]
fn head_fit_lowers_int8_bits_and_folds_into_the_last_layer() {
    let graph = tiny_pixelcnn_graph(false);
    let images = frames();
    let inputs: Vec<Vec<f32>> =
        (0..images.len()).map(|i| images.image(i).iter().map(|&p| edgegen_runtime::image::scale_pixel(p)).collect()).collect();
    let ranges = quantize::calibrate(&graph, &inputs, false);
    let meta = Meta { components: 2, latent: 0, name: "tiny".into(), guard: (0, 0, 0.0, 0.0, [0.0; 4]) };
    let picks: Vec<&[u8]> = (0..images.len()).map(|i| images.image(i)).collect();
    let fit = edgegen_trainer::int8::fit_head(&graph, &ranges, &meta, &picks, false).unwrap();
    assert_eq!((fit.scale.len(), fit.shift.len()), (6, 6));
    // An untrained head is far off: the fit must find a lot.
    assert!(fit.bpd_after < fit.bpd_before - 0.05, "{fit:?}");
    let bpd = |g: &Graph| {
        let file = quantize::compile(&quantize::quantize(g, &ranges).unwrap(), &meta).unwrap();
        let engine = engine::PixelCnn::new(Model::from_bytes(&file).unwrap(), Kernels::Optimized).unwrap();
        let mut arena = vec![0u8; engine.arena_len()];
        let lp: f64 = picks.iter().map(|f| engine.log_prob(&mut arena, f).unwrap()).sum();
        (-lp / (784.0 * picks.len() as f64 * std::f64::consts::LN_2), file)
    };
    let (plain, plain_file) = bpd(&graph);
    assert!((plain - fit.bpd_before).abs() < 1e-6, "{plain} vs {}", fit.bpd_before);
    let mut fitted = graph.clone();
    edgegen_trainer::int8::apply_head_fit(&mut fitted, &fit.scale, &fit.shift).unwrap();
    let (refit, refit_file) = bpd(&fitted);
    assert!((refit - fit.bpd_after).abs() < 0.01, "folded into the layer: {refit}, fitted: {}", fit.bpd_after);
    assert_eq!(plain_file.len(), refit_file.len(), "the same program, other constants");
    let err = edgegen_trainer::int8::apply_head_fit(&mut fitted, &fit.scale[1..], &fit.shift).unwrap_err();
    assert!(err.to_string().contains("outputs"), "{err}");
    let err = edgegen_trainer::int8::apply_head_fit(&mut fitted, &[-1.0; 6], &fit.shift).unwrap_err();
    assert!(err.to_string().contains("positive"), "{err}");
}

fn frames() -> edgegen_trainer::data::Images {
    edgegen_trainer::data::read_idx_images(&common::root().join("models/frames/fashion-mnist-test.idx")).unwrap()
}

/// Runs every golden set of `dir/golden/int8/<part>.bin` with both kernel sets: outputs
/// must equal the stored ones bit for bit.
fn check_int8_golden(dir: &std::path::Path, part: &str) {
    let file = std::fs::read(dir.join(format!("{part}.egm"))).unwrap();
    let model = Model::from_bytes(&file).unwrap();
    let blob = std::fs::read(dir.join("golden/int8").join(format!("{part}.bin"))).unwrap();
    let golden = edgegen_runtime::golden::Golden::parse(&blob).unwrap();
    assert!(golden.len() >= 3);
    for kernels in [Kernels::Reference, Kernels::Optimized] {
        let interp = Interpreter::new(model, kernels);
        let mut arena = vec![0u8; interp.arena_len()];
        assert_eq!(golden.passed(&interp, &mut arena).unwrap(), golden.len(), "{part} with {kernels:?} kernels");
    }
}

#[test]
fn bundled_vae_int8_golden_vectors_are_bit_exact() {
    let dir = common::model_dir("vae-fmnist");
    check_int8_golden(&dir, "encoder");
    check_int8_golden(&dir, "decoder");
}

#[test]
fn bundled_pixelcnn_int8_golden_vectors_are_bit_exact() {
    check_int8_golden(&common::model_dir("pixelcnn-fmnist"), "model");
}

#[test]
fn bundled_background_pixelcnn_int8_golden_vectors_are_bit_exact() {
    check_int8_golden(&common::model_dir("pixelcnn-fmnist-bg"), "model");
}

/// The second use case: the colour PixelCNN on 32×32 slide tiles and its background model.
#[test]
fn bundled_slide_pixelcnns_int8_golden_vectors_are_bit_exact() {
    for name in ["pixelcnn-ihc", "pixelcnn-ihc-bg"] {
        let dir = common::model_dir(name);
        check_int8_golden(&dir, "model");
        let file = std::fs::read(dir.join("model.egm")).unwrap();
        assert_eq!(Model::from_bytes(&file).unwrap().geometry().dims(), [3, 32, 32], "{name}");
    }
}

/// The structural guard's VAE of the bundled `name`: the int8 engine (the device path; only
/// when `kind` reads the latent) and the QDQ files through tract.
fn guard_vae(name: &str, kind: ScoreKind) -> (Option<engine::Vae<'static>>, edgegen_runtime::onnx::OnnxVae) {
    let dir = common::model_dir(name);
    let read = |f: &str| -> &'static [u8] { Box::leak(std::fs::read(dir.join(f)).unwrap().into_boxed_slice()) };
    let vae = kind.needs_latent().then(|| {
        engine::Vae::new(
            Model::from_bytes(read("encoder.egm")).unwrap(),
            Model::from_bytes(read("decoder.egm")).unwrap(),
            Kernels::Optimized,
        )
        .unwrap()
    });
    (vae, edgegen_runtime::onnx::OnnxVae::load_files(&dir.join("encoder.int8.onnx"), &dir.join("decoder.int8.onnx")).unwrap())
}

/// The latent score of `img` through tract's encoder, checked within 5% of the int8 one.
fn tract_latent(
    block: &edgegen_runtime::guard::GuardBlock,
    tract: &edgegen_runtime::onnx::OnnxVae,
    img: &[u8],
    int8: Option<f64>,
    what: &str,
) -> Option<f64> {
    let (x, y) = (int8.unwrap(), block.score(&tract.encode(img).unwrap().0).unwrap());
    assert!((x - y).abs() < 0.05 * x.abs().max(1.0), "{what}: latent score int8 {x} vs tract {y}");
    Some(y)
}

/// The VAE's part of the tract statistics `b` of `img` (the latent score under `block`, and
/// the reconstruction when `kind` reads it), each checked against the int8 engine's `a`.
#[allow(clippy::too_many_arguments)]
fn tract_vae_evidence(
    b: &mut Statistics,
    a: &Statistics,
    block: Option<&edgegen_runtime::guard::GuardBlock>,
    kind: ScoreKind,
    tract_vae: &edgegen_runtime::onnx::OnnxVae,
    img: &[u8],
    fg: &[f32],
    what: &str,
) {
    if let Some(block) = block {
        b.latent = tract_latent(block, tract_vae, img, a.latent, what);
    }
    if kind.needs_reconstruction() {
        let (x, y) = (a.reconstruction.unwrap(), tract_reconstruction(tract_vae, img, fg, b.coder_bpd));
        assert!((x.bound_cc - y.bound_cc).abs() < 0.05, "{what}: VAE bound int8 {x:?} vs tract {y:?}");
        b.reconstruction = Some(y);
    }
}

/// The evidence guard's reconstruction of `img` through tract (the QDQ encoder's posterior
/// mean, the QDQ decoder's likelihoods there), beside the PixelCNN's per-pixel `fg`.
fn tract_reconstruction(
    tract: &edgegen_runtime::onnx::OnnxVae,
    img: &[u8],
    fg: &[f32],
    coder_bpd: f64,
) -> edgegen_runtime::guard::Reconstruction {
    let g = tract.geometry();
    let (mu, lv) = tract.encode(img).unwrap();
    let params = tract.decode(&mu).unwrap();
    let mut rec = vec![0f32; g.values()];
    edgegen_runtime::likelihood::mixture_image_log_prob_pixels(img, &params[..], tract.components(), g.plane(), &mut rec).unwrap();
    let kl = edgegen_runtime::likelihood::kl_to_standard_normal(&mu, &lv).unwrap();
    edgegen_runtime::guard::Reconstruction::from_pixels(g, fg, &rec, kl, coder_bpd)
}

/// The slide guard on the bundled slide frames, int8 engine against tract on the QDQ files
/// (float arithmetic, ties to even, against the engine's fixed-point requantization): a
/// deeper colour model accumulates more one-step differences than the Fashion-MNIST one, so
/// every frame within 0.05 bits/dim, the mean within 0.02, and the same verdicts.
#[test]
fn bundled_slide_guard_agrees_with_tract() {
    let (dir, bg_dir) = (common::model_dir("pixelcnn-ihc"), common::model_dir("pixelcnn-ihc-bg"));
    let tract = edgegen_runtime::onnx::OnnxPixelCnn::load_file(&dir.join("model.int8.onnx")).unwrap();
    let tract_bg = edgegen_runtime::onnx::OnnxPixelCnn::load_file(&bg_dir.join("model.int8.onnx")).unwrap();
    let (file, bg_file) = (std::fs::read(dir.join("model.egm")).unwrap(), std::fs::read(bg_dir.join("model.egm")).unwrap());
    let model = Model::from_bytes(&file).unwrap();
    let (md, g) = (model.metadata(), model.geometry());
    let kind = ScoreKind::from_u8(md.guard_score).expect("a calibrated guard");
    let engine = engine::PixelCnn::new(model, Kernels::Optimized).unwrap();
    let background = engine::PixelCnn::new(Model::from_bytes(&bg_file).unwrap(), Kernels::Optimized).unwrap();
    let params = edgegen_runtime::guard::guard_params(&model);
    let block = model.guard_block();
    // The structural guard's VAE: the int8 encoder on the device path, the QDQ one in tract.
    let (vae, tract_vae) = guard_vae("vae-ihc", kind);
    let mut arena = vec![0u8; PixelCnnScorer::arena_len(&engine, Some(&background), vae.as_ref())];
    let mut guard = PixelCnnScorer::guard(engine, Some(background), vae, &mut arena).expect("a calibrated guard");
    let mut diffs = Vec::new();
    for set in ["slide-test.idx", "slide-defects.idx"] {
        let frames = edgegen_trainer::data::read_idx_images(&common::root().join("models/frames").join(set)).unwrap();
        assert_eq!(frames.geometry().unwrap(), g);
        for i in 0..frames.len() {
            let img = frames.image(i);
            let v = guard.check(img).unwrap();
            let a = guard.scorer().last().unwrap();
            let (mut fg, mut bg) = (vec![0f32; g.values()], vec![0f32; g.values()]);
            tract.log_prob_pixels(img, &mut fg).unwrap();
            tract_bg.log_prob_pixels(img, &mut bg).unwrap();
            let mut b = Statistics::from_pixels(img, g, &fg, Some(&bg)).with_patch_ratio(g, &fg, &bg);
            assert!((a.bpd - b.bpd).abs() < 0.05, "{set} {i}: int8 {} vs tract int8 {}", a.bpd, b.bpd);
            tract_vae_evidence(&mut b, &a, block.as_ref(), kind, &tract_vae, img, &fg, &format!("{set} {i}"));
            let tract_score = b.score(kind, &params).unwrap();
            assert_eq!(v.accept, tract_score as f32 <= md.guard_threshold, "{set} {i}: verdicts differ ({} vs {tract_score})", v.score);
            diffs.push((a.bpd - b.bpd).abs());
        }
    }
    assert_eq!(diffs.len(), 24);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    assert!(mean < 0.02, "mean |diff| {mean}");
}

#[test]
fn bundled_gan_int8_golden_vectors_are_bit_exact() {
    check_int8_golden(&common::model_dir("gan-fmnist"), "generator");
}

/// The conditional GAN on the int8 engine: its golden vectors bit for bit (three classes),
/// the class count from the file, and each class asked for close to tract's f32 image of the
/// same input (int8 against float: a few levels on most pixels).
#[test]
fn bundled_conditional_gan_draws_each_class_on_the_int8_engine() {
    let dir = common::model_dir("cgan-fmnist");
    check_int8_golden(&dir, "generator");
    let file = std::fs::read(dir.join("generator.egm")).unwrap();
    let gan = edgegen_runtime::engine::Gan::new(Model::from_bytes(&file).unwrap(), Kernels::Optimized).unwrap();
    assert_eq!((gan.latent(), gan.classes()), (32, 10));
    let tract = edgegen_runtime::onnx::OnnxGan::load(&dir).unwrap();
    let mut arena = vec![0u8; gan.arena_len()];
    let (mut a, mut b) = (vec![0u8; 784], vec![0u8; 784]);
    for class in 0..10 {
        assert_eq!(gan.sample_class(&mut arena, 11, Some(class), &mut a).unwrap(), class);
        tract.sample_class(11, Some(class), &mut b).unwrap();
        let mean = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y) as f64).sum::<f64>() / 784.0;
        assert!(mean < 3.0, "class {class}: int8 and f32 images differ by {mean} levels on average");
    }
    assert!(gan.sample_class(&mut arena, 11, Some(10), &mut a).is_err());
}

/// The int8 engine against tract on the QDQ files, on the bundled real frames: bits/dim,
/// and the calibrated guard (model and background model) with its stored constants. tract
/// runs QDQ in float and rounds half to even; the engine is exact integer arithmetic with
/// fixed-point multipliers, so an activation lying at a rounding boundary can land one step
/// apart. The result is unbiased noise: the mean difference must stay within 0.01 bits/dim,
/// every frame within 0.02, and every verdict must be the same.
#[test]
fn bundled_pixelcnn_int8_engine_agrees_with_tract_on_qdq() {
    let dir = common::model_dir("pixelcnn-fmnist");
    let bg_dir = common::model_dir("pixelcnn-fmnist-bg");
    let tract = edgegen_runtime::onnx::OnnxPixelCnn::load_file(&dir.join("model.int8.onnx")).unwrap();
    let tract_bg = edgegen_runtime::onnx::OnnxPixelCnn::load_file(&bg_dir.join("model.int8.onnx")).unwrap();
    let (file, bg_file) = (std::fs::read(dir.join("model.egm")).unwrap(), std::fs::read(bg_dir.join("model.egm")).unwrap());
    let model = Model::from_bytes(&file).unwrap();
    let md = model.metadata();
    let params = edgegen_runtime::guard::guard_params(&model);
    let kind = ScoreKind::from_u8(md.guard_score).expect("a calibrated guard");
    let block = model.guard_block();
    let engine = engine::PixelCnn::new(model, Kernels::Optimized).unwrap();
    let background = engine::PixelCnn::new(Model::from_bytes(&bg_file).unwrap(), Kernels::Optimized).unwrap();
    // The structural guard's VAE: its int8 encoder on the device path, its QDQ encoder in tract.
    let (vae, tract_vae) = guard_vae("vae-fmnist", kind);
    let mut arena = vec![0u8; PixelCnnScorer::arena_len(&engine, Some(&background), vae.as_ref())];
    let mut guard = PixelCnnScorer::guard(engine, Some(background), vae, &mut arena).expect("a calibrated guard");
    let (mut diffs, mut verdicts) = (Vec::new(), 0);
    for set in ["fashion-mnist-test.idx", "mnist-digits.idx", "sensor-faults.idx"] {
        let frames = edgegen_trainer::data::read_idx_images(&common::root().join("models/frames").join(set)).unwrap();
        for i in 0..frames.len() {
            let img = frames.image(i);
            let v = guard.check(img).unwrap();
            let a = guard.scorer().last().unwrap();
            let (mut fg, mut bg) = (vec![0f32; 784], vec![0f32; 784]);
            tract.log_prob_pixels(img, &mut fg).unwrap();
            tract_bg.log_prob_pixels(img, &mut bg).unwrap();
            let g = edgegen_trainer::data::FASHION_MNIST;
            let mut b = Statistics::from_pixels(img, g, &fg, Some(&bg)).with_patch_ratio(g, &fg, &bg);
            assert!((a.bpd - b.bpd).abs() < 0.02, "{set} {i}: int8 {} vs tract int8 {}", a.bpd, b.bpd);
            tract_vae_evidence(&mut b, &a, block.as_ref(), kind, &tract_vae, img, &fg, &format!("{set} {i}"));
            let tract_score = b.score(kind, &params).unwrap();
            assert_eq!(v.accept, tract_score as f32 <= md.guard_threshold, "{set} {i}: verdicts differ ({} vs {tract_score})", v.score);
            diffs.push(a.bpd - b.bpd);
            verdicts += 1;
        }
    }
    assert_eq!(verdicts, 36);
    let mean_abs = diffs.iter().map(|d| d.abs()).sum::<f64>() / diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    assert!(mean_abs < 0.01 && mean.abs() < 0.005, "mean |diff| {mean_abs}, mean diff {mean}");
}

#[test]
fn bundled_vae_int8_engine_agrees_with_tract_on_qdq() {
    let dir = common::model_dir("vae-fmnist");
    let tract = edgegen_runtime::onnx::OnnxVae::load_files(&dir.join("encoder.int8.onnx"), &dir.join("decoder.int8.onnx")).unwrap();
    let (e, d) = (std::fs::read(dir.join("encoder.egm")).unwrap(), std::fs::read(dir.join("decoder.egm")).unwrap());
    let vae = engine::Vae::new(Model::from_bytes(&e).unwrap(), Model::from_bytes(&d).unwrap(), Kernels::Optimized).unwrap();
    let mut arena = vec![0u8; vae.arena_len()];
    let frames = frames();
    for i in 0..frames.len() {
        let a = vae.bounds(&mut arena, frames.image(i), 4, &mut Rng::with_stream(3, i as u64)).unwrap();
        let b = tract.bounds(frames.image(i), 4, &mut Rng::with_stream(3, i as u64)).unwrap();
        assert!((a.iwae_bpd() - b.iwae_bpd()).abs() < 0.01, "frame {i}: int8 {} vs tract int8 {}", a.iwae_bpd(), b.iwae_bpd());
    }
    let (mut s1, mut s2) = ([0u8; 784], [0u8; 784]);
    vae.sample(&mut arena, 5, &mut s1).unwrap();
    vae.sample(&mut arena, 5, &mut s2).unwrap();
    assert_eq!(s1, s2);
}

#[test]
fn tiny_model_runs_identically_with_both_kernel_sets_and_plans_its_arena() {
    for two_stack in [false, true] {
        tiny_model_runs_identically(&tiny_pixelcnn(two_stack));
    }
}

fn tiny_model_runs_identically(file: &[u8]) {
    let model = Model::from_bytes(file).unwrap();
    let sum: usize = (0..model.tensor_count()).map(|i| model.tensor(i).byte_len as usize).sum();
    assert!(model.arena_len() < sum, "arena {} should be below the sum of activations {sum}", model.arena_len());
    let frames = frames();
    let (r, o) = (engine::PixelCnn::new(model, Kernels::Reference).unwrap(), engine::PixelCnn::new(model, Kernels::Optimized).unwrap());
    let mut arena = vec![0u8; r.arena_len()];
    for i in 0..4 {
        let a = r.log_prob(&mut arena, frames.image(i)).unwrap();
        let b = o.log_prob(&mut arena, frames.image(i)).unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
    }
    assert!(matches!(r.log_prob(&mut [0u8; 10], frames.image(0)), Err(edgegen_runtime::Error::ArenaTooSmall { .. })));
}

fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() >= 16 {
        edgegen_runtime::model::Header::seal(bytes);
    }
}

#[test]
fn hostile_model_files_return_errors_never_panic() {
    let good = tiny_pixelcnn_file();
    let mut rng = Rng::new(2026);
    let (mut rejected, mut accepted, mut ran) = (0usize, 0usize, 0usize);
    let image = frames().image(0).to_vec();
    let cases = 100_000;
    for case in 0..cases {
        let mut b = good.clone();
        match case % 6 {
            // Random byte changes in the structural part, checksum repaired so validation runs.
            0 | 1 => {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(704.min(b.len() as u32)) as usize;
                    b[at] = rng.next_u32() as u8;
                }
                fix_crc(&mut b);
            }
            // Anywhere, checksum not repaired.
            2 => {
                let at = rng.below(b.len() as u32) as usize;
                b[at] ^= 1 << rng.below(8);
            }
            // Truncation (header length left as is).
            3 => b.truncate(rng.below(b.len() as u32) as usize),
            // Oversized dimensions, wrong version, or offsets pointing anywhere.
            4 => {
                let field = [4usize, 20, 22, 24, 28, 32, 36, 40, 44, 64 + 4, 64 + 6, 64 + 8, 64 + 12, 64 + 16][rng.below(14) as usize];
                let v = [0u32, 1, 0xFFFF, 0xFFFF_FFFF, b.len() as u32, rng.next_u32()][rng.below(6) as usize];
                b[field..field + 2].copy_from_slice(&(v as u16).to_le_bytes());
                fix_crc(&mut b);
            }
            // Inconsistent op offsets and lengths.
            _ => {
                let ops_off = u32::from_le_bytes(b[28..32].try_into().unwrap()) as usize;
                let op = rng.below(4) as usize;
                let field = ops_off + op * 48 + [16usize, 20, 24, 28, 32, 10, 12, 13][rng.below(8) as usize];
                if field + 4 <= b.len() {
                    b[field..field + 4].copy_from_slice(&rng.next_u32().to_le_bytes());
                }
                fix_crc(&mut b);
            }
        }
        match Model::from_bytes(&b) {
            Err(e) => {
                assert!(!e.to_string().is_empty());
                rejected += 1;
            }
            Ok(model) => {
                accepted += 1;
                // Check once, then trust: a file that validates must run without panicking.
                if accepted % 16 == 1 {
                    if let Ok(pcnn) = engine::PixelCnn::new(model, Kernels::Optimized) {
                        let mut arena = vec![0u8; pcnn.arena_len()];
                        let _ = pcnn.log_prob(&mut arena, &image);
                        ran += 1;
                    }
                }
            }
        }
    }
    eprintln!("{cases} mutated files: {rejected} rejected with an error, {accepted} accepted, {ran} of those run");
    assert_eq!(rejected + accepted, cases);
    assert!(rejected > cases / 2, "most mutations must be caught");
    assert!(ran > 100, "some accepted mutations must be run");
}

#[test]
fn model_file_errors_say_what_and_where() {
    let good = tiny_pixelcnn_file();
    let err = |b: &[u8]| Model::from_bytes(b).unwrap_err().to_string();
    assert!(err(&good[..10]).contains("truncated"));
    assert!(err(&good[..good.len() - 1]).contains("truncated"));
    assert!(err(b"PK\x03\x04 this is a zip file, not a model, and it is long enough for a header.....").contains("bad magic"));
    let mut v = good.clone();
    v[4] = 9;
    assert!(err(&v).contains("version 9"));
    let mut c = good.clone();
    let last = c.len() - 1;
    c[last] ^= 0xFF;
    assert!(err(&c).contains("checksum"));
    // A tensor extending past the arena.
    let mut t = good.clone();
    t[64 + 32 + 12..64 + 32 + 16].copy_from_slice(&0x00FF_0000u32.to_le_bytes());
    fix_crc(&mut t);
    let e = err(&t);
    assert!(e.contains("Arena 1") || e.contains("Tensor 1"), "{e}");
}

#[test]
fn row_band_sampling_equals_full_passes() {
    let files = [tiny_pixelcnn(false), tiny_pixelcnn(true)];
    for (file, kernels) in files.iter().flat_map(|f| [(f, Kernels::Reference), (f, Kernels::Optimized)]) {
        let model = Model::from_bytes(file).unwrap();
        assert!(Interpreter::new(model, Kernels::Optimized).is_row_causal());
        let pcnn = engine::PixelCnn::new(model, kernels).unwrap();
        // The window keeps a few rows of each activation, not all 28.
        let all_rows = PrivateLayout::new(&model).unwrap().arena_len();
        assert!(pcnn.sample_arena_len() * 2 < all_rows, "{} of {all_rows}", pcnn.sample_arena_len());
        let mut arena = vec![0u8; pcnn.sample_arena_len().max(pcnn.arena_len())];
        for seed in [0u64, 9] {
            let (mut fast, mut full) = ([0u8; 784], [0u8; 784]);
            pcnn.sample(&mut arena, seed, &mut fast).unwrap();
            // A dirty arena must not matter.
            arena.iter_mut().for_each(|b| *b = 0x5A);
            pcnn.sample_full(&mut arena, seed, &mut full).unwrap();
            assert_eq!(fast, full, "seed {seed} with {kernels:?}");
        }
    }
    // The bundled PixelCNN (a 7×7 first layer, so windows of 4 rows) in its window, against
    // a full pass per value.
    let file = std::fs::read(common::model_dir("pixelcnn-fmnist").join("model.egm")).unwrap();
    let model = Model::from_bytes(&file).unwrap();
    assert_eq!(PrivateLayout::rows_needed(&model), 4);
    let pcnn = engine::PixelCnn::new(model, Kernels::Optimized).unwrap();
    assert!(pcnn.sample_arena_len() <= 256 * 1024, "{}", pcnn.sample_arena_len());
    let (mut fast, mut full) = ([0u8; 784], [0u8; 784]);
    let mut arena = vec![0xA5u8; pcnn.sample_arena_len().max(pcnn.arena_len())];
    pcnn.sample(&mut arena[..pcnn.sample_arena_len()], 3, &mut fast).unwrap();
    pcnn.sample_full(&mut arena, 3, &mut full).unwrap();
    assert_eq!(fast, full);
    // A window taller than the image, or a model whose tensors change height, is refused.
    assert!(PrivateLayout::window(&model, 29).is_err() && PrivateLayout::window(&model, 0).is_err());
    let vae_decoder = std::fs::read(common::model_dir("vae-fmnist").join("decoder.egm")).unwrap();
    assert!(PrivateLayout::window(&Model::from_bytes(&vae_decoder).unwrap(), 2).is_err());
    // A model whose masked rows are not zero is not row-causal (and sample falls back).
    let vae = std::fs::read(common::model_dir("vae-fmnist").join("encoder.egm")).unwrap();
    assert!(!Interpreter::new(Model::from_bytes(&vae).unwrap(), Kernels::Optimized).is_row_causal());
}

/// The bundled classifier: its golden vectors bit for bit with both kernel sets, its int8
/// classes equal to its QDQ file's through tract on the bundled Fashion-MNIST frames, and
/// the guard's one call (`Guard::classify`) giving the classifier's own answer with the
/// guard's own verdict — a label only when the guard accepts.
#[test]
fn bundled_classifier_answers_through_the_guard() {
    let dir = common::model_dir("classifier-fmnist");
    check_int8_golden(&dir, "classifier");
    let file = std::fs::read(dir.join("classifier.egm")).unwrap();
    let classifier = engine::Classifier::new(Model::from_bytes(&file).unwrap(), Kernels::Optimized).unwrap();
    let tract = edgegen_runtime::onnx::OnnxClassifier::load_file(&dir.join("classifier.int8.onnx")).unwrap();
    assert_eq!((classifier.classes(), tract.classes()), (10, 10));
    let p_dir = common::model_dir("pixelcnn-fmnist");
    let (pfile, bfile) = (
        std::fs::read(p_dir.join("model.egm")).unwrap(),
        std::fs::read(common::model_dir("pixelcnn-fmnist-bg").join("model.egm")).unwrap(),
    );
    let model = Model::from_bytes(&pfile).unwrap();
    let kind = ScoreKind::from_u8(model.metadata().guard_score).unwrap();
    let pixelcnn = engine::PixelCnn::new(model, Kernels::Optimized).unwrap();
    let background = engine::PixelCnn::new(Model::from_bytes(&bfile).unwrap(), Kernels::Optimized).unwrap();
    let (vae, _) = guard_vae("vae-fmnist", kind);
    let mut arena = vec![0u8; PixelCnnScorer::arena_len(&pixelcnn, Some(&background), vae.as_ref())];
    let mut guard = PixelCnnScorer::guard(pixelcnn.clone(), Some(background.clone()), vae.clone(), &mut arena).unwrap();
    let mut own = vec![0u8; classifier.arena_len()];
    let (mut labelled, mut withheld) = (0, 0);
    for set in ["fashion-mnist-test.idx", "mnist-digits.idx", "sensor-faults.idx"] {
        let frames = edgegen_trainer::data::read_idx_images(&common::root().join("models/frames").join(set)).unwrap();
        for i in 0..frames.len() {
            let img = frames.image(i);
            let answer = guard.classify(&classifier, img).unwrap();
            let alone = classifier.classify(&mut own, img).unwrap();
            assert_eq!((answer.class, answer.probability.to_bits()), (alone.class, alone.probability.to_bits()), "{set} {i}");
            assert_eq!(answer.verdict, guard.check(img).unwrap(), "{set} {i}");
            assert_eq!(answer.label(), answer.verdict.accept.then_some(answer.class));
            if set == "fashion-mnist-test.idx" {
                assert_eq!(tract.classify(img).unwrap().class, alone.class, "{set} {i}: int8 engine vs tract on the QDQ file");
            }
            labelled += answer.label().is_some() as usize;
            withheld += answer.label().is_none() as usize;
        }
    }
    assert!(labelled >= 12 && withheld >= 12, "{labelled} labelled, {withheld} withheld");
    // A classifier of another geometry is refused, not run on the wrong frame.
    let mut other = vec![0u8; PixelCnnScorer::arena_len(&pixelcnn, Some(&background), vae.as_ref())];
    let mut guard = PixelCnnScorer::guard(pixelcnn, Some(background), vae, &mut other).unwrap();
    let slide = std::fs::read(common::model_dir("pixelcnn-ihc").join("model.egm")).unwrap();
    assert!(engine::Classifier::new(Model::from_bytes(&slide).unwrap(), Kernels::Optimized).is_err(), "a PixelCNN is not a classifier");
    assert!(guard.classify(&classifier, &[0u8; 10]).is_err(), "a frame of the wrong size");
}

/// The VAE as a Bayes classifier (`Vae::bayes`): with a single class whose prior is the
/// VAE's own N(0, I), its log p(x) is the importance-weighted bound itself (same samples);
/// with the bundled class priors (`models/bayes/class-priors.bin`, tied to the encoder's
/// CRC) it names most bundled garments' classes, its posterior is a probability, and
/// log p(x) is at least the winning class's log p(x, y).
#[test]
fn vae_bayes_classifier_is_the_bound_with_a_class_prior() {
    let dir = common::model_dir("vae-fmnist");
    let (e, d) = (std::fs::read(dir.join("encoder.egm")).unwrap(), std::fs::read(dir.join("decoder.egm")).unwrap());
    let vae = engine::Vae::new(Model::from_bytes(&e).unwrap(), Model::from_bytes(&d).unwrap(), Kernels::Optimized).unwrap();
    let l = vae.latent();
    let identity: Vec<f32> = (0..l).flat_map(|i| (0..=i).map(move |j| if i == j { 1.0 } else { 0.0 })).collect();
    let c = -0.5 * l as f32 * (2.0 * std::f32::consts::PI).ln();
    let one = edgegen_runtime::guard::GuardBlock::encode(0, (0.0, 1.0), &vec![0.0; l], &vec![1.0; l], &[(c, vec![0.0; l], identity)], &[]);
    let one = edgegen_runtime::guard::GuardBlock::parse(&one).unwrap();
    let frames = frames();
    let mut arena = vec![0u8; vae.arena_len()];
    for i in 0..4 {
        let a = vae.bayes(&mut arena, frames.image(i), 4, &one, &mut Rng::with_stream(9, i as u64)).unwrap();
        let b = vae.bounds(&mut arena, frames.image(i), 4, &mut Rng::with_stream(9, i as u64)).unwrap();
        assert!((a.log_px - b.iwae).abs() < 1e-3, "frame {i}: {} vs {}", a.log_px, b.iwae);
        assert_eq!((a.class, a.probability), (0, 1.0));
    }
    let priors = std::fs::read(common::root().join("models/bayes/class-priors.bin")).unwrap();
    let priors = edgegen_runtime::guard::GuardBlock::parse(&priors).unwrap();
    assert_eq!((priors.components(), priors.encoder_crc()), (10, vae.encoder_model().crc()), "priors fitted with this encoder");
    // The bundled frames are the first 12 test images: their labels are the test set's.
    let test = edgegen_trainer::data::fashion_mnist(edgegen_trainer::data::Split::Test).ok();
    let labels: Vec<u8> = test.and_then(|t| t.labels).map(|l| l[..frames.len()].to_vec()).unwrap_or_default();
    let mut right = 0;
    for i in 0..frames.len() {
        let a = vae.bayes(&mut arena, frames.image(i), 4, &priors, &mut Rng::with_stream(1, i as u64)).unwrap();
        assert!(a.probability > 0.0 && a.probability <= 1.0 && a.log_px.is_finite(), "{a:?}");
        right += labels.get(i).is_some_and(|&y| y as usize == a.class) as usize;
    }
    assert!(labels.is_empty() || right >= 8, "{right} of {} bundled garments", frames.len());
    assert!(vae.bayes(&mut arena, frames.image(0), 0, &priors, &mut Rng::new(1)).is_err(), "k = 0 is refused");
}
