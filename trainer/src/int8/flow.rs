//! `edgegen quantize` for a normalizing flow: each affine coupling's network becomes an int8
//! model file, the coupling arithmetic stays in f32 (`edgegen_runtime::flow`), and all of
//! them go into one flow file, `flow.egf`.
//!
//! The couplings are read back from the exported `density.onnx` (their initializers are
//! named `c{k}.keep`, `c{k}.scale`, `c{k}.input`, `c{k}.block{j}`, `c{k}.output`), so a flow
//! published before this path existed quantizes as it is. Each network is calibrated on the
//! masked values that reach it when the f32 flow (the same arithmetic, its networks in f32)
//! runs on the calibration images.

use super::graph::{floats, Graph};
use super::quantize::{self, Meta, RangeMethod};
use crate::data::{self, Images};
use crate::export::card::{r4, Card, FamilyCard, FlowInt8Card};
use crate::export::onnx::GraphBuilder;
use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::error::Error;
use edgegen_runtime::flow::{self, Couplings, Mask};
use edgegen_runtime::image::Geometry;
use edgegen_runtime::kernels::Kernels;
use prost::Message;
use std::collections::HashMap;
use std::path::Path;
use tract_onnx::pb::{ModelProto, TensorProto};

/// The flow file's name in a model directory.
pub const FILE: &str = "flow.egf";

/// One coupling read from `density.onnx`.
pub struct Part {
    /// Which values it keeps.
    pub mask: Mask,
    /// `[C', H', W']` of its maps.
    pub dims: [usize; 3],
    /// The log-scale's bound per channel (0 for channels it keeps whole).
    pub scales: Vec<f32>,
    /// Its network as a standalone graph: masked values `x` → `st` (`ŝ`, then `t`).
    pub graph: Graph,
}

/// A flow's couplings and shape.
pub struct Parts {
    /// The image geometry.
    pub geometry: Geometry,
    /// Couplings before the squeeze.
    pub pre: usize,
    /// The logit margin.
    pub alpha: f32,
    /// The couplings, in order.
    pub parts: Vec<Part>,
}

/// The mask whose kept values are exactly `keep`'s ones.
fn mask_of(keep: &[f32], [c, h, w]: [usize; 3]) -> Option<Mask> {
    (0..4u8)
        .filter_map(Mask::from_u8)
        .find(|m| (0..c).all(|ch| (0..h).all(|y| (0..w).all(|x| (keep[(ch * h + y) * w + x] == 1.0) == m.keeps(ch, c, y, x)))))
}

/// Reads the couplings of a flow's `density.onnx`.
pub fn parts(density: &Path) -> Result<Parts> {
    let bytes = std::fs::read(density).with_context(|| format!("cannot read {}", density.display()))?;
    let model = ModelProto::decode(&bytes[..]).with_context(|| format!("{}: not an ONNX model", density.display()))?;
    let g = model.graph.with_context(|| format!("{}: no graph", density.display()))?;
    let init: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let input = g.input.first().with_context(|| format!("{}: no input", density.display()))?;
    let dims = super::graph::input_dims(input)?;
    ensure!(dims.len() == 4 && dims[0] == 1, "{}: the input is {dims:?}, not [1, C, H, W]", density.display());
    let geometry = Geometry::new(dims[1] as u16, dims[2] as u16, dims[3] as u16).map_err(|e| anyhow::anyhow!("{e}"))?;
    let full = [dims[1], dims[2], dims[3]];
    let mut parts = Vec::new();
    for k in 0.. {
        let Some(keep) = init.get(format!("c{k}.keep").as_str()) else { break };
        let d: Vec<usize> = keep.dims.iter().map(|&v| v as usize).collect();
        ensure!(d.len() == 4, "c{k}.keep is not [1, C, H, W]");
        let dims = [d[1], d[2], d[3]];
        let keep = floats(keep)?;
        let mask = mask_of(&keep, dims).with_context(|| format!("{}: coupling {k}'s mask is none of the four kinds", density.display()))?;
        let bounded = floats(init.get(format!("c{k}.scale").as_str()).with_context(|| format!("no c{k}.scale"))?)?;
        let plane = dims[1] * dims[2];
        let scales =
            (0..dims[0]).map(|c| (0..plane).find(|&i| keep[c * plane + i] == 0.0).map_or(0.0, |i| bounded[c * plane + i])).collect();
        let weight = |name: &str| -> Result<(Vec<f32>, [usize; 4], Vec<f32>)> {
            let w = init.get(format!("{name}.weight").as_str()).with_context(|| format!("no {name}.weight"))?;
            let b = init.get(format!("{name}.bias").as_str()).with_context(|| format!("no {name}.bias"))?;
            ensure!(w.dims.len() == 4, "{name}.weight is not 4-D");
            let s = [w.dims[0] as usize, w.dims[1] as usize, w.dims[2] as usize, w.dims[3] as usize];
            Ok((floats(w)?, s, floats(b)?))
        };
        let mut gb = GraphBuilder::new();
        gb.input("x", &[1, dims[0], dims[1], dims[2]]);
        let conv = |gb: &mut GraphBuilder, x: &str, name: &str, out: Option<&str>| -> Result<String> {
            let (w, s, b) = weight(name)?;
            ensure!(s[2] == 3 && s[3] == 3, "{name}: a coupling's convolutions are 3x3");
            Ok(gb.conv(x, name, &w, &b, s, 1, 1, out))
        };
        let a = conv(&mut gb, "x", &format!("c{k}.input"), None)?;
        let mut a = gb.relu(&a);
        for j in 0.. {
            let name = format!("c{k}.block{j}");
            if !init.contains_key(format!("{name}.weight").as_str()) {
                break;
            }
            let r = conv(&mut gb, &a, &name, None)?;
            let r = gb.relu(&r);
            a = gb.node("Add", &[&a, &r], None, &[]);
        }
        conv(&mut gb, &a, &format!("c{k}.output"), Some("st"))?;
        gb.output("st", &[1, 2 * dims[0], dims[1], dims[2]]);
        let onnx = gb.finish(
            &format!("coupling{k}"),
            "one affine coupling's network of an edgegen RealNVP: masked values -> raw log-scale and shift",
            &[("family", "flow-coupling".to_string())],
        );
        let graph = Graph::parse(&crate::export::onnx::encode(&onnx)).with_context(|| format!("coupling {k}"))?;
        ensure!(graph.shapes["st"] == vec![2 * dims[0], dims[1], dims[2]], "coupling {k}: the network's output is not [2C, H, W]");
        parts.push(Part { mask, dims, scales, graph });
    }
    ensure!(!parts.is_empty(), "{}: no couplings (initializers c0.keep, …) — not a flow exported by edgegen", density.display());
    let pre = parts.iter().take_while(|p| p.dims == full).count();
    let half = [4 * full[0], full[1] / 2, full[2] / 2];
    ensure!(parts[pre..].iter().all(|p| p.dims == half), "{}: couplings after the squeeze must all be {half:?}", density.display());
    Ok(Parts { geometry, pre, alpha: crate::families::flow::model::ALPHA as f32, parts })
}

/// The flow in f32 (networks evaluated by [`Graph::eval`]), recording each network's inputs
/// when asked.
struct F32Flow<'a> {
    parts: &'a Parts,
    record: Option<Vec<Vec<f32>>>,
}

impl Couplings for F32Flow<'_> {
    fn geometry(&self) -> Geometry {
        self.parts.geometry
    }
    fn count(&self) -> usize {
        self.parts.parts.len()
    }
    fn pre(&self) -> usize {
        self.parts.pre
    }
    fn alpha(&self) -> f32 {
        self.parts.alpha
    }
    fn mask(&self, k: usize) -> Mask {
        self.parts.parts[k].mask
    }
    fn scale(&self, k: usize, c: usize) -> f32 {
        self.parts.parts[k].scales[c]
    }
    fn run(&mut self, k: usize, masked: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let g = &self.parts.parts[k].graph;
        let v = g.eval(masked);
        out.copy_from_slice(&v[&g.outputs[0]]);
        if let Some(r) = &mut self.record {
            r.push(masked.to_vec());
        }
        Ok(())
    }
}

/// log p (nats, bin centre) of an image under the f32 flow (the runtime's arithmetic, the
/// networks in f32), its latent, and every network's input.
pub fn f32_log_prob(parts: &Parts, image: &[u8]) -> Result<(f64, Vec<f32>, Vec<Vec<f32>>)> {
    let mut f = F32Flow { parts, record: Some(Vec::new()) };
    let mut scratch = vec![0f32; flow::scratch_len(parts.geometry)];
    let lp = flow::log_prob_with(&mut f, image, &mut scratch).map_err(|e| anyhow::anyhow!("{e}"))?;
    scratch.truncate(parts.geometry.values());
    Ok((lp, scratch, f.record.unwrap_or_default()))
}

/// The image of latent `z` under the f32 flow.
pub fn f32_decode(parts: &Parts, z: &[f32]) -> Result<Vec<u8>> {
    let d = parts.geometry.values();
    ensure!(z.len() == d, "the latent has {} values, the flow {d}", z.len());
    let mut scratch = vec![0f32; flow::scratch_len(parts.geometry)];
    scratch[..d].copy_from_slice(z);
    let mut out = vec![0u8; d];
    flow::decode_with(&mut F32Flow { parts, record: None }, &mut scratch, &mut out).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(out)
}

/// Quantizes and compiles a flow directory: `flow.egf`, and the int8 figures in the card.
pub fn quantize_flow(dir: &Path, n: usize, seed: u64, method: RangeMethod, progress: bool) -> Result<()> {
    let mut card = Card::read(dir)?;
    let parts = parts(&dir.join("density.onnx"))?;
    let (train, which) = super::calibration_images(&card.source(), progress)?;
    ensure!(train.values() == parts.geometry.values(), "{}: the calibration images are not {} frames", dir.display(), parts.geometry);
    let picks = super::calibration_picks(&train, n, seed);
    let n = picks.len();
    let bar = crate::progress::bar(progress, n as u64, "f32 flow");
    let recorded = crate::parallel::map(n, |i| {
        let r = f32_log_prob(&parts, train.image(picks[i]));
        bar.inc(1);
        r
    });
    crate::progress::finish(&bar);
    let recorded = recorded.into_iter().map(|r| r.map(|(_, _, inputs)| inputs)).collect::<Result<Vec<_>>>()?;
    let name = card.name.clone();
    let (mut couplings, mut plain) = (Vec::new(), Vec::new());
    let mut calib = serde_json::Map::new();
    let mut shifts = serde_json::Map::new();
    for (k, part) in parts.parts.iter().enumerate() {
        let inputs: Vec<Vec<f32>> = recorded.iter().map(|r| r[k].clone()).collect();
        let ranges = quantize::calibrate_with(&part.graph, &inputs, method, false);
        let meta = Meta { components: 0, latent: 0, name: format!("{name}/c{k}"), guard: (0, 0, 0.0, 0.0, [0.0; 4]) };
        let compile = |graph: &Graph| -> Result<Vec<u8>> {
            let q = quantize::quantize(graph, &ranges).with_context(|| format!("coupling {k}"))?;
            quantize::compile(&q, &meta).with_context(|| format!("coupling {k}"))
        };
        let first = compile(&part.graph)?;
        let (corrected, shift) = bias_corrected(part, &first, &inputs)?;
        calib.insert(format!("coupling{k}"), super::ranges_to_json(&ranges));
        shifts.insert(format!("coupling{k}"), serde_json::json!(shift));
        couplings.push((part.mask, part.scales.clone(), compile(&corrected)?));
        plain.push((part.mask, part.scales.clone(), first));
    }
    let bytes = flow::write(parts.geometry, parts.pre, parts.alpha, &couplings).map_err(|e| anyhow::anyhow!("{e}"))?;
    let engine = flow::Flow::from_bytes(&bytes, Kernels::Optimized).map_err(|e| anyhow::anyhow!("the flow file fails validation: {e}"))?;
    let plain = flow::write(parts.geometry, parts.pre, parts.alpha, &plain).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plain = flow::Flow::from_bytes(&plain, Kernels::Optimized).map_err(|e| anyhow::anyhow!("{e}"))?;
    let record = serde_json::json!({
        "calibration_inputs": n,
        "calibration_images": which,
        "seed": seed,
        "method": method.describe(),
        "ranges": calib,
        "bias_correction": format!("each coupling's last-layer bias less the mean int8-minus-f32 error of its output channel over the first {BIAS_INPUTS} calibration inputs (empirical bias correction, Nagel et al. 2019)"),
        "bias_shifts": shifts,
    });
    data::write_atomic(&dir.join("calibration.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
    data::write_atomic(&dir.join(FILE), &bytes)?;
    eprintln!("{}: {FILE}, {} couplings, {} B, arena {} B", dir.display(), couplings.len(), bytes.len(), engine.arena_len());
    let split = card.source().load(progress)?;
    let test = split.test;
    let (f32_bpd, int8_bpd) = compare(dir, &engine, &test, progress)?;
    let uncorrected = mean_bpd(&plain, &test, progress)?;
    // The figure to choose a range method by, without looking at the test set.
    let validation = mean_bpd(&engine, &split.validation, progress)?;
    let FamilyCard::Flow(f) = &mut card.family else { bail!("{}: not a flow", dir.display()) };
    f.int8 = Some(FlowInt8Card {
        file: FILE.into(),
        bytes: bytes.len() as u64,
        couplings: couplings.len(),
        arena_bytes: engine.arena_len() as u64,
        scratch_bytes: 4 * engine.scratch_len() as u64,
        weights_bytes: (0..couplings.len()).filter_map(|k| engine.network(k)).map(|n| n.model().data_len() as u64).sum(),
        test_images: test.len(),
        test_bpd_centre_f32: r4(f32_bpd),
        test_bpd_centre_int8: r4(int8_bpd),
        test_bpd_centre_int8_without_bias_correction: Some(r4(uncorrected)),
        val_bpd_centre_int8: Some(r4(validation)),
        precision: "each coupling's network int8 (TFLite scheme, ranges as calibration.json says; masked values quantized by its first op, raw log-scale and shift written as f32); the logit transform, tanh, exp, the affine update, the log-determinant and the Gaussian's log-density in f32 (libm, sums in f64): edgegen_runtime::flow".into(),
        calibration: "calibration.json".into(),
    });
    card.write(dir)
}

/// Calibration inputs the bias correction averages over.
const BIAS_INPUTS: usize = 256;

/// The graph with its last layer's bias corrected by the mean error, per output channel,
/// of the compiled network `file` against the f32 graph on the first [`BIAS_INPUTS`]
/// inputs, over the values the coupling transforms (the outputs at kept values are not
/// used); and those shifts.
fn bias_corrected(part: &Part, file: &[u8], inputs: &[Vec<f32>]) -> Result<(Graph, Vec<f32>)> {
    let graph = &part.graph;
    let [c, h, w] = part.dims;
    let free: Vec<bool> = (0..c)
        .flat_map(|ch| (0..h).flat_map(move |y| (0..w).map(move |x| (ch, y, x))))
        .map(|(ch, y, x)| !part.mask.keeps(ch, c, y, x))
        .collect();
    let model = edgegen_runtime::model::Model::from_bytes(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let net = edgegen_runtime::interpreter::Interpreter::new(model, Kernels::Optimized);
    let out_len = model.tensor(model.outputs()[0] as usize).len();
    let inputs = &inputs[..inputs.len().min(BIAS_INPUTS)];
    let errors = crate::parallel::map(inputs.len(), |i| -> Result<Vec<f64>> {
        let mut arena = vec![0u8; net.arena_len()];
        net.set_input_f32(&mut arena, &inputs[i])?;
        net.invoke(&mut arena)?;
        let mut q = vec![0f32; out_len];
        net.output_f32(&arena, 0, &mut q)?;
        let f = graph.eval(&inputs[i]);
        Ok(q.iter().zip(&f[&graph.outputs[0]]).map(|(&a, &b)| a as f64 - b as f64).collect())
    });
    // Output channel o (ŝ of channel o, or t of channel o − C) is used where channel o mod C
    // is transformed.
    let n = free.len();
    let (mut sum, mut count) = (vec![0f64; 2 * c], vec![0usize; 2 * c]);
    for e in errors {
        for (i, v) in e?.into_iter().enumerate() {
            if free[i % n] {
                sum[i / (h * w)] += v;
                count[i / (h * w)] += 1;
            }
        }
    }
    let mut g = graph.clone();
    let Some(super::graph::Node::Conv { b, .. }) = g.nodes.last_mut() else { bail!("a coupling's network ends in a convolution") };
    ensure!(b.len() == 2 * c && out_len == 2 * n, "a coupling's network must output [2C, H, W]");
    let shift: Vec<f32> = (0..2 * c).map(|o| if count[o] == 0 { 0.0 } else { (sum[o] / count[o] as f64) as f32 }).collect();
    for (bv, s) in b.iter_mut().zip(&shift) {
        *bv -= s;
    }
    Ok((g, shift))
}

/// Mean bits/dim at the bin centre of a flow over `test`.
fn mean_bpd(engine: &flow::Flow, test: &Images, progress: bool) -> Result<f64> {
    let bar = crate::progress::bar(progress, test.len() as u64, "bits/dim int8");
    let lp = crate::parallel::map(test.len(), |i| {
        let mut arena = vec![0u8; engine.arena_len()];
        let mut scratch = vec![0f32; engine.scratch_len()];
        bar.inc(1);
        engine.log_prob(&mut arena, &mut scratch, test.image(i)).map_err(|e| anyhow::anyhow!("{e}"))
    });
    crate::progress::finish(&bar);
    Ok(crate::families::vae::eval::mean_bpd(&lp.into_iter().collect::<Result<Vec<_>>>()?, test.values()))
}

/// Mean bits/dim at the bin centre over `test`: the f32 density (tract on `density.onnx`)
/// and the int8 flow.
fn compare(dir: &Path, engine: &flow::Flow, test: &Images, progress: bool) -> Result<(f64, f64)> {
    let onnx = edgegen_runtime::onnx::OnnxFlow::load(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bar = crate::progress::bar(progress, test.len() as u64, "bits/dim f32");
    let lp = crate::parallel::map(test.len(), |i| {
        bar.inc(1);
        onnx.log_prob(test.image(i)).map_err(|e| anyhow::anyhow!("{e}"))
    });
    crate::progress::finish(&bar);
    let f32_bpd = crate::families::vae::eval::mean_bpd(&lp.into_iter().collect::<Result<Vec<_>>>()?, test.values());
    Ok((f32_bpd, mean_bpd(engine, test, progress)?))
}

/// `edgegen inspect` of a flow file: its geometry and arena, and per coupling the mask, the
/// maps, the log-scale bounds and the network (bytes, ops, arena).
pub fn describe(path: &Path, bytes: &[u8]) -> Result<String> {
    use std::fmt::Write;
    let f = flow::Flow::from_bytes(bytes, Kernels::Optimized).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let g = f.geometry();
    let pre = f.pre();
    let mut s = String::new();
    writeln!(s, "{}: edgegen flow file v{}, {} bytes", path.display(), flow::VERSION, bytes.len())?;
    writeln!(
        s,
        "frames {g} (HxWxC)  couplings {} ({pre} before the squeeze)  arena {} bytes  f32 scratch {} bytes",
        f.couplings(),
        f.arena_len(),
        4 * f.scratch_len()
    )?;
    for k in 0..f.couplings() {
        let Some(net) = f.network(k) else { continue };
        let m = net.model();
        let [c, h, w] = flow::stage_dims(g, pre, k);
        let scales: Vec<String> = (0..c).map(|ch| format!("{:.3}", f.scale(k, ch))).collect();
        writeln!(
            s,
            "  coupling {k}: {} mask on {c}x{h}x{w}  scales [{}]  network {} bytes, {} ops, arena {} bytes",
            f.mask(k).map_or_else(|| "?".to_string(), |m| format!("{m:?}")),
            scales.join(", "),
            m.bytes().len(),
            m.op_count(),
            m.arena_len()
        )?;
    }
    Ok(s)
}
