//! The normalizing flow: burn (trainer) vs tract vs onnxruntime on both exported graphs,
//! invertibility through the files, training, the coupling arithmetic the int8 engine runs,
//! and the bundled flow on the int8 engine.

mod common;

use burn::module::Param;
use burn::prelude::*;
use edgegen_runtime::onnx::OnnxFlow;
use edgegen_trainer::families::flow::{export, FlowConfig};

/// A flow whose couplings are not the identity (their zero-initialized output convolutions
/// moved), as training leaves them.
fn moved(cfg: &FlowConfig, seed: u64) -> edgegen_trainer::families::flow::Flow {
    let device = Device::flex();
    device.seed(seed);
    let mut flow = cfg.init(&device);
    for c in flow.pre.iter_mut().chain(flow.post.iter_mut()) {
        let dims = c.output.weight.dims();
        c.output.weight = Param::from_tensor(Tensor::random(dims, burn::tensor::Distribution::Normal(0.0, 0.03), &device));
    }
    flow
}

/// The two shapes the export tests cover: gray 28×28, and colour 8×12 with two blocks and
/// fewer couplings (channel masks over 12 channels, a squeeze between), with their seeds.
fn shapes() -> [(FlowConfig, u64); 2] {
    [
        (FlowConfig::new().with_hidden(8), 5),
        (FlowConfig::new().with_hidden(6).with_blocks(2).with_channels(3).with_height(8).with_width(12).with_pre(2).with_post(1), 6),
    ]
}

/// A moved flow of `cfg` exported into a fresh temporary directory (both graphs), loaded
/// through tract.
fn exported(cfg: &FlowConfig, seed: u64, tag: &str) -> (edgegen_trainer::families::flow::Flow, std::path::PathBuf, OnnxFlow) {
    let flow = moved(cfg, seed);
    let dir = common::temp_dir(&format!("{tag}-{seed}"));
    edgegen_trainer::export::onnx::save(&export::density_onnx(&flow), &dir.join("density.onnx")).unwrap();
    edgegen_trainer::export::onnx::save(&export::sampler_onnx(&flow), &dir.join("sampler.onnx")).unwrap();
    let engine = OnnxFlow::load(&dir).unwrap();
    (flow, dir, engine)
}

/// Both graphs give the trainer's numbers (tract here, onnxruntime on the golden vectors),
/// in gray and colour; an image's latent decodes back to the same image; samples are
/// deterministic per seed.
#[test]
fn flow_exports_density_and_sampler_that_invert_each_other() {
    let test = edgegen_trainer::data::fashion_mnist(edgegen_trainer::data::Split::Test).unwrap().first(Some(3));
    for (cfg, seed) in shapes() {
        let (flow, dir, engine) = exported(&cfg, seed, "flow");
        let g = engine.geometry();
        assert_eq!(g.dims(), [cfg.channels as u16, cfg.height as u16, cfg.width as u16]);
        assert_eq!(engine.latent(), g.values());
        // Images: the test set's for the gray flow, a gradient for the colour one.
        let images: Vec<Vec<u8>> = if cfg.channels == 1 {
            (0..3).map(|i| test.image(i).to_vec()).collect()
        } else {
            (0..3).map(|i| (0..g.values()).map(|j| ((j * 7 + i * 50) % 256) as u8).collect()).collect()
        };
        for image in &images {
            let x: Vec<f32> = image.iter().map(|&p| edgegen_runtime::image::scale_pixel(p)).collect();
            let (want_z, want_lp) = export::density_reference(&flow, &x);
            let (z, lp) = engine.encode(image).unwrap();
            assert!(common::max_abs_diff(&want_z, &z) < 1e-3, "z differs by {}", common::max_abs_diff(&want_z, &z));
            assert!((lp - want_lp as f64).abs() < 1e-5 * want_lp.abs() as f64 + 1e-3, "log p {lp} vs trainer {want_lp}");
            // The latent of an image decodes to the image (its bin centre maps back inside the bin).
            let mut back = vec![0u8; g.values()];
            engine.decode(&z, &mut back).unwrap();
            assert_eq!(&back, image, "decode(encode(x)) = x");
        }
        let (mut a, mut b) = (vec![0u8; g.values()], vec![0u8; g.values()]);
        engine.sample(4, &mut a).unwrap();
        engine.sample(4, &mut b).unwrap();
        assert_eq!(a, b);
        let mut z = vec![0f32; engine.latent()];
        edgegen_runtime::rng::Rng::new(4).fill_normal(&mut z);
        let v = export::sampler_reference(&flow, &z);
        let want: Vec<u8> = v.iter().map(|v| (v * 256.0).floor().clamp(0.0, 255.0) as u8).collect();
        let off = a.iter().zip(&want).filter(|(x, y)| x.abs_diff(**y) > 1).count();
        assert_eq!(off, 0, "tract's sample and the trainer's differ by more than a bin at {off} values");
        if cfg.channels == 1 {
            export::write_golden(&flow, &dir, &test).unwrap();
            common::python_check(&dir, &["density.onnx", "sampler.onnx"]);
        }
        std::fs::remove_dir_all(dir).ok();
    }
}

/// The runtime's coupling arithmetic (`edgegen_runtime::flow`, what the int8 engine runs
/// around its networks), fed the couplings read back from `density.onnx` with their
/// networks in f32, reproduces both graphs through tract: log p and the latent, and the
/// sampler's image of a latent, in gray and colour (channel masks, two blocks, a squeeze
/// between).
#[test]
fn flow_arithmetic_reproduces_the_onnx_graphs() {
    use edgegen_trainer::int8::flow as qflow;
    let test = edgegen_trainer::data::fashion_mnist(edgegen_trainer::data::Split::Test).unwrap().first(Some(3));
    for (cfg, seed) in shapes() {
        let (_, dir, engine) = exported(&cfg, seed, "flow-arith");
        let parts = qflow::parts(&dir.join("density.onnx")).unwrap();
        assert_eq!(parts.parts.len(), cfg.pre + cfg.channel + cfg.post);
        assert_eq!(parts.pre, cfg.pre);
        let g = engine.geometry();
        for i in 0..3 {
            let image: Vec<u8> =
                if cfg.channels == 1 { test.image(i).to_vec() } else { (0..g.values()).map(|j| ((j * 7 + i * 50) % 256) as u8).collect() };
            let (want_z, want_lp) = engine.encode(&image).unwrap();
            let (lp, z, inputs) = qflow::f32_log_prob(&parts, &image).unwrap();
            assert_eq!(inputs.len(), parts.parts.len(), "one input per coupling");
            assert!((lp - want_lp).abs() < 1e-5 * want_lp.abs() + 1e-2, "log p {lp} vs tract {want_lp}");
            assert!(common::max_abs_diff(&want_z, &z) < 1e-3, "z differs by {}", common::max_abs_diff(&want_z, &z));
            let mut want = vec![0u8; g.values()];
            engine.decode(&z, &mut want).unwrap();
            let back = qflow::f32_decode(&parts, &z).unwrap();
            let off = back.iter().zip(&want).filter(|(a, b)| a.abs_diff(**b) > 1).count();
            assert_eq!(off, 0, "the arithmetic's image and the sampler's differ by more than a bin at {off} values");
            assert_eq!(back, image, "decode(encode(x)) = x");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}

/// Shapes a flow cannot have are refused with the reason.
#[test]
fn flow_refuses_odd_frames() {
    let e = FlowConfig::new().with_height(27).check().unwrap_err().to_string();
    assert!(e.contains("even") && e.contains("27x28"), "{e}");
    assert!(FlowConfig::new().with_channels(2).check().is_err());
    assert!(FlowConfig::new().with_pre(0).with_channel(0).with_post(0).check().is_err());
}

/// The bundled flow: both graphs reproduce the trainer's golden vectors through tract and
/// onnxruntime (and pass the onnx checker), its card's bits/dim is a likelihood figure, and
/// a test image's latent decodes back to it.
#[test]
fn bundled_flow_matches_golden_and_card() {
    let dir = common::model_dir("flow-fmnist");
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["family"], "flow");
    let bpd = card["test_bpd"].as_f64().unwrap();
    assert!((2.0..5.0).contains(&bpd), "test bits/dim {bpd}");
    let engine = OnnxFlow::load(&dir).unwrap();
    for i in 0..3 {
        let set = dir.join("golden/density").join(format!("test_data_set_{i}"));
        let (_, _, x) = edgegen_trainer::export::onnx::load_tensor(&set.join("input_0.pb")).unwrap();
        let (_, _, want_lp) = edgegen_trainer::export::onnx::load_tensor(&set.join("output_1.pb")).unwrap();
        let image: Vec<u8> = x.iter().map(|v| edgegen_runtime::image::unscale_pixel(*v)).collect();
        let (z, lp) = engine.encode(&image).unwrap();
        assert!((lp - want_lp[0] as f64).abs() < 1e-5 * want_lp[0].abs() as f64 + 1e-3, "log p {lp} vs golden {}", want_lp[0]);
        let mut back = vec![0u8; 784];
        engine.decode(&z, &mut back).unwrap();
        assert_eq!(back, image);
    }
    common::python_check(&dir, &["density.onnx", "sampler.onnx"]);
}

/// The bundled flow on the int8 engine (`flow.egf`, `quantize`'s output): the optimized
/// kernels give the reference kernels' bits; log p stays near tract's f32 density frame by
/// frame and its card's int8 figure near the f32 one; an image's int8 latent decodes back to
/// it; samples are deterministic; `Loaded` (the CLI's engines) runs it; and a damaged file is
/// refused with the reason.
#[test]
fn bundled_flow_runs_on_the_int8_engine() {
    use edgegen_runtime::flow::Flow;
    use edgegen_runtime::kernels::Kernels;
    let dir = common::model_dir("flow-fmnist");
    let bytes = std::fs::read(dir.join("flow.egf")).unwrap();
    let flow = Flow::from_bytes(&bytes, Kernels::Optimized).unwrap();
    let reference = Flow::from_bytes(&bytes, Kernels::Reference).unwrap();
    let onnx = OnnxFlow::load(&dir).unwrap();
    assert_eq!(flow.geometry(), onnx.geometry());
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    let (f32_bpd, int8_bpd) =
        (card["int8"]["test_bpd_centre_f32"].as_f64().unwrap(), card["int8"]["test_bpd_centre_int8"].as_f64().unwrap());
    assert!(int8_bpd >= f32_bpd - 0.01 && int8_bpd < f32_bpd + 0.1, "int8 {int8_bpd} against f32 {f32_bpd} bits/dim");
    let test = edgegen_trainer::data::fashion_mnist(edgegen_trainer::data::Split::Test).unwrap().first(Some(64));
    let d = flow.latent();
    let (mut arena, mut scratch) = (vec![0u8; flow.arena_len()], vec![0f32; flow.scratch_len()]);
    let (mut gap, mut off) = (0.0, 0usize);
    for i in 0..test.len() {
        let image = test.image(i);
        let lp = flow.log_prob(&mut arena, &mut scratch, image).unwrap();
        let z = scratch[..d].to_vec();
        if i < 3 {
            let mut s2 = vec![0f32; flow.scratch_len()];
            assert_eq!(reference.log_prob(&mut arena, &mut s2, image).unwrap().to_bits(), lp.to_bits(), "reference kernels, frame {i}");
        }
        let want = onnx.log_prob(image).unwrap();
        let diff = (want - lp) / (784.0 * std::f64::consts::LN_2);
        assert!(diff.abs() < 0.5, "frame {i}: int8 log p {lp} against f32 {want}");
        gap += diff;
        let mut back = vec![0u8; d];
        flow.decode(&mut arena, &mut scratch, &z, &mut back).unwrap();
        // The inverse recomputes each network from values the f32 arithmetic returns to
        // within rounding; where one lands across an input quantization step the network's
        // answer moves by a step, so the int8 flow inverts to within a few grey levels, not
        // exactly (here: 78 values of 64 frames, none by more than 2 levels).
        let worst = back.iter().zip(image).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(worst <= 4, "frame {i}: decode(encode(x)) is {worst} grey levels from x");
        off += back.iter().zip(image).filter(|(a, b)| a != b).count();
    }
    assert!(off * 100 <= test.len() * d, "decode(encode(x)) differs from x at {off} of {} values", test.len() * d);
    let gap = gap / test.len() as f64;
    assert!(gap.abs() < 0.1, "int8 minus f32: {gap} bits/dim on average");
    let (mut a, mut b) = (vec![0u8; d], vec![0u8; d]);
    flow.sample(&mut arena, &mut scratch, 3, &mut a).unwrap();
    flow.sample(&mut arena, &mut scratch, 3, &mut b).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|&p| p > 0), "a sample is not blank");
    let loaded = edgegen_trainer::engines::Loaded::open(&dir, edgegen_trainer::engines::EngineKind::Int8).unwrap();
    let lp = flow.log_prob(&mut arena, &mut scratch, test.image(0)).unwrap();
    assert_eq!(loaded.bpd(test.image(0), 0).unwrap(), edgegen_runtime::likelihood::bits_per_dim(lp, d));
    assert_eq!(loaded.sample(3).unwrap(), a);
    // Damage: a flipped byte fails the checksum, a cut file is short, a foreign one has no magic.
    let mut bad = bytes.clone();
    bad[bytes.len() / 2] ^= 1;
    assert!(matches!(Flow::from_bytes(&bad, Kernels::Optimized), Err(edgegen_runtime::Error::ChecksumMismatch { .. })));
    assert!(Flow::from_bytes(&bytes[..20], Kernels::Optimized).is_err());
    assert!(matches!(
        Flow::from_bytes(&bytes[..bytes.len() - 100], Kernels::Optimized),
        Err(edgegen_runtime::Error::ChecksumMismatch { .. })
    ));
    let mut foreign = bytes.clone();
    foreign[0] = b'X';
    assert!(matches!(Flow::from_bytes(&foreign, Kernels::Optimized), Err(edgegen_runtime::Error::BadMagic)));
}

/// Untrusted flow files never panic: the bundled one with bytes changed (header, records or
/// anywhere) and its checksum made right again, so that the validation past the checksum is
/// what meets them. Each is refused with an error or, when still consistent, runs.
#[test]
fn mutated_flow_files_are_refused_or_run_without_panic() {
    use edgegen_runtime::flow::{Flow, HEADER_LEN, RECORD_LEN};
    use edgegen_runtime::kernels::Kernels;
    let bytes = std::fs::read(common::model_dir("flow-fmnist").join("flow.egf")).unwrap();
    let image = edgegen_trainer::data::fashion_mnist(edgegen_trainer::data::Split::Test).unwrap().image(0).to_vec();
    let mut rng = edgegen_runtime::rng::Rng::new(21);
    let (mut refused, mut ran) = (0, 0);
    for i in 0..3000 {
        let mut b = bytes.clone();
        // Mostly the header and the records, where every byte is a length, an offset or a code.
        let table = HEADER_LEN + 9 * RECORD_LEN;
        for _ in 0..1 + rng.below(3) {
            let at = if i % 4 == 0 { rng.below(b.len() as u32) as usize } else { rng.below(table as u32) as usize };
            b[at] = rng.next_u32() as u8;
        }
        if i % 10 == 0 {
            b.truncate(rng.below(b.len() as u32) as usize);
        }
        if b.len() >= 24 {
            let crc = edgegen_runtime::crc32::crc32(&b[24..]);
            b[20..24].copy_from_slice(&crc.to_le_bytes());
        }
        match Flow::from_bytes(&b, Kernels::Optimized) {
            Err(_) => refused += 1,
            Ok(flow) => {
                if ran < 40 {
                    let (mut arena, mut scratch) = (vec![0u8; flow.arena_len()], vec![0f32; flow.scratch_len()]);
                    let g = flow.geometry();
                    let frame: Vec<u8> = image.iter().copied().cycle().take(g.values()).collect();
                    let _ = flow.log_prob(&mut arena, &mut scratch, &frame);
                    let mut out = vec![0u8; g.values()];
                    let _ = flow.sample(&mut arena, &mut scratch, 1, &mut out);
                }
                ran += 1;
            }
        }
    }
    eprintln!("mutated flow files: {refused} refused, {ran} accepted");
    assert!(refused > 1000, "{refused} refused, {ran} accepted");
}
