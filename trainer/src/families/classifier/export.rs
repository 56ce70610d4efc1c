//! Classifier export: `classifier.onnx`, golden vectors and `card.json`.

use super::model::Classifier;
use crate::data::{self, Images};
use crate::export::onnx::GraphBuilder;
use crate::families::loss::{frames_to_tensor, to_vec};
use anyhow::Result;
use burn::prelude::*;
use edgegen_runtime::image::Geometry;
use serde_json::json;
use std::path::Path;
use tract_onnx::pb::ModelProto;

/// The frames a classifier takes.
pub fn geometry_of(model: &Classifier) -> Geometry {
    let [c, h, w] = model.geometry;
    Geometry { channels: c as u16, height: h as u16, width: w as u16 }
}

/// The classifier as ONNX: `image [1,C,H,W]` → `logits [1,classes]`.
pub fn classifier_onnx(model: &Classifier) -> ModelProto {
    let [c, h, w] = model.geometry;
    let mut g = GraphBuilder::new();
    g.input("image", &[1, c, h, w]);
    let mut x = "image".to_string();
    for (i, conv) in model.convs.iter().enumerate() {
        let d = conv.weight.dims();
        let (wt, b) = (to_vec(conv.weight.val()), to_vec(conv.bias.as_ref().expect("conv has bias").val()));
        let y = g.conv(&x, &format!("conv{}", i + 1), &wt, &b, d, conv.stride[0], 1, None);
        x = g.relu(&y);
    }
    let s = model.convs.len() - 1;
    let width = model.convs[0].weight.dims()[0];
    let x = g.reshape(&x, &[1, (width * (h >> s) * (w >> s)) as i64]);
    let dense = |g: &mut GraphBuilder, x: &str, l: &burn::nn::Linear, name: &str, out: Option<&str>| {
        let [i, o] = l.weight.dims();
        g.dense(x, name, &to_vec(l.weight.val()), &to_vec(l.bias.as_ref().expect("linear has bias").val()), i, o, out)
    };
    let f = dense(&mut g, &x, &model.fc, "fc", None);
    let f = g.relu(&f);
    dense(&mut g, &f, &model.out, "out", Some("logits"));
    g.output("logits", &[1, model.classes()]);
    g.finish(
        "classifier",
        &format!("edgegen classifier. image: float32 [1,{c},{h},{w}], planar, 8-bit value x mapped to x/127.5-1. Output logits: [1,{}] class scores (softmax gives p(y|x)).", model.classes()),
        &[("family", "classifier".into()), ("image_geometry", format!("{c}x{h}x{w}"))],
    )
}

/// Class logits of `images` through the float model (batches of 500).
pub fn logits(model: &Classifier, images: &Images) -> Result<Vec<f32>> {
    let model = model.valid();
    let g = images.geometry()?;
    let (n, values) = (images.len(), images.values());
    let mut out = Vec::with_capacity(n * model.classes());
    for start in (0..n).step_by(500) {
        let b = (n - start).min(500);
        out.extend(to_vec(model.forward(frames_to_tensor(
            &images.pixels[start * values..(start + b) * values],
            b,
            g,
            &crate::device::of(&model),
        ))));
    }
    Ok(out)
}

/// Golden vectors in the ONNX test-data layout: `golden/classifier/test_data_set_N/`.
pub fn write_golden(model: &Classifier, images: &Images, dir: &Path) -> Result<()> {
    let [c, h, w] = model.geometry;
    let k = model.classes();
    let out = logits(model, images)?;
    for i in 0..images.len() {
        let set = dir.join("golden").join("classifier").join(format!("test_data_set_{i}"));
        let x: Vec<f32> = images.image(i).iter().map(|&p| edgegen_runtime::image::scale_pixel(p)).collect();
        crate::export::onnx::save_tensor(&set.join("input_0.pb"), "image", &[1, c, h, w], &x)?;
        crate::export::onnx::save_tensor(&set.join("output_0.pb"), "logits", &[1, k], &out[i * k..(i + 1) * k])?;
    }
    Ok(())
}

/// Multiply-accumulates per image.
pub fn macs(model: &Classifier) -> u64 {
    let [_, h, w] = model.geometry;
    let mut total = 0u64;
    let (mut hh, mut ww) = (h, w);
    for (i, conv) in model.convs.iter().enumerate() {
        let [o, ci, kh, kw] = conv.weight.dims();
        if i > 0 {
            (hh, ww) = (hh / 2, ww / 2);
        }
        total += (o * ci * kh * kw * hh * ww) as u64;
    }
    for l in [&model.fc, &model.out] {
        let [i, o] = l.weight.dims();
        total += (i * o) as u64;
    }
    total
}

/// Writes `card.json`.
#[allow(clippy::too_many_arguments)]
pub fn write_card(
    model: &Classifier,
    test_accuracy: f64,
    test_images: usize,
    state: &crate::families::checkpoint::TrainState,
    train_command: &str,
    train_config: Option<serde_json::Value>,
    dataset: &str,
    source: &data::Source,
    dir: &Path,
) -> Result<()> {
    use crate::export::card::{r4, Card, ClassifierCard, FamilyCard};
    let geo = geometry_of(model);
    let [c, h, w] = model.geometry;
    let k = model.classes();
    let names: Vec<String> = if source.is_fashion_mnist() && k == 10 {
        crate::eval::fd::CLASSES.iter().map(|s| s.to_string()).collect()
    } else {
        (0..k).map(|i| i.to_string()).collect()
    };
    let card = Card {
        name: crate::export::card::card_name(dir, "classifier-fmnist"),
        family: FamilyCard::Classifier(ClassifierCard {
            classes: names,
            features: model.fc.weight.dims()[1],
            test_accuracy: r4(test_accuracy),
            test_images,
            test_accuracy_int8: None,
        }),
        dataset: dataset.to_string(),
        params: model.num_params() as u64,
        macs: macs(model),
        files: [
            (
                "classifier",
                json!({"path": "classifier.onnx", "bytes": std::fs::metadata(dir.join("classifier.onnx")).map(|m| m.len()).unwrap_or(0)}),
            ),
            ("golden", json!("golden/classifier/test_data_set_N/{input_0,output_0}.pb (ONNX TensorProto)")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        inputs: json!({"classifier": [{"name": "image", "shape": [1, c, h, w], "dtype": "float32", "meaning": "8-bit frame x as x/127.5-1, planar"}]}),
        outputs: json!({"classifier": [{"name": "logits", "shape": [1, k], "meaning": "class scores; softmax gives p(y|x)"}]}),
        run: crate::export::card::RunRecord::of(state, ["train_cross_entropy", "val_accuracy"], train_command, train_config),
        role: None,
        device: Default::default(),
        data: (!source.is_fashion_mnist()).then(|| source.clone()),
        geometry: Some(crate::export::card::GeometryCard::of(geo)),
    };
    card.write(dir)
}
