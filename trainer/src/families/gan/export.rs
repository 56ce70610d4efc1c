//! GAN export: `generator.onnx` (BatchNorm folded into the preceding layers, so the file is
//! plain Gemm/ConvTranspose/Relu/Tanh), `discriminator.onnx`, golden vectors, `samples.png`
//! and `card.json` with Fréchet distances.

use super::model::{Discriminator, Gan, Generator};
use super::training::generate;
use crate::export::card::{card_name, file_entry, r4, Card, FamilyCard, GanCard};
use crate::export::onnx::{Attr, GraphBuilder};
use crate::families::loss::to_vec;
use anyhow::Result;
use burn::module::Module;
use burn::nn::conv::ConvTranspose2d;
use burn::nn::BatchNorm;
use burn::prelude::*;
use serde_json::json;
use std::path::Path;
use tract_onnx::pb::ModelProto;

/// Per-channel (scale, shift) of a BatchNorm in inference mode.
fn bn_affine(bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
    let gamma = to_vec(bn.gamma.val());
    let beta = to_vec(bn.beta.val());
    let mean = to_vec(bn.running_mean.value());
    let var = to_vec(bn.running_var.value());
    let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + bn.epsilon as f32).sqrt()).collect();
    let shift = beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    (scale, shift)
}

/// Folds the inference-mode BatchNorm `bn` into a transposed convolution's weights
/// `[c_in, c_out, kh, kw]` and bias.
fn fold_deconv(deconv: &ConvTranspose2d, bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
    let [c_in, c_out, kh, kw] = deconv.weight.dims();
    let (s, t) = bn_affine(bn);
    let mut w = to_vec(deconv.weight.val());
    let mut b = to_vec(deconv.bias.as_ref().expect("bias").val());
    for ci in 0..c_in {
        for co in 0..c_out {
            for k in 0..kh * kw {
                w[(ci * c_out + co) * kh * kw + k] *= s[co];
            }
        }
    }
    for co in 0..c_out {
        b[co] = b[co] * s[co] + t[co];
    }
    (w, b)
}

/// The generator's layers as exported, BatchNorm folded in: (fc W [in,out], fc b),
/// (deconv1 W, b), (deconv2 W, b) and, with a fine stage, (conv3 W, b).
pub struct Folded {
    /// Dense layer.
    pub fc: (Vec<f32>, Vec<f32>),
    /// 7×7 → 14×14 transposed convolution.
    pub deconv1: (Vec<f32>, Vec<f32>),
    /// 14×14 → 28×28 transposed convolution.
    pub deconv2: (Vec<f32>, Vec<f32>),
    /// The fine stage's 3×3 convolution.
    pub conv3: Option<(Vec<f32>, Vec<f32>)>,
}

impl Folded {
    /// Floats in the exported weights and biases.
    pub fn params(&self) -> usize {
        let n = |(w, b): &(Vec<f32>, Vec<f32>)| w.len() + b.len();
        n(&self.fc) + n(&self.deconv1) + n(&self.deconv2) + self.conv3.as_ref().map_or(0, n)
    }
}

/// The generator's layers with BatchNorm folded into the layer before each.
pub fn folded_generator(g: &Generator) -> Folded {
    let [d_in, d_out] = g.fc.weight.dims();
    let (s0, t0) = bn_affine(&g.bn0);
    let mut w = to_vec(g.fc.weight.val());
    let mut b = to_vec(g.fc.bias.as_ref().expect("bias").val());
    for j in 0..d_out {
        let c = j / 49;
        for i in 0..d_in {
            w[i * d_out + j] *= s0[c];
        }
        b[j] = b[j] * s0[c] + t0[c];
    }
    let plain = |c: &ConvTranspose2d| (to_vec(c.weight.val()), to_vec(c.bias.as_ref().expect("bias").val()));
    Folded {
        fc: (w, b),
        deconv1: fold_deconv(&g.deconv1, &g.bn1),
        deconv2: match &g.fine {
            Some(fine) => fold_deconv(&g.deconv2, &fine.bn2),
            None => plain(&g.deconv2),
        },
        conv3: g.fine.as_ref().map(|f| (to_vec(f.conv3.weight.val()), to_vec(f.conv3.bias.as_ref().expect("bias").val()))),
    }
}

/// The generator as ONNX: `z [1,L]` → `image [1,1,28,28]` on the network scale (-1..1).
pub fn generator_onnx(g: &Generator) -> ModelProto {
    let g = g.valid();
    let latent = g.latent();
    let [_, flat] = g.fc.weight.dims();
    let f = folded_generator(&g);
    let mut gb = GraphBuilder::new();
    gb.input("z", &[1, latent]);
    let h = gb.dense("z", "fc", &f.fc.0, &f.fc.1, latent, flat, None);
    let h = gb.reshape(&h, &[1, (flat / 49) as i64, 7, 7]);
    let h = gb.relu(&h);
    let h = gb.conv_transpose(&h, "deconv1", &f.deconv1.0, &f.deconv1.1, g.deconv1.weight.dims(), 2, 1, None);
    let h = gb.relu(&h);
    let mut h = gb.conv_transpose(&h, "deconv2", &f.deconv2.0, &f.deconv2.1, g.deconv2.weight.dims(), 2, 1, None);
    if let (Some(fine), Some((w3, b3))) = (&g.fine, &f.conv3) {
        h = gb.relu(&h);
        h = gb.conv(&h, "conv3", w3, b3, fine.conv3.weight.dims(), 1, 1, None);
    }
    gb.node("Tanh", &[&h], Some("image"), &[]);
    gb.output("image", &[1, 1, 28, 28]);
    let layers = if g.fine.is_some() { "Gemm, ConvTranspose and ConvTranspose" } else { "Gemm and ConvTranspose" };
    gb.finish(
        "dcgan_generator",
        &format!("edgegen DCGAN generator. Input z: float32 [1,{latent}], z ~ N(0, I). Output image: [1,1,28,28] in (-1,1); pixel = round((v+1)*127.5). BatchNorm folded into {layers}."),
        &[("family", "gan-generator".into())],
    )
}

/// The discriminator as ONNX: `image [1,1,28,28]` → `logit [1,1]`.
pub fn discriminator_onnx(d: &Discriminator) -> ModelProto {
    let mut g = GraphBuilder::new();
    g.input("image", &[1, 1, 28, 28]);
    let mut h = "image".to_string();
    for (name, c) in [("conv1", &d.conv1), ("conv2", &d.conv2)].into_iter().chain(d.conv3.as_ref().map(|c| ("conv3", c))) {
        let w = to_vec(c.weight.val());
        let b = to_vec(c.bias.as_ref().expect("bias").val());
        h = g.conv(&h, name, &w, &b, c.weight.dims(), 2, 1, None);
        h = g.node("LeakyRelu", &[&h], None, &[("alpha", Attr::Float(0.2))]);
    }
    let [i, o] = d.fc.weight.dims();
    let h = g.reshape(&h, &[1, i as i64]);
    g.dense(&h, "fc", &to_vec(d.fc.weight.val()), &to_vec(d.fc.bias.as_ref().expect("bias").val()), i, o, Some("logit"));
    g.output("logit", &[1, 1]);
    g.finish(
        "dcgan_discriminator",
        "edgegen DCGAN discriminator. Input image: float32 [1,1,28,28], x/127.5-1. Output: realness logit [1,1].",
        &[("family", "gan-discriminator".into())],
    )
}

/// Parameters of the generator as exported: BatchNorm folded away into the layer before it.
pub fn exported_params(g: &Generator) -> usize {
    folded_generator(g).params()
}

/// Golden vectors for both networks (trainer's forward pass).
pub fn write_golden(gan: &Gan, dir: &Path) -> Result<()> {
    let g = gan.generator.valid();
    let latent = g.latent();
    let device = Device::flex();
    for i in 0..3u64 {
        let mut z = vec![0f32; latent];
        edgegen_runtime::rng::Rng::new(1000 + i).fill_normal(&mut z);
        let img = to_vec(g.forward(Tensor::from_data(TensorData::new(z.clone(), [1, latent]), &device)));
        let set = dir.join("golden/generator").join(format!("test_data_set_{i}"));
        crate::export::onnx::save_tensor(&set.join("input_0.pb"), "z", &[1, latent], &z)?;
        crate::export::onnx::save_tensor(&set.join("output_0.pb"), "image", &[1, 1, 28, 28], &img)?;
        let logit = to_vec(gan.discriminator.valid().forward(Tensor::from_data(TensorData::new(img.clone(), [1, 1, 28, 28]), &device)));
        let set = dir.join("golden/discriminator").join(format!("test_data_set_{i}"));
        crate::export::onnx::save_tensor(&set.join("input_0.pb"), "image", &[1, 1, 28, 28], &img)?;
        crate::export::onnx::save_tensor(&set.join("output_0.pb"), "logit", &[1, 1], &logit)?;
    }
    Ok(())
}

/// Publishes the GAN into `dir` and returns its FD figures.
/// `fd_last`: the last iterate's FD when `gan` holds the averaged generator; `weights` says
/// which weights these are (the card's `generator_weights`).
pub fn publish(
    gan: &Gan,
    state: &crate::families::checkpoint::TrainState,
    command: &str,
    train_config: Option<serde_json::Value>,
    dir: &Path,
    fd: &crate::eval::fd::FdReport,
    fd_last: Option<f64>,
    weights: &str,
    dataset: &str,
) -> Result<()> {
    crate::export::onnx::save(&generator_onnx(&gan.generator), &dir.join("generator.onnx"))?;
    crate::export::onnx::save(&discriminator_onnx(&gan.discriminator), &dir.join("discriminator.onnx"))?;
    write_golden(gan, dir)?;
    let seeds: Vec<u64> = (0..64).collect();
    crate::data::imageio::write_frame_grid(&dir.join("samples.png"), &generate(gan, &seeds), crate::data::FASHION_MNIST, 8, 2)?;
    let g = gan.generator.valid();
    let latent = g.latent();
    let card = Card {
        name: card_name(dir, "gan-fmnist"),
        family: FamilyCard::Gan(GanCard {
            latent_dim: latent,
            params_discriminator: gan.discriminator.num_params() as u64,
            params_note: "generator as exported (BatchNorm folded); the discriminator is not shipped to devices".into(),
            fd: r4(fd.gan),
            fd_floor: r4(fd.floor),
            fd_ratio: r4(fd.gan / fd.floor),
            vae_fd: r4(fd.vae),
            fd_samples: Some(fd.samples),
            fd_note: fd.note.clone(),
            fd_last_iterate: fd_last.map(r4),
            generator_weights: weights.to_string(),
            fd_int8: None,
        }),
        dataset: dataset.to_string(),
        params: exported_params(&g) as u64,
        macs: g.macs() as u64,
        files: [
            ("generator", file_entry(dir, "generator.onnx")),
            ("discriminator", file_entry(dir, "discriminator.onnx")),
            ("golden", json!("golden/{generator,discriminator}/test_data_set_N/{input_0,output_0}.pb (ONNX TensorProto)")),
            ("samples", json!("samples.png")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        inputs: json!({"generator": [{"name": "z", "shape": [1, latent], "dtype": "float32", "meaning": "noise, z ~ N(0, I); the runtime draws it from Rng::new(seed)"}]}),
        outputs: json!({"generator": [{"name": "image", "shape": [1, 1, 28, 28], "meaning": "image on the network scale (-1..1); pixel = round((v+1)*127.5)"}]}),
        run: crate::export::card::RunRecord::of(state, ["d_loss", "g_loss"], command, train_config),
        role: None,
        device: Default::default(),
        data: None,
        geometry: Some(crate::export::card::GeometryCard::of(crate::data::FASHION_MNIST)),
    };
    card.write(dir)
}
