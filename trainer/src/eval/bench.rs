//! `edgegen bench`: throughput of every engine on one model, measured in one process so the
//! numbers are comparable, reported as images/s and as ratios to the int8 engine with the
//! reference kernels. Not a test: speed is measured here, never asserted.

use crate::data;
use crate::eval::score::{EngineKind, Loaded};
use anyhow::Result;
use edgegen_runtime::engine;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::Model;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// The baseline of a row: the int8 engine with reference kernels doing the same thing (the
/// first row of the same kind — `log_prob` or `sample`; the network-only `forward` rows are
/// measured against the reference `log_prob`, or the reference `sample` of a generator).
fn base(rows: &[(String, f64)], name: &str) -> f64 {
    // A generator has no likelihood: its network row is measured against sampling.
    let has_log_prob = rows.iter().any(|(n, _)| n.starts_with("log_prob"));
    let kind = if name.starts_with("sample") || !has_log_prob { "sample" } else { "log_prob" };
    let of_kind = |n: &String| n.starts_with(kind);
    rows.iter().find(|(n, _)| of_kind(n) && n.contains("reference")).or_else(|| rows.iter().find(|(n, _)| of_kind(n))).map_or(1.0, |r| r.1)
}

/// A compiled model file's bytes, validated.
fn parse(bytes: &[u8]) -> Result<Model<'_>> {
    Model::from_bytes(bytes).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Images per second of `f` over `n` calls (after one warm-up call).
fn rate(n: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<f64> {
    f(0)?;
    let t = Instant::now();
    for i in 0..n {
        f(i)?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// Runs the benchmark on `dir` with `n` images per engine (one thread); prints a table and
/// returns it as JSON.
pub fn run(dir: &Path, n: usize) -> Result<serde_json::Value> {
    let test = data::fashion_mnist(data::Split::Test)?;
    let card = crate::export::card::Card::read(dir)?;
    let family = card.model_family();
    use crate::families::ModelFamily::{Gan, Pixelcnn, Vae};
    let mut rows: Vec<(String, f64)> = Vec::new();
    if family == Pixelcnn {
        let bytes = std::fs::read(dir.join("model.egm"))?;
        let model = Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        for (name, k) in [("int8 reference kernels", Kernels::Reference), ("int8 optimized kernels", Kernels::Optimized)] {
            let e = engine::PixelCnn::new(model, k)?;
            let mut arena = vec![0u8; e.arena_len()];
            rows.push((format!("log_prob {name}"), rate(n, |i| e.log_prob(&mut arena, test.image(i)).map(|_| ()).map_err(Into::into))?));
        }
        // The network alone (no mixture likelihood): what onnxruntime's session.run does.
        let e = engine::PixelCnn::new(model, Kernels::Optimized)?;
        let mut arena = vec![0u8; e.arena_len()];
        let interp = e.interpreter();
        rows.push((
            "forward only, int8 optimized kernels".into(),
            rate(n, |i| {
                interp.set_input_image(&mut arena, test.image(i))?;
                interp.invoke(&mut arena)?;
                Ok(())
            })?,
        ));
    }
    // The VAE's likelihood is its importance-weighted bound (k = 16, as `score`); the GAN
    // has none, so its first row is sampling.
    if family == Vae {
        let (enc, dec) = (std::fs::read(dir.join("encoder.egm"))?, std::fs::read(dir.join("decoder.egm"))?);
        let (enc, dec) = (parse(&enc)?, parse(&dec)?);
        for (name, k) in [("int8 reference kernels", Kernels::Reference), ("int8 optimized kernels", Kernels::Optimized)] {
            let e = engine::Vae::new(enc, dec, k)?;
            let mut arena = vec![0u8; e.arena_len()];
            let mut bound = |i: usize| -> Result<()> {
                let mut rng = edgegen_runtime::rng::Rng::with_stream(0, i as u64);
                e.bounds(&mut arena, test.image(i), crate::eval::score::VAE_K, &mut rng)?;
                Ok(())
            };
            rows.push((format!("log_prob {name}"), rate(n.div_ceil(10), &mut bound)?));
        }
    }
    if family == Gan || family == Vae {
        let names: &[&str] = if family == Gan { &["generator.egm"] } else { &["encoder.egm", "decoder.egm"] };
        let files = names.iter().map(|f| std::fs::read(dir.join(f))).collect::<std::io::Result<Vec<_>>>()?;
        let models = files.iter().map(|b| parse(b)).collect::<Result<Vec<_>>>()?;
        for (name, k) in [("int8 reference kernels", Kernels::Reference), ("int8 optimized kernels", Kernels::Optimized)] {
            let mut img = [0u8; 784];
            let r = if family == Gan {
                let e = engine::Gan::new(models[0], k)?;
                let mut arena = vec![0u8; e.arena_len()];
                rate(n, |i| e.sample(&mut arena, i as u64, &mut img).map_err(Into::into))?
            } else {
                let e = engine::Vae::new(models[0], models[1], k)?;
                let mut arena = vec![0u8; e.arena_len()];
                rate(n, |i| e.sample(&mut arena, i as u64, &mut img).map_err(Into::into))?
            };
            rows.push((format!("sample {name}"), r));
        }
        // Each network alone (no likelihood or sampling around it): what LiteRT's invoke
        // does on the TFLite export, so scripts/bench.sh compares them network by network.
        for (file, &model) in names.iter().zip(&models) {
            let interp = edgegen_runtime::interpreter::Interpreter::new(model, Kernels::Optimized);
            let mut arena = vec![0u8; interp.arena_len()];
            let mut z = vec![0f32; model.input().len()];
            edgegen_runtime::rng::Rng::new(0).fill_normal(&mut z);
            let image_input = model.input().dtype != edgegen_runtime::model::DType::F32;
            let r = rate(n, |i| {
                if image_input {
                    interp.set_input_image(&mut arena, test.image(i))?;
                } else {
                    interp.set_input_f32(&mut arena, &z)?;
                }
                interp.invoke(&mut arena)?;
                Ok(())
            })?;
            rows.push((format!("forward only, {}, int8 optimized kernels", file.trim_end_matches(".egm")), r));
        }
    }
    for (name, kind) in [("tract f32", EngineKind::Tract), ("tract int8 (QDQ)", EngineKind::TractInt8)] {
        let l = Loaded::open(dir, kind)?;
        if family != Gan {
            let m = if family == Vae { n.div_ceil(10) } else { n };
            rows.push((format!("log_prob {name}"), rate(m, |i| l.bpd(test.image(i), i).map(|_| ()))?));
        }
        // A PixelCNN through tract samples with a full pass per pixel: one image is enough.
        let m = if family == Pixelcnn { 1 } else { n };
        rows.push((format!("sample {name}"), rate(m, |i| l.sample(i as u64).map(|_| ()))?));
    }
    if family == Pixelcnn {
        let bytes = std::fs::read(dir.join("model.egm"))?;
        let e = engine::PixelCnn::new(Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?, Kernels::Optimized)?;
        // The row-band sampler keeps a window of rows; a full pass per pixel needs the whole arena.
        let mut arena = vec![0u8; e.sample_arena_len().max(e.arena_len())];
        let mut img = [0u8; 784];
        let s = 2.max(n / 50);
        rows.push(("sample int8 optimized, row-band".into(), rate(s, |i| e.sample(&mut arena, i as u64, &mut img).map_err(Into::into))?));
        rows.push((
            "sample int8 optimized, full pass/pixel".into(),
            rate(1, |i| e.sample_full(&mut arena, i as u64, &mut img).map_err(Into::into))?,
        ));
        let r = engine::PixelCnn::new(Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?, Kernels::Reference)?;
        rows.push((
            "sample int8 reference kernels, row-band".into(),
            rate(1, |i| r.sample(&mut arena, i as u64, &mut img).map_err(Into::into))?,
        ));
    }
    println!("{:<40} {:>12} {:>10}", "engine (1 thread)", "images/s", "ratio");
    for (name, r) in &rows {
        println!("{name:<40} {r:>12.2} {:>10.2}", r / base(&rows, name));
    }
    Ok(json!(rows.iter().map(|(k, v)| json!({"engine": k, "images_per_s": v})).collect::<Vec<_>>()))
}
