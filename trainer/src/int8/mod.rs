//! `edgegen quantize`, `edgegen compile` and `edgegen inspect`: from a published model
//! directory's f32 ONNX to calibrated QDQ ONNX (`*.int8.onnx`) and compiled model files
//! (`*.egm`), with int8 golden vectors and int8 quality figures in `card.json`.

pub mod budget;
pub mod flow;
pub mod graph;
pub mod qdq;
pub mod quantize;

use crate::data::{self, Images};
use crate::export::card::{r4, Card, CompiledPart, FamilyCard, Quantization};
use crate::int8::graph::Graph;
use anyhow::{bail, ensure, Context, Result};
use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::{Device, Tensor, TensorData};
use edgegen_runtime::engine;
use edgegen_runtime::image::scale_pixel;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::{DType, Model};
use edgegen_runtime::rng::Rng;
use quantize::{Meta, QModel, Ranges};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The images activation ranges are calibrated on: Fashion-MNIST's training images (as the
/// bundled models were quantized), a folder's validation part (held out from training).
fn calibration_images(source: &data::Source, progress: bool) -> Result<(Images, &'static str)> {
    Ok(match source {
        data::Source::FashionMnist => (data::fashion_mnist(data::Split::Train)?, "training"),
        data::Source::Folder { .. } => (source.load(progress)?.validation, "validation"),
    })
}

/// The calibration images' indices into `images`, in the order they are taken (the first
/// `n` of a permutation fixed by `seed`): the ranges, the flow's calibration and the head
/// fit all draw from it.
pub(crate) fn calibration_picks(images: &Images, n: usize, seed: u64) -> Vec<usize> {
    let mut picks = data::permutation(images.len(), seed ^ 0xca1);
    picks.truncate(n.min(images.len()));
    picks
}

/// Calibration inputs of one part: `n` images (fewer when the set is smaller), or latents
/// (posterior samples of those images through the float encoder, and prior samples).
fn calibration_inputs(dir: &Path, part: &str, n: usize, seed: u64, train: &Images) -> Result<Vec<Vec<f32>>> {
    let picks = calibration_picks(train, n, seed);
    let n = picks.len();
    let images: Vec<Vec<f32>> = picks.iter().map(|&i| train.image(i).iter().map(|&p| scale_pixel(p)).collect()).collect();
    let mut rng = Rng::with_stream(seed, 0xca1b);
    Ok(match part {
        "encoder" | "model" | "classifier" => images,
        "decoder" => {
            let enc = Graph::load(&dir.join("encoder.onnx"))?;
            let outs = crate::parallel::map(n / 2, |i| {
                let v = enc.eval(&images[i]);
                (v[&enc.outputs[0]].clone(), v[&enc.outputs[1]].clone())
            });
            let latent = outs[0].0.len();
            let mut zs = Vec::with_capacity(n);
            for (mu, lv) in outs {
                let mut z = vec![0f32; latent];
                edgegen_runtime::likelihood::reparameterize(&mu, &lv, &mut rng, &mut z)?;
                zs.push(z);
            }
            while zs.len() < n {
                let mut z = vec![0f32; latent];
                rng.fill_normal(&mut z);
                zs.push(z);
            }
            zs
        }
        "generator" => {
            let g = Graph::load(&dir.join("generator.onnx"))?;
            let input = g.shapes[&g.input][0];
            // A conditional generator's input ends in the one-hot class: every class equally
            // often, as `engine::seed_input` writes it.
            let latent = match Card::read(dir)?.latent() {
                l if (1..input).contains(&l) => l,
                _ => input,
            };
            let classes = input - latent;
            (0..n)
                .map(|i| {
                    let mut z = vec![0f32; input];
                    rng.fill_normal(&mut z[..latent]);
                    if classes > 0 {
                        z[latent + i % classes] = 1.0;
                    }
                    z
                })
                .collect()
        }
        other => bail!("unknown part {other}"),
    })
}

fn ranges_to_json(r: &Ranges) -> Value {
    let sorted: BTreeMap<_, _> = r.iter().map(|(k, v)| (k.clone(), json!([v.0, v.1]))).collect();
    json!(sorted)
}

fn ranges_from_json(v: &Value) -> Result<Ranges> {
    let obj = v.as_object().context("calibration ranges must be an object")?;
    obj.iter()
        .map(|(k, r)| {
            let lo = r[0].as_f64().context("range min")? as f32;
            let hi = r[1].as_f64().context("range max")? as f32;
            ensure!(lo.is_finite() && hi.is_finite() && lo <= hi, "bad range for {k}");
            Ok((k.clone(), (lo, hi)))
        })
        .collect()
}

/// Metadata for a part, from its card.
fn meta(card: &Card, part: &str, graph: &Graph) -> Meta {
    let k = card.components() as u8;
    let latent = card.latent() as u16;
    let name = format!("{}/{part}", card.name);
    let components = match graph.family.as_str() {
        "vae-decoder" | "pixelcnn" => k,
        _ => 0,
    };
    Meta { components, latent, name, guard: (0, 0, 0.0, 0.0, [0.0; 4]) }
}

/// `edgegen quantize`: calibrates every part on `n` training images and writes
/// `calibration.json` and `<part>.int8.onnx`; then compiles (see [`compile_dir`]).
///
/// With `head_fit`, a PixelCNN's mixture head is refitted to the int8 network's features
/// (see [`fit_head`]); the fit is kept in `calibration.json`, so every later compile
/// rebuilds the same program.
pub fn quantize_dir(dir: &Path, n: usize, seed: u64, method: quantize::RangeMethod, head_fit: bool, progress: bool) -> Result<()> {
    ensure!(n > 0, "--calibration must be at least 1");
    let card = Card::read(dir)?;
    let fam = card.model_family();
    if fam == crate::families::ModelFamily::Flow {
        return flow::quantize_flow(dir, n, seed, method, progress);
    }
    let (images, which) = calibration_images(&card.source(), progress)?;
    let n = n.min(images.len());
    let mut calib = serde_json::Map::new();
    let mut fits = serde_json::Map::new();
    for &part in fam.parts() {
        let graph = Graph::load(&dir.join(format!("{part}.onnx")))?;
        let inputs = calibration_inputs(dir, part, n, seed, &images)?;
        let ranges = quantize::calibrate_with(&graph, &inputs, method, progress);
        let mut graph = graph;
        if head_fit && graph.family == "pixelcnn" {
            // A background model (`--perturb`) is refitted on frames perturbed as in its
            // training: it is meant to explain clean frames less well.
            let rate = perturb_rate(&card);
            let frames: Vec<Vec<u8>> = calibration_picks(&images, n.min(HEAD_FIT_IMAGES), seed)
                .iter()
                .enumerate()
                .map(|(j, &i)| {
                    let mut f = images.image(i).to_vec();
                    crate::families::training::perturb_pixels(&mut f, rate, seed, 0, j);
                    f
                })
                .collect();
            let views: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
            let fit = fit_head(&graph, &ranges, &meta(&card, part, &graph), &views, progress)?;
            let what =
                if rate > 0.0 { format!("{which} images perturbed as in training (--perturb {rate})") } else { format!("{which} images") };
            eprintln!(
                "{}: {part}'s head refitted on {} {what}: {:.4} → {:.4} bits/dim on them",
                dir.display(),
                frames.len(),
                fit.bpd_before,
                fit.bpd_after
            );
            apply_head_fit(&mut graph, &fit.scale, &fit.shift)?;
            fits.insert(
                part.to_string(),
                json!({"scale": fit.scale, "shift": fit.shift, "images": frames.len(), "perturb": rate, "bpd_before": r4(fit.bpd_before), "bpd_after": r4(fit.bpd_after)}),
            );
        }
        let q = quantize::quantize(&graph, &ranges)?;
        let doc = format!(
            "edgegen int8 QDQ of {part}.onnx, calibrated on {n} {which} inputs. Image input: int8 p-128 (scale 1/127.5, zero point 0)."
        );
        crate::export::onnx::save(&crate::int8::qdq::qdq_onnx(&q, &doc, &graph.family), &dir.join(format!("{part}.int8.onnx")))?;
        calib.insert(part.to_string(), ranges_to_json(&ranges));
        eprintln!("{}: calibrated {part} on {n} inputs", dir.display());
    }
    let mut record =
        json!({"calibration_inputs": n, "calibration_images": which, "seed": seed, "method": method.describe(), "ranges": calib});
    if !fits.is_empty() {
        record["head_fit"] = json!({
            "what": "per output channel c of the mixture head, y_c ← scale_c · y_c + shift_c (folded into the last layer's weights and bias: its int8 weights are unchanged), fitted to the int8 network's features by maximum likelihood on the calibration images (bits/dim before and after on them)",
            "parts": fits,
        });
    }
    data::write_atomic(&dir.join("calibration.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
    compile_dir(dir, progress)
}

/// Rebuilds a part's quantized program from `calibration.json` (deterministic).
pub fn load_program(dir: &Path, part: &str) -> Result<(Graph, QModel)> {
    let (graph, q, _) = load_program_with_ranges(dir, part)?;
    Ok((graph, q))
}

/// [`load_program`] and the calibrated ranges it was built from.
pub fn load_program_with_ranges(dir: &Path, part: &str) -> Result<(Graph, QModel, quantize::Ranges)> {
    let path = dir.join("calibration.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}; run `cargo edgegen quantize --model {}` first", path.display(), dir.display()))?;
    let record: Value = serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
    let ranges = ranges_from_json(&record["ranges"][part])?;
    let mut graph = Graph::load(&dir.join(format!("{part}.onnx")))?;
    if let Some(v) = record.get("head_fit").and_then(|b| b["parts"].get(part)) {
        let list = |key: &str| -> Result<Vec<f32>> {
            let l: Vec<f32> = serde_json::from_value(v[key].clone())
                .with_context(|| format!("{}: head_fit.parts.{part}.{key} must be a list of numbers", path.display()))?;
            ensure!(l.iter().all(|s| s.is_finite()), "{}: head_fit.parts.{part}.{key} holds a value that is not finite", path.display());
            Ok(l)
        };
        apply_head_fit(&mut graph, &list("scale")?, &list("shift")?)
            .with_context(|| format!("{}: head_fit.parts.{part}", path.display()))?;
    }
    let q = quantize::quantize(&graph, &ranges)?;
    Ok((graph, q, ranges))
}

/// The parts whose head `calibration.json` refits (`quantize --head-fit`).
fn head_fitted_parts(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calibration.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|r| r.get("head_fit").and_then(|b| b["parts"].as_object()).map(|o| o.keys().cloned().collect()))
        .unwrap_or_default()
}

/// The `--perturb` rate a model was trained with (0: clean images).
fn perturb_rate(card: &Card) -> f64 {
    let words: Vec<&str> = card.run.train_command.split_whitespace().collect();
    words.windows(2).find(|w| w[0] == "--perturb").and_then(|w| w[1].parse::<f64>().ok()).filter(|p| (0.0..1.0).contains(p)).unwrap_or(0.0)
}

/// Calibration images the PixelCNN's head is refitted on.
pub const HEAD_FIT_IMAGES: usize = 512;

/// Adam steps of the head fit (minibatches of 32 of those images).
pub const HEAD_FIT_STEPS: usize = 300;

/// Adam's rate for the head fit.
pub const HEAD_FIT_LR: f64 = 0.003;

/// The per-channel affine map the head fit learns: factor `exp(u)`, offset `b`.
#[derive(burn::module::Module, Debug)]
struct HeadMap {
    u: Param<Tensor<1>>,
    b: Param<Tensor<1>>,
}

/// A refitted mixture head: per output channel, `y ← scale · y + shift`.
#[derive(Debug, Clone)]
pub struct HeadFit {
    /// Per-channel factors.
    pub scale: Vec<f32>,
    /// Per-channel offsets.
    pub shift: Vec<f32>,
    /// Mean bits/dim of the int8 program on the fitting images before the fit.
    pub bpd_before: f64,
    /// The same after it.
    pub bpd_after: f64,
}

/// Refits the mixture head of the int8 program of `graph` (at `ranges`) to the features
/// the int8 network computes: per output channel an affine map `y ← a·y + b` that
/// maximizes the likelihood of `frames` under the program's head (Adam over the
/// 2 × channels numbers, `a` as `exp(u)`; kept only if the runtime's bits/dim on `frames`
/// fall).
/// Quantization moves every activation a little and the head, trained on f32 features,
/// then puts its mixtures slightly off; a per-channel affine map folds into the last
/// layer's weights and bias without changing its int8 weights, so it costs nothing on the
/// device.
pub fn fit_head(graph: &Graph, ranges: &Ranges, meta: &Meta, frames: &[&[u8]], progress: bool) -> Result<HeadFit> {
    let q = quantize::quantize(graph, ranges)?;
    let file = quantize::compile(&q, meta)?;
    let model = Model::from_bytes(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let net = edgegen_runtime::interpreter::Interpreter::new(model, Kernels::Optimized);
    ensure!(!frames.is_empty(), "a head fit needs at least one calibration image");
    let out_shape = graph.shapes.get(&graph.outputs[0]).context("the graph's output has no shape")?.clone();
    ensure!(out_shape.len() == 3, "a head fit needs a [channels, height, width] head, not {out_shape:?}");
    let (channels, plane) = (out_shape[0], out_shape[1..].iter().product::<usize>());
    let k = meta.components as usize;
    ensure!(k > 0 && frames.iter().all(|f| channels * plane == 3 * k * f.len()), "the head is not a mixture of {k} components per value");
    let heads = crate::parallel::map(frames.len(), |i| -> Result<Vec<f32>> {
        let mut arena = vec![0u8; net.arena_len()];
        net.set_input_image(&mut arena, frames[i]).map_err(|e| anyhow::anyhow!("{e}"))?;
        net.invoke(&mut arena).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut out = vec![0f32; channels * plane];
        net.output_f32(&arena, 0, &mut out).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(out)
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let values: usize = frames.iter().map(|f| f.len()).sum();
    // Mean bits/dim of the frames under the head mapped by (scale, shift), by the runtime's
    // own likelihood: what the device will compute.
    let bpd = |scale: &[f32], shift: &[f32]| -> f64 {
        let total: f64 = crate::parallel::map(frames.len(), |i| {
            let mut h = heads[i].clone();
            for (j, v) in h.iter_mut().enumerate() {
                let c = j / plane;
                *v = scale[c] * *v + shift[c];
            }
            edgegen_runtime::likelihood::mixture_image_log_prob(frames[i], &h[..], k, plane).unwrap_or(f64::NEG_INFINITY)
        })
        .into_iter()
        .sum();
        -total / (values as f64 * std::f64::consts::LN_2)
    };
    let before = bpd(&vec![1.0; channels], &vec![0.0; channels]);
    // Adam on the training loss (burn's differentiable copy of the same likelihood), in
    // minibatches of 32 frames, the factor as exp(u).
    let device = Device::flex().autodiff();
    let mut map =
        HeadMap { u: Param::from_tensor(Tensor::zeros([channels], &device)), b: Param::from_tensor(Tensor::zeros([channels], &device)) };
    let mut adam = burn::optim::AdamConfig::new().init();
    let per = frames[0].len();
    let (c_img, h_img, w_img) = (per / plane, out_shape[1], out_shape[2]);
    let batch = 32.min(frames.len());
    let steps = HEAD_FIT_STEPS;
    let g = edgegen_runtime::image::Geometry { channels: c_img as u16, height: h_img as u16, width: w_img as u16 };
    let bar = crate::progress::bar(progress, steps as u64, "head fit");
    for step in 0..steps {
        let rows: Vec<usize> = (0..batch).map(|j| (step * batch + j) % frames.len()).collect();
        let pixels: Vec<u8> = rows.iter().flat_map(|&i| frames[i].iter().copied()).collect();
        let head: Vec<f32> = rows.iter().flat_map(|&i| heads[i].iter().copied()).collect();
        let x = crate::families::loss::frames_to_tensor(&pixels, batch, g, &device);
        let y = Tensor::<4>::from_data(TensorData::new(head, [batch, channels, h_img, w_img]), &device);
        let mapped = y * map.u.val().exp().reshape([1, channels, 1, 1]) + map.b.val().reshape([1, channels, 1, 1]);
        let loss = crate::families::loss::mixture_log_prob(x, mapped, k).mean().neg().div_scalar(per as f64 * std::f64::consts::LN_2);
        let grads = GradientsParams::from_grads(loss.backward(), &map);
        map = adam.step(HEAD_FIT_LR, map, grads);
        bar.inc(1);
    }
    crate::progress::finish(&bar);
    let scale: Vec<f32> = crate::families::loss::to_vec(map.u.val().exp());
    let shift: Vec<f32> = crate::families::loss::to_vec(map.b.val());
    let after = bpd(&scale, &shift);
    // A fit that does not help on the frames it was fitted to is not kept.
    let (scale, shift, after) = if after < before { (scale, shift, after) } else { (vec![1.0; channels], vec![0.0; channels], before) };
    Ok(HeadFit { scale, shift, bpd_before: before, bpd_after: after })
}

/// Folds a per-channel affine map `y ← scale · y + shift` into the graph's last layer (the
/// convolution writing its output): its weights of channel `c` times
/// `scale[c]`, its bias `scale[c] · b + shift[c]`. Per-channel weight quantization gives
/// the same int8 weights (but for a float rounding tie) at a scale `scale[c]` times larger.
pub fn apply_head_fit(graph: &mut Graph, scale: &[f32], shift: &[f32]) -> Result<()> {
    let output = graph.outputs.first().context("the graph has no output")?.clone();
    let (w, b, outs) = match graph.nodes.last_mut() {
        Some(graph::Node::Conv { w, b, y, wshape, .. }) if *y == output => (w, b, wshape[0]),
        _ => bail!("a head fit needs the graph's output written by a convolution"),
    };
    ensure!(
        scale.len() == outs && shift.len() == outs,
        "a head fit of {} factors and {} offsets for a layer of {outs} outputs",
        scale.len(),
        shift.len()
    );
    ensure!(scale.iter().all(|&a| a > 0.0 && a.is_finite()), "a head fit's factors must be positive");
    let per = w.len() / outs;
    for c in 0..outs {
        w[c * per..(c + 1) * per].iter_mut().for_each(|v| *v *= scale[c]);
        b[c] = scale[c] * b[c] + shift[c];
    }
    Ok(())
}

/// Golden vectors of a compiled part: `golden/int8/<part>.bin` (format in
/// `edgegen_runtime::golden`), version 1, the outputs of the reference kernels.
pub fn write_golden(dir: &Path, part: &str, file: &[u8], inputs: &[Vec<u8>]) -> Result<()> {
    let model = Model::from_bytes(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let interp = edgegen_runtime::interpreter::Interpreter::new(model, Kernels::Reference);
    let mut arena = vec![0u8; interp.arena_len()];
    let mut outputs = Vec::with_capacity(inputs.len());
    for input in inputs {
        if model.input().dtype == DType::I8 {
            interp.set_input_image(&mut arena, input)?;
        } else {
            let z: Vec<f32> = input.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            interp.set_input_f32(&mut arena, &z)?;
        }
        interp.invoke(&mut arena)?;
        let mut out = Vec::new();
        for (w, &o) in model.outputs().iter().enumerate() {
            let mut v = vec![0f32; model.tensor(o as usize).len()];
            interp.output_f32(&arena, w, &mut v)?;
            out.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        }
        outputs.push(out);
    }
    let blob = edgegen_runtime::golden::encode(inputs.iter().zip(&outputs).map(|(i, o)| (&i[..], &o[..])), false)
        .map_err(|e| anyhow::anyhow!("golden vectors of {part}: {e}"))?;
    data::write_atomic(&dir.join("golden").join("int8").join(format!("{part}.bin")), &blob)
}

/// Golden inputs: the first three test frames (a fixed pattern when there is no test set
/// here), or normal latents.
fn golden_inputs(model: &Model, test: Option<&Images>) -> Vec<Vec<u8>> {
    let values = model.input().len();
    (0..3)
        .map(|i| {
            if model.input().dtype == DType::I8 {
                test.filter(|t| t.len() > i && t.values() == values)
                    .map(|t| t.image(i).to_vec())
                    .unwrap_or_else(|| (0..values).map(|p| ((p * 7 + i) % 256) as u8).collect())
            } else {
                let mut z = vec![0f32; model.input().len()];
                Rng::new(1000 + i as u64).fill_normal(&mut z);
                z.iter().flat_map(|v| v.to_le_bytes()).collect()
            }
        })
        .collect()
}

/// Sum of all activation tensors' bytes (what an arena without planning would need).
pub fn activations_sum(model: &Model) -> usize {
    (0..model.tensor_count()).map(|i| model.tensor(i).byte_len as usize).sum()
}

/// `edgegen compile`: `<part>.egm` for every part, from the f32 ONNX and
/// `calibration.json`; golden vectors; int8 figures in the card.
pub fn compile_dir(dir: &Path, progress: bool) -> Result<()> {
    compile_dir_within(dir, None, progress)
}

/// [`compile_dir`], refusing (before writing anything) a model that does not fit `budget`:
/// flash is the sum of its model files, RAM the largest arena of its parts (for a PixelCNN,
/// plus the guard's two per-value f32 buffers).
pub fn compile_dir_within(dir: &Path, budget: Option<&budget::Budget>, progress: bool) -> Result<()> {
    let mut card = Card::read(dir)?;
    let fam = card.model_family();
    let mut compiled = Vec::new();
    for &part in fam.parts() {
        let (graph, q) = load_program(dir, part)?;
        let mut m = meta(&card, part, &graph);
        let path = dir.join(format!("{part}.egm"));
        let mut block = None;
        if let Ok(old) = std::fs::read(&path) {
            // Keep a calibrated guard across recompiles (its guard block too).
            if let Ok(old) = Model::from_bytes(&old) {
                let md = old.metadata();
                m.guard = (md.guard_score, md.guard_flags, md.guard_threshold, md.guard_false_reject, md.guard_params);
                let (off, len) = old.guard_block_range();
                block = (len > 0).then(|| old.bytes()[off..off + len].to_vec());
            }
        }
        let mut file = quantize::compile(&q, &m)?;
        if let Some(b) = block {
            file = edgegen_runtime::model::write::with_guard_block(&file, Some(&b)).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        compiled.push((part, path, file));
    }
    if let Some(b) = budget {
        let flash: u64 = compiled.iter().map(|c| c.2.len() as u64).sum();
        let mut ram = 0u64;
        let mut what = Vec::new();
        for (part, _, file) in &compiled {
            let model = Model::from_bytes(file).map_err(|e| anyhow::anyhow!("{e}"))?;
            let guard = if model.metadata().family == edgegen_runtime::model::Family::PixelCnn {
                3 + 8 * model.geometry().values() as u64
            } else {
                0
            };
            ram = ram.max(model.arena_len() as u64 + guard);
            what.push(format!(
                "{part}.egm: {} B, arena {} B{}",
                file.len(),
                model.arena_len(),
                if guard > 0 { format!(" + {guard} B of guard buffers") } else { String::new() }
            ));
        }
        eprintln!("{}: {}", dir.display(), b.check(ram, flash, &what.join("; "))?);
    }
    let parts = card.source().load(progress).ok();
    let test = parts.as_ref().map(|p| &p.test);
    let mut files = BTreeMap::new();
    for (part, path, file) in compiled {
        data::write_atomic(&path, &file)?;
        let model = Model::from_bytes(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
        write_golden(dir, part, &file, &golden_inputs(&model, test))?;
        let size = |name: String| std::fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0);
        files.insert(
            part.to_string(),
            CompiledPart {
                path: format!("{part}.egm"),
                bytes: file.len() as u64,
                arena_bytes: model.arena_len() as u64,
                activations_sum_bytes: activations_sum(&model) as u64,
                weights_bytes: model.data_len() as u64,
                ops: model.op_count() as u64,
                f32_onnx_bytes: size(format!("{part}.onnx")),
                int8_onnx: format!("{part}.int8.onnx"),
                int8_onnx_bytes: size(format!("{part}.int8.onnx")),
                golden: format!("golden/int8/{part}.bin"),
            },
        );
    }
    card.device.model_file = files;
    let fitted = head_fitted_parts(dir);
    let correction = match fitted.is_empty() {
        true => String::new(),
        false => format!("; the mixture head of {} refitted to the int8 features (calibration.json: head_fit)", fitted.join(", ")),
    };
    card.device.quantization = Some(Quantization {
        scheme: format!("TFLite int8: per-channel symmetric weights in [-127,127], per-tensor asymmetric activations (ranges as calibration.json's method says: min/max by default), int32 bias, requantization by int32 multiplier and shift (folded at compile time), ReLU fused{correction}"),
        edges_in_f32: "image input enters as int8 p-128 (exact; half-step offset folded into the first bias); mixture heads, mu/logvar and the GAN's pre-tanh image are written as f32 (acc * s_in * s_w); tanh runs in f32. No lookup tables are needed: every non-linearity inside the network is a ReLU.".into(),
        calibration: "calibration.json".into(),
    });
    measure_int8(dir, &mut card, test, parts.as_ref().map(|p| &p.validation), progress)?;
    card.write(dir)
}

fn load_file(dir: &Path, part: &str) -> Result<Vec<u8>> {
    let path = dir.join(format!("{part}.egm"));
    std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// int8 quality figures on the full test set (optimized kernels, all cores); the PixelCNN's
/// bits/dim on the validation split too, the figure to choose a range method by
/// (`quantize --ranges`) without looking at the test set.
fn measure_int8(dir: &Path, card: &mut Card, test: Option<&Images>, validation: Option<&Images>, progress: bool) -> Result<()> {
    let test = test.with_context(|| format!("{}: the test images are not here ({})", dir.display(), card.source().describe()))?;
    match &mut card.family {
        FamilyCard::Pixelcnn(f) => {
            let bytes = load_file(dir, "model")?;
            let lp = pixelcnn_log_probs(&bytes, test, progress)?;
            f.test_bpd_int8 = Some(r4(crate::families::vae::eval::mean_bpd(&lp, test.values())));
            if let Some(v) = validation {
                let lp = pixelcnn_log_probs(&bytes, v, progress)?;
                f.val_bpd_int8 = Some(r4(crate::families::vae::eval::mean_bpd(&lp, v.values())));
            }
        }
        FamilyCard::Vae(f) => {
            let (e, d) = (load_file(dir, "encoder")?, load_file(dir, "decoder")?);
            let k = 4;
            let b = vae_bounds(&e, &d, test, k, 1, progress)?;
            let values = test.values();
            f.test_elbo_bpd_int8 = Some(r4(crate::families::vae::eval::mean_bpd(&b.iter().map(|x| x.elbo).collect::<Vec<_>>(), values)));
            f.test_iwae_bpd_int8 = Some(r4(crate::families::vae::eval::mean_bpd(&b.iter().map(|x| x.iwae).collect::<Vec<_>>(), values)));
            f.int8_iwae_k = Some(k);
        }
        // FD needs the Fashion-MNIST classifier's features: other GANs have no FD.
        FamilyCard::Gan(f) if f.fd.is_some() => {
            let bytes = load_file(dir, "generator")?;
            let samples = gan_samples(&bytes, 10_000)?;
            let cache = Path::new("runs").join("fd-classifier");
            let (classifier, _) = crate::eval::fd::classifier(&cache, progress)?;
            let test_stats = crate::eval::fd::test_stats(&classifier)?;
            f.fd_int8 = Some(r4(crate::eval::fd::fd_against_test(&classifier, &samples, &test_stats)));
            if let Some(k) = f.classes.as_ref().map(Vec::len) {
                // The same per-class draw as training's figure: seeds 0..10,000/k of each class.
                let per_class = 10_000usize.div_ceil(k);
                let samples = (0..k).map(|c| gan_class_samples(&bytes, per_class, Some(c))).collect::<Result<Vec<_>>>()?;
                f.class_agreement_int8 = Some(r4(crate::eval::fd::conditional(&classifier, &samples)?.0));
            }
        }
        FamilyCard::Gan(_) | FamilyCard::Flow(_) => {}
        FamilyCard::Classifier(f) => {
            let bytes = load_file(dir, "classifier")?;
            f.test_accuracy_int8 = Some(r4(classifier_accuracy(&bytes, &test.first(Some(f.test_images)))?));
        }
    }
    Ok(())
}

/// Accuracy of the int8 classifier in `file` on labelled `images` (all cores).
pub fn classifier_accuracy(file: &[u8], images: &Images) -> Result<f64> {
    let labels = images.labels.as_ref().context("the test images have no labels")?;
    let m = engine::Classifier::new(Model::from_bytes(file).map_err(|e| anyhow::anyhow!("{e}"))?, Kernels::Optimized)?;
    let hits = crate::parallel::map(images.len(), |i| -> Result<bool> {
        Ok(m.classify(&mut vec![0u8; m.arena_len()], images.image(i))?.class == labels[i] as usize)
    });
    let hits: Vec<bool> = hits.into_iter().collect::<Result<_>>()?;
    Ok(hits.iter().filter(|&&h| h).count() as f64 / hits.len().max(1) as f64)
}

/// Exact log p of every image through the int8 PixelCNN (nats).
pub fn pixelcnn_log_probs(file: &[u8], images: &Images, progress: bool) -> Result<Vec<f64>> {
    let model = Model::from_bytes(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let engine = engine::PixelCnn::new(model, Kernels::Optimized)?;
    let bar = crate::progress::bar(progress, images.len() as u64, "int8");
    let out = crate::parallel::map(images.len(), |i| {
        let mut arena = vec![0u8; engine.arena_len()];
        bar.inc(1);
        engine.log_prob(&mut arena, images.image(i))
    });
    crate::progress::finish(&bar);
    out.into_iter().map(|r| r.map_err(|e| anyhow::anyhow!("{e}"))).collect()
}

/// ELBO / IWAE of every image through the int8 VAE; image `i` draws latents from
/// `Rng::with_stream(seed, i)`.
pub fn vae_bounds(encoder: &[u8], decoder: &[u8], images: &Images, k: usize, seed: u64, progress: bool) -> Result<Vec<engine::VaeBounds>> {
    let e = Model::from_bytes(encoder).map_err(|e| anyhow::anyhow!("encoder: {e}"))?;
    let d = Model::from_bytes(decoder).map_err(|e| anyhow::anyhow!("decoder: {e}"))?;
    let vae = engine::Vae::new(e, d, Kernels::Optimized)?;
    let bar = crate::progress::bar(progress, images.len() as u64, "int8");
    let out = crate::parallel::map(images.len(), |i| {
        let mut arena = vec![0u8; vae.arena_len()];
        bar.inc(1);
        vae.bounds(&mut arena, images.image(i), k, &mut Rng::with_stream(seed, i as u64))
    });
    crate::progress::finish(&bar);
    out.into_iter().map(|r| r.map_err(|e| anyhow::anyhow!("{e}"))).collect()
}

/// `n` int8 generator samples for seeds `0..n`.
pub fn gan_samples(file: &[u8], n: usize) -> Result<Vec<u8>> {
    gan_class_samples(file, n, None)
}

/// [`gan_samples`] of one class of a conditional generator (`None`: each seed's own).
pub fn gan_class_samples(file: &[u8], n: usize, class: Option<usize>) -> Result<Vec<u8>> {
    let model = Model::from_bytes(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let gan = engine::Gan::new(model, Kernels::Optimized)?;
    let images = crate::parallel::map(n, |i| {
        let mut arena = vec![0u8; gan.arena_len()];
        let mut img = vec![0u8; gan.geometry().values()];
        gan.sample_class(&mut arena, i as u64, class, &mut img).map(|_| img)
    });
    Ok(images.into_iter().collect::<std::result::Result<Vec<_>, _>>().map_err(|e| anyhow::anyhow!("{e}"))?.concat())
}

/// `edgegen inspect`: a model file's header, metadata, tensors, ops and arena plan (or a flow
/// file's couplings).
pub fn inspect(path: &Path) -> Result<String> {
    use std::fmt::Write;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(&edgegen_runtime::flow::MAGIC) {
        return flow::describe(path, &bytes);
    }
    let model = Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let md = model.metadata();
    let mut s = String::new();
    writeln!(
        s,
        "{}: edgegen model file v{}, {} bytes (weights and constants {} bytes)",
        path.display(),
        model.version(),
        bytes.len(),
        model.data_len()
    )?;
    writeln!(
        s,
        "name {}  family {}  frames {} (HxWxC)  components {}  latent {}",
        md.name_str(),
        md.family.name(),
        model.geometry(),
        md.components,
        md.latent
    )?;
    if md.guard_flags & 1 != 0 {
        let kind = edgegen_runtime::guard::ScoreKind::from_u8(md.guard_score);
        let name = kind.map_or_else(|| format!("unknown ({})", md.guard_score), |k| k.name().to_string());
        let p = md.guard_params;
        let constants = match kind {
            Some(
                edgegen_runtime::guard::ScoreKind::Combined
                | edgegen_runtime::guard::ScoreKind::Structural
                | edgegen_runtime::guard::ScoreKind::Evidence,
            ) => {
                format!("; constants cc_median {} cc_spread {} line_median {} line_spread {}", p[0], p[1], p[2], p[3])
            }
            _ => String::new(),
        };
        let block = match model.guard_block() {
            Some(b) => {
                let (m, sp) = b.norm();
                // The evidence guard's further terms: name, median, spread.
                let further: String = (0..b.extra_terms())
                    .map(|i| {
                        let (m, sp) = b.extra_norm(i);
                        format!("; {} median {m} spread {sp}", edgegen_runtime::guard::EVIDENCE_TERMS[3 + i])
                    })
                    .collect();
                format!(
                    "\nguard block: a {}-component Gaussian mixture over the {}-d posterior mean of the VAE encoder with CRC {:#010x}; latent_median {m} latent_spread {sp}{further}; {} bytes",
                    b.components(),
                    b.latent(),
                    b.encoder_crc(),
                    model.guard_block_range().1
                )
            }
            None => String::new(),
        };
        writeln!(
            s,
            "guard: score {name} threshold {} (calibrated for false-reject {}){constants}{block}",
            md.guard_threshold, md.guard_false_reject
        )?;
    } else {
        writeln!(s, "guard: not calibrated")?;
    }
    writeln!(s, "arena {} bytes (planned by lifetime; all activations together {} bytes)", model.arena_len(), activations_sum(&model))?;
    writeln!(s, "input t{}  outputs {:?}", model.input_index(), model.outputs())?;
    writeln!(s, "tensors:")?;
    for i in 0..model.tensor_count() {
        let t = model.tensor(i);
        let q = if t.dtype == DType::I8 { format!("scale {:.6} zp {}", t.scale, t.zero_point) } else { "f32".into() };
        writeln!(s, "  t{i:<3} {:?} {:?} arena [{}..{}) {q}", t.dtype, &t.dims[..t.rank as usize], t.offset, t.offset + t.byte_len)?;
    }
    writeln!(s, "ops:")?;
    for i in 0..model.op_count() {
        let op = model.op(i);
        let extra = match op.code {
            edgegen_runtime::model::OpCode::Conv2d | edgegen_runtime::model::OpCode::ConvTranspose2d => {
                format!(" k{}x{} s{} p{} weights {} B", op.kernel_h, op.kernel_w, op.stride, op.pad, op.weights_len)
            }
            edgegen_runtime::model::OpCode::FullyConnected => format!(" weights {} B", op.weights_len),
            _ => String::new(),
        };
        let second = if op.input1 == edgegen_runtime::model::NO_TENSOR { String::new() } else { format!(", t{}", op.input1) };
        let act = if op.act_min > -128 { format!(" clamp [{}, {}]", op.act_min, op.act_max) } else { String::new() };
        writeln!(s, "  {i:<3} {:<16} t{}{second} -> t{}{extra}{act}", op.code.name(), op.input0, op.output)?;
    }
    Ok(s)
}
