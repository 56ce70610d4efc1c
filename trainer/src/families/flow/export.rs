//! Flow export: `density.onnx` (image → latent `z` and `log_prob`) and `sampler.onnx`
//! (latent → dequantized values `v` in [0, 1], whose bin `⌊256 v⌋` is the pixel), both plain
//! standard ONNX (Conv, Relu, Tanh, Exp, Mul, Add, Sub, Slice, Reshape, Transpose, Log,
//! Sigmoid, ReduceSum), golden vectors, `samples.png` and `card.json`.
//!
//! The density graph dequantizes at the bin centre (`u = ½`): a deterministic point of the
//! dequantized density, where the trainer's published bits/dim average one uniform `u` per
//! value (the bound). Both are stated in the card.

use super::model::{Coupling, Flow, Mask, ALPHA};
use crate::export::card::{card_name, file_entry, r4, Card, FamilyCard, FlowCard};
use crate::export::onnx::{Attr, GraphBuilder};
use crate::families::loss::to_vec;
use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use serde_json::json;
use std::path::Path;
use tract_onnx::pb::ModelProto;

/// A coupling's constants in the exported graph: `scale ⊙ (1 − mask)` (the bound of the
/// log-scale, zero where the mask keeps values) and `1 − mask`, both `[1, C, H, W]`.
fn coupling_consts(c: &Coupling, dims: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
    let [ch, h, w] = dims;
    let keep = Mask::from_code(c.mask).values(ch, h, w);
    let scale = to_vec(c.scale.val());
    let free: Vec<f32> = keep.iter().map(|k| 1.0 - k).collect();
    let bounded = free.iter().enumerate().map(|(i, f)| f * scale[i / (h * w)]).collect();
    (bounded, free)
}

/// `(s, t)` of coupling `i` on `h` (`[1, C, H, W]`, dims `dims`) as graph nodes.
fn scale_shift(g: &mut GraphBuilder, c: &Coupling, i: usize, h: &str, dims: [usize; 3]) -> (String, String) {
    let [ch, hh, ww] = dims;
    let (bounded, free) = coupling_consts(c, dims);
    let keep: Vec<f32> = free.iter().map(|f| 1.0 - f).collect();
    let keep = g.weight(&format!("c{i}.keep"), &[1, ch, hh, ww], &keep);
    let conv = |g: &mut GraphBuilder, x: &str, name: &str, conv: &burn::nn::conv::Conv2d| {
        let w = to_vec(conv.weight.val());
        let b = to_vec(conv.bias.as_ref().expect("bias").val());
        let dims = conv.weight.dims();
        g.conv(x, name, &w, &b, dims, 1, 1, None)
    };
    let xm = g.node("Mul", &[h, &keep], None, &[]);
    let a = conv(g, &xm, &format!("c{i}.input"), &c.input);
    let mut a = g.relu(&a);
    for (j, block) in c.blocks.iter().enumerate() {
        let r = conv(g, &a, &format!("c{i}.block{j}"), block);
        let r = g.relu(&r);
        a = g.node("Add", &[&a, &r], None, &[]);
    }
    let out = conv(g, &a, &format!("c{i}.output"), &c.output);
    let slice = |g: &mut GraphBuilder, from: usize, name: &str| {
        let starts = g.int64s(&format!("c{i}.{name}.starts"), &[from as i64]);
        let ends = g.int64s(&format!("c{i}.{name}.ends"), &[(from + ch) as i64]);
        let axes = g.int64s(&format!("c{i}.{name}.axes"), &[1]);
        g.node("Slice", &[&out, &starts, &ends, &axes], None, &[])
    };
    let (raw_s, raw_t) = (slice(g, 0, "s"), slice(g, ch, "t"));
    let bounded = g.weight(&format!("c{i}.scale"), &[1, ch, hh, ww], &bounded);
    let free = g.weight(&format!("c{i}.free"), &[1, ch, hh, ww], &free);
    let tanh = g.node("Tanh", &[&raw_s], None, &[]);
    let s = g.node("Mul", &[&tanh, &bounded], None, &[]);
    let t = g.node("Mul", &[&raw_t, &free], None, &[]);
    (s, t)
}

/// Sum of every value of `x` as a `[1]` tensor.
fn sum_all(g: &mut GraphBuilder, x: &str) -> String {
    let s = g.node("ReduceSum", &[x], None, &[("keepdims", Attr::Int(0))]);
    g.reshape(&s, &[1])
}

/// The maps' `[C, H, W]` before and after the squeeze.
fn stage_dims(flow: &Flow) -> ([usize; 3], [usize; 3]) {
    let [c, h, w] = flow.geometry();
    ([c, h, w], [4 * c, h / 2, w / 2])
}

/// The density graph: `image [1,C,H,W]` on the network scale (`p/127.5 − 1`) → `z`
/// `[1,4C,H/2,W/2]` and `log_prob [1]` (nats, dequantized at the bin centre).
pub fn density_onnx(flow: &Flow) -> ModelProto {
    let (full, half) = stage_dims(flow);
    let [c, h, w] = full;
    let d = (c * h * w) as f64;
    let mut g = GraphBuilder::new();
    g.input("image", &[1, c, h, w]);
    // v = (p + ½)/256 with p = 127.5 (x + 1): v = x · 127.5/256 + 128/256.
    let a = g.weight("dequant.scale", &[1], &[(127.5 / 256.0 * (1.0 - 2.0 * ALPHA)) as f32]);
    let b = g.weight("dequant.shift", &[1], &[(128.0 / 256.0 * (1.0 - 2.0 * ALPHA) + ALPHA) as f32]);
    let wv = g.node("Mul", &["image", &a], None, &[]);
    let wv = g.node("Add", &[&wv, &b], None, &[]);
    let one = g.weight("one", &[1], &[1.0]);
    let lw = g.node("Log", &[&wv], None, &[]);
    let omw = g.node("Sub", &[&one, &wv], None, &[]);
    let l1w = g.node("Log", &[&omw], None, &[]);
    let mut h_ = g.node("Sub", &[&lw, &l1w], None, &[]);
    let both = g.node("Add", &[&lw, &l1w], None, &[]);
    let pre = sum_all(&mut g, &both);
    let mut logdets = vec![pre];
    for (i, cp) in flow.pre.iter().enumerate() {
        let (s, t) = scale_shift(&mut g, cp, i, &h_, full);
        let e = g.node("Exp", &[&s], None, &[]);
        let m = g.node("Mul", &[&h_, &e], None, &[]);
        h_ = g.node("Add", &[&m, &t], None, &[]);
        logdets.push(sum_all(&mut g, &s));
    }
    h_ = g.reshape(&h_, &[1, c as i64, (h / 2) as i64, 2, (w / 2) as i64, 2]);
    h_ = g.node("Transpose", &[&h_], None, &[("perm", Attr::Ints(vec![0, 1, 3, 5, 2, 4]))]);
    h_ = g.reshape(&h_, &[1, (4 * c) as i64, (h / 2) as i64, (w / 2) as i64]);
    let base = flow.pre.len();
    for (i, cp) in flow.post.iter().enumerate() {
        let (s, t) = scale_shift(&mut g, cp, base + i, &h_, half);
        let e = g.node("Exp", &[&s], None, &[]);
        let m = g.node("Mul", &[&h_, &e], None, &[]);
        let out = (i + 1 == flow.post.len()).then_some("z");
        h_ = g.node("Add", &[&m, &t], out, &[]);
        logdets.push(sum_all(&mut g, &s));
    }
    if flow.post.is_empty() {
        h_ = g.node("Identity", &[&h_], Some("z"), &[]);
    }
    // log p = −½ Σ z² − (D/2) ln 2π + Σ log-dets − Σ (ln w + ln(1 − w)) + D (ln(1 − 2α) − ln 256).
    let sq = g.node("Mul", &[&h_, &h_], None, &[]);
    let sq = sum_all(&mut g, &sq);
    let minus_half = g.weight("minus_half", &[1], &[-0.5]);
    let mut total = g.node("Mul", &[&sq, &minus_half], None, &[]);
    let pre_sum = logdets.remove(0);
    total = g.node("Sub", &[&total, &pre_sum], None, &[]);
    for l in &logdets {
        total = g.node("Add", &[&total, l], None, &[]);
    }
    let constant = d * ((1.0 - 2.0 * ALPHA).ln() - 256f64.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln());
    let k = g.weight("constant", &[1], &[constant as f32]);
    g.node("Add", &[&total, &k], Some("log_prob"), &[]);
    g.output("z", &[1, half[0], half[1], half[2]]);
    g.output("log_prob", &[1]);
    g.finish(
        "realnvp_density",
        &format!(
            "edgegen RealNVP density. Input image: float32 [1,{c},{h},{w}], x/127.5-1. Outputs: z [1,{},{},{}] (standard normal under the model) and log_prob [1]: log p in nats of the image dequantized at the bin centre, v = (p + 1/2)/256 (the density of v times 256^-D).",
            half[0], half[1], half[2]
        ),
        &[("family", "flow-density".into())],
    )
}

/// The sampler graph: `z [1,4C,H/2,W/2]` → `v [1,C,H,W]` in [0, 1]; the pixel is
/// `min(⌊256 v⌋, 255)`.
pub fn sampler_onnx(flow: &Flow) -> ModelProto {
    let (full, half) = stage_dims(flow);
    let [c, h, w] = full;
    let mut g = GraphBuilder::new();
    g.input("z", &[1, half[0], half[1], half[2]]);
    let mut h_ = "z".to_string();
    let base = flow.pre.len();
    let inverse = |g: &mut GraphBuilder, cp: &Coupling, i: usize, h_: &str, dims: [usize; 3]| {
        let (s, t) = scale_shift(g, cp, i, h_, dims);
        let d = g.node("Sub", &[h_, &t], None, &[]);
        let ns = g.node("Neg", &[&s], None, &[]);
        let e = g.node("Exp", &[&ns], None, &[]);
        g.node("Mul", &[&d, &e], None, &[])
    };
    for (i, cp) in flow.post.iter().enumerate().rev() {
        h_ = inverse(&mut g, cp, base + i, &h_, half);
    }
    h_ = g.reshape(&h_, &[1, c as i64, 2, 2, (h / 2) as i64, (w / 2) as i64]);
    h_ = g.node("Transpose", &[&h_], None, &[("perm", Attr::Ints(vec![0, 1, 4, 2, 5, 3]))]);
    h_ = g.reshape(&h_, &[1, c as i64, h as i64, w as i64]);
    for (i, cp) in flow.pre.iter().enumerate().rev() {
        h_ = inverse(&mut g, cp, i, &h_, full);
    }
    let sig = g.node("Sigmoid", &[&h_], None, &[]);
    let alpha = g.weight("alpha", &[1], &[ALPHA as f32]);
    let inv = g.weight("inv_range", &[1], &[(1.0 / (1.0 - 2.0 * ALPHA)) as f32]);
    let v = g.node("Sub", &[&sig, &alpha], None, &[]);
    g.node("Mul", &[&v, &inv], Some("v"), &[]);
    g.output("v", &[1, c, h, w]);
    g.finish(
        "realnvp_sampler",
        &format!(
            "edgegen RealNVP sampler. Input z: float32 [1,{},{},{}], z ~ N(0, I). Output v: [1,{c},{h},{w}], the dequantized value in [0,1]; pixel = min(floor(256 v), 255).",
            half[0], half[1], half[2]
        ),
        &[("family", "flow-sampler".into())],
    )
}

/// The density's `z` and `log_prob` of `image` (network scale) by the trainer at the bin
/// centre: what `density.onnx` computes.
pub fn density_reference(flow: &Flow, image: &[f32]) -> (Vec<f32>, f32) {
    let [c, h, w] = flow.geometry();
    let device = crate::device::of(flow);
    let x = Tensor::<4>::from_data(TensorData::new(image.to_vec(), [1, c, h, w]), &device);
    let u = Tensor::<4>::full([1, c, h, w], 0.5, &device);
    let lp = to_vec(flow.log_prob(x.clone(), u.clone()))[0];
    let (y, _) = flow.dequantize(x, u);
    (to_vec(flow.forward(y).0), lp)
}

/// The sampler's `v` for latent `z` by the trainer.
pub fn sampler_reference(flow: &Flow, z: &[f32]) -> Vec<f32> {
    let device = crate::device::of(flow);
    let zt = Tensor::<4>::from_data(TensorData::new(z.to_vec(), flow.latent_dims(1)), &device);
    let y = flow.inverse(zt);
    to_vec(burn::tensor::activation::sigmoid(y).sub_scalar(ALPHA).div_scalar(1.0 - 2.0 * ALPHA))
}

/// Golden vectors for both graphs: three test images through the density, three latents
/// (`Rng::new(1000 + i)`) through the sampler.
pub fn write_golden(flow: &Flow, dir: &Path, images: &crate::data::Images) -> Result<()> {
    let [c, h, w] = flow.geometry();
    let zdims = flow.latent_dims(1);
    for i in 0..3usize.min(images.len()) {
        let x: Vec<f32> = images.image(i).iter().map(|&p| edgegen_runtime::image::scale_pixel(p)).collect();
        let (z, lp) = density_reference(flow, &x);
        let set = dir.join("golden/density").join(format!("test_data_set_{i}"));
        crate::export::onnx::save_tensor(&set.join("input_0.pb"), "image", &[1, c, h, w], &x)?;
        crate::export::onnx::save_tensor(&set.join("output_0.pb"), "z", &zdims, &z)?;
        crate::export::onnx::save_tensor(&set.join("output_1.pb"), "log_prob", &[1], &[lp])?;
        let mut z = vec![0f32; zdims.iter().product()];
        edgegen_runtime::rng::Rng::new(1000 + i as u64).fill_normal(&mut z);
        let v = sampler_reference(flow, &z);
        let set = dir.join("golden/sampler").join(format!("test_data_set_{i}"));
        crate::export::onnx::save_tensor(&set.join("input_0.pb"), "z", &zdims, &z)?;
        crate::export::onnx::save_tensor(&set.join("output_0.pb"), "v", &[1, c, h, w], &v)?;
    }
    Ok(())
}

/// Images for `seeds` (one latent per seed from `Rng::new(seed)`, as the runtime draws it).
pub fn generate(flow: &Flow, seeds: &[u64]) -> Vec<u8> {
    let device = crate::device::of(flow);
    let n: usize = flow.latent_dims(1).iter().product();
    let mut out = Vec::new();
    for chunk in seeds.chunks(256) {
        let mut z = vec![0f32; chunk.len() * n];
        for (i, &s) in chunk.iter().enumerate() {
            edgegen_runtime::rng::Rng::new(s).fill_normal(&mut z[i * n..(i + 1) * n]);
        }
        out.extend(flow.sample(Tensor::from_data(TensorData::new(z, flow.latent_dims(chunk.len())), &device)));
    }
    out
}

/// What the published card says besides the model: its figures and data.
pub struct PublishData<'a> {
    /// Test bits/dim (the uniform dequantization bound).
    pub test_bpd: f64,
    /// Test images measured.
    pub test_images: usize,
    /// MNIST bits/dim and digits measured (Fashion-MNIST models).
    pub mnist: Option<(f64, usize)>,
    /// The card's `dataset` line.
    pub dataset: &'a str,
    /// Where the frames came from.
    pub source: &'a crate::data::Source,
    /// Architecture of the run (the config).
    pub architecture: serde_json::Value,
}

/// Publishes the flow into `dir`: both graphs, golden vectors, `samples.png`, `card.json`.
pub fn publish(
    flow: &Flow,
    state: &crate::families::checkpoint::TrainState,
    command: &str,
    train_config: Option<serde_json::Value>,
    dir: &Path,
    test: &crate::data::Images,
    d: &PublishData,
) -> Result<()> {
    let [c, h, w] = flow.geometry();
    crate::export::onnx::save(&density_onnx(flow), &dir.join("density.onnx"))?;
    crate::export::onnx::save(&sampler_onnx(flow), &dir.join("sampler.onnx"))?;
    write_golden(flow, dir, test)?;
    let geo = d.source.geometry();
    let scale = (56 / geo.height.max(geo.width) as usize).max(1);
    crate::data::imageio::write_frame_grid(&dir.join("samples.png"), &generate(flow, &(0..64).collect::<Vec<u64>>()), geo, 8, scale)?;
    let zdims = flow.latent_dims(1);
    let card = Card {
        name: card_name(dir, "flow-fmnist"),
        family: FamilyCard::Flow(FlowCard {
            architecture: d.architecture.clone(),
            test_bpd: r4(d.test_bpd),
            mnist_bpd: d.mnist.map(|m| r4(m.0)),
            test_images: Some(d.test_images),
            mnist_images: d.mnist.map(|m| m.1),
            eval_note: "bits/dim = -(log p(v) - D ln 256)/(D ln 2) of v = (p + u)/256 with one uniform u per value (Rng::with_stream(seed, 0xF10F... + chunk)): the uniform-dequantization bound on the 8-bit image's probability; density.onnx evaluates the same density at the bin centre (u = 1/2)".into(),
            int8: None,
        }),
        dataset: d.dataset.to_string(),
        params: flow.num_params() as u64,
        macs: flow.macs() as u64,
        files: [
            ("density", file_entry(dir, "density.onnx")),
            ("sampler", file_entry(dir, "sampler.onnx")),
            ("golden", json!("golden/{density,sampler}/test_data_set_N/{input_0,output_K}.pb (ONNX TensorProto)")),
            ("samples", json!("samples.png")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        inputs: json!({
            "density": [{"name": "image", "shape": [1, c, h, w], "dtype": "float32", "meaning": "pixels p as p/127.5 - 1"}],
            "sampler": [{"name": "z", "shape": zdims, "dtype": "float32", "meaning": "z ~ N(0, I); the runtime draws it from Rng::new(seed)"}],
        }),
        outputs: json!({
            "density": [
                {"name": "z", "shape": zdims, "meaning": "the latent: standard normal under the model"},
                {"name": "log_prob", "shape": [1], "meaning": "log p in nats of the image dequantized at the bin centre"},
            ],
            "sampler": [{"name": "v", "shape": [1, c, h, w], "meaning": "dequantized value in [0,1]; pixel = min(floor(256 v), 255)"}],
        }),
        run: crate::export::card::RunRecord::of(state, ["train_bpd", "val_bpd"], command, train_config),
        role: None,
        device: Default::default(),
        data: (!d.source.is_fashion_mnist()).then(|| d.source.clone()),
        geometry: Some(crate::export::card::GeometryCard::of(geo)),
    };
    card.write(dir)
}
