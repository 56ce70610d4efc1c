//! GAN export: `generator.onnx` (BatchNorm folded into the preceding layers, so the file is
//! plain Gemm/ConvTranspose/Relu/Tanh), `discriminator.onnx`, golden vectors, `samples.png`
//! and `card.json` with Fréchet distances.

use super::model::{Discriminator, Gan, Generator};
use super::training::{generate, generate_class};
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

/// The generator's layers as exported, BatchNorm folded in: the dense layer, one
/// transposed convolution per stage and, with a fine stage, its 3×3 convolution (each as
/// (weights, bias)).
pub struct Folded {
    /// Dense layer, weights `[in, out]`.
    pub fc: (Vec<f32>, Vec<f32>),
    /// The transposed convolutions, smallest map first.
    pub deconvs: Vec<(Vec<f32>, Vec<f32>)>,
    /// The fine stage's 3×3 convolution.
    pub conv3: Option<(Vec<f32>, Vec<f32>)>,
}

impl Folded {
    /// Floats in the exported weights and biases.
    pub fn params(&self) -> usize {
        let n = |(w, b): &(Vec<f32>, Vec<f32>)| w.len() + b.len();
        n(&self.fc) + self.deconvs.iter().map(n).sum::<usize>() + self.conv3.as_ref().map_or(0, n)
    }
}

/// The generator's layers with BatchNorm folded into the layer before each.
pub fn folded_generator(g: &Generator) -> Folded {
    let [d_in, d_out] = g.fc.weight.dims();
    let (bh, bw) = g.base();
    let (s0, t0) = bn_affine(&g.norms[0]);
    let mut w = to_vec(g.fc.weight.val());
    let mut b = to_vec(g.fc.bias.as_ref().expect("bias").val());
    for j in 0..d_out {
        let c = j / (bh * bw);
        for i in 0..d_in {
            w[i * d_out + j] *= s0[c];
        }
        b[j] = b[j] * s0[c] + t0[c];
    }
    let plain = |c: &ConvTranspose2d| (to_vec(c.weight.val()), to_vec(c.bias.as_ref().expect("bias").val()));
    let s = g.stages();
    let deconvs = (0..s)
        .map(|i| match (i + 1 < s, &g.fine) {
            (true, _) => fold_deconv(&g.deconvs[i], &g.norms[i + 1]),
            (false, Some(fine)) => fold_deconv(&g.deconvs[i], &fine.bn2),
            (false, None) => plain(&g.deconvs[i]),
        })
        .collect();
    Folded {
        fc: (w, b),
        deconvs,
        conv3: g.fine.as_ref().map(|f| (to_vec(f.conv3.weight.val()), to_vec(f.conv3.bias.as_ref().expect("bias").val()))),
    }
}

/// The image's shape as a tensor `[1, C, H, W]`.
fn image_shape(g: &Generator) -> [usize; 4] {
    let (c, h, w) = g.image_dims();
    [1, c, h, w]
}

/// The generator as ONNX: `z [1,L]` → `image [1,C,H,W]` on the network scale (-1..1); a
/// conditional generator's `z` is `[1,L+K]`, the noise followed by the class's one-hot
/// vector.
pub fn generator_onnx(g: &Generator) -> ModelProto {
    let g = g.valid();
    let latent = g.input_len();
    let [_, flat] = g.fc.weight.dims();
    let (bh, bw) = g.base();
    let f = folded_generator(&g);
    let mut gb = GraphBuilder::new();
    gb.input("z", &[1, latent]);
    let h = gb.dense("z", "fc", &f.fc.0, &f.fc.1, latent, flat, None);
    let mut h = gb.reshape(&h, &[1, (flat / (bh * bw)) as i64, bh as i64, bw as i64]);
    for (i, ((w, b), deconv)) in f.deconvs.iter().zip(&g.deconvs).enumerate() {
        h = gb.relu(&h);
        h = gb.conv_transpose(&h, &format!("deconv{}", i + 1), w, b, deconv.weight.dims(), 2, 1, None);
    }
    if let (Some(fine), Some((w3, b3))) = (&g.fine, &f.conv3) {
        h = gb.relu(&h);
        h = gb.conv(&h, "conv3", w3, b3, fine.conv3.weight.dims(), 1, 1, None);
    }
    gb.node("Tanh", &[&h], Some("image"), &[]);
    let shape = image_shape(&g);
    gb.output("image", &shape);
    let layers = if g.fine.is_some() { "Gemm, ConvTranspose and ConvTranspose" } else { "Gemm and ConvTranspose" };
    let [_, c, hh, ww] = shape;
    let input = match g.classes {
        0 => format!("float32 [1,{latent}], z ~ N(0, I)"),
        k => format!(
            "float32 [1,{latent}]: {} noise values z ~ N(0, I), then the one-hot class (1 at index {} + class, 0 elsewhere, {k} classes)",
            g.latent(),
            g.latent()
        ),
    };
    let mut metadata = vec![("family", "gan-generator".to_string())];
    if g.classes > 0 {
        metadata.push(("classes", g.classes.to_string()));
    }
    gb.finish(
        "dcgan_generator",
        &format!("edgegen DCGAN generator. Input z: {input}. Output image: [1,{c},{hh},{ww}] in (-1,1); pixel = round((v+1)*127.5). BatchNorm folded into {layers}."),
        &metadata,
    )
}

/// The discriminator as ONNX: `image [G,C,H,W]` → `logit [G,1]` for one group of `G =
/// d.group()` images (one image, or with `--mbstd` the group its standard-deviation channel
/// is taken over); a conditional one also reads `class [G,K]` (one-hot) and adds the
/// projection ⟨class·E, φ⟩ = Σ (φ·Eᵀ ⊙ class). `image` is one image's `[1,C,H,W]`.
pub fn discriminator_onnx(d: &Discriminator, image: [usize; 4]) -> ModelProto {
    let group = d.group();
    let [_, c, hh, ww] = image;
    let shape = [group, c, hh, ww];
    let mut g = GraphBuilder::new();
    g.input("image", &shape);
    let k = d.classes();
    if k > 0 {
        g.input("class", &[group, k]);
    }
    let mut h = "image".to_string();
    for (i, c) in d.convs.iter().enumerate() {
        let w = to_vec(c.weight.val());
        let b = to_vec(c.bias.as_ref().expect("bias").val());
        h = g.conv(&h, &format!("conv{}", i + 1), &w, &b, c.weight.dims(), 2, 1, None);
        h = g.node("LeakyRelu", &[&h], None, &[("alpha", Attr::Float(0.2))]);
    }
    let [i, o] = d.fc.weight.dims();
    // The last map has `dc` channels of `positions` values; with the minibatch standard
    // deviation the dense layer reads one more channel of them.
    let dc = d.convs.last().map_or(c, |conv| conv.weight.dims()[0]);
    let extra = usize::from(d.mbstd > 0);
    let phi_len = dc * (i / (dc + extra));
    let phi = g.reshape(&h, &[group as i64, phi_len as i64]);
    let (w, bias) = (to_vec(d.fc.weight.val()), to_vec(d.fc.bias.as_ref().expect("bias").val()));
    let fc = |g: &mut GraphBuilder, out| {
        if extra == 0 {
            return g.dense(&phi, "fc", &w, &bias, i, o, out);
        }
        // The dense layer over [φ, the standard-deviation channel]: that channel holds one
        // value s (the same for every image of the group) at every position, so its rows of
        // the weights add s · (their column sums), one scalar times a constant row.
        let on_phi = g.dense(&phi, "fc", &w[..phi_len * o], &bias, phi_len, o, None);
        let rows: Vec<f32> = (0..o).map(|j| (phi_len..i).map(|r| w[r * o + j]).sum()).collect();
        // s: the standard deviation of every feature across the G images, averaged over
        // channels and positions (minibatch_std over one group).
        let axes = |a: &[i64]| [("axes", Attr::Ints(a.to_vec())), ("keepdims", Attr::Int(1))];
        let mean = g.node("ReduceMean", &[&h], None, &axes(&[0]));
        let centred = g.node("Sub", &[&h, &mean], None, &[]);
        let squared = g.node("Mul", &[&centred, &centred], None, &[]);
        let var = g.node("ReduceMean", &[&squared], None, &axes(&[0]));
        let eps = g.weight("mbstd_eps", &[1], &[1e-8]);
        let var = g.node("Add", &[&var, &eps], None, &[]);
        let std = g.node("Sqrt", &[&var], None, &[]);
        let std = g.node("ReduceMean", &[&std], None, &axes(&[1, 2, 3]));
        let std = g.reshape(&std, &[1, 1]);
        let rows = g.weight("fc.mbstd_rows", &[1, o], &rows);
        let on_std = g.node("Mul", &[&std, &rows], None, &[]);
        g.node("Add", &[&on_phi, &on_std], out, &[])
    };
    match &d.embed {
        None => {
            fc(&mut g, Some("logit"));
        }
        Some(embed) => {
            let unconditional = fc(&mut g, None);
            // E is [K, F] (burn's [in, out]); φ·Eᵀ scores every class at once.
            let e = to_vec(embed.weight.val());
            let mut et = vec![0f32; e.len()];
            for c in 0..k {
                for f in 0..phi_len {
                    et[f * k + c] = e[c * phi_len + f];
                }
            }
            let scores = g.dense(&phi, "embed", &et, &vec![0.0; k], phi_len, k, None);
            let picked = g.node("Mul", &[&scores, "class"], None, &[]);
            let ones = g.weight("sum_classes", &[k, 1], &vec![1.0; k]);
            let projection = g.node("MatMul", &[&picked, &ones], None, &[]);
            g.node("Add", &[&unconditional, &projection], Some("logit"), &[]);
        }
    }
    g.output("logit", &[group, 1]);
    let class = if k > 0 { format!(" Input class: float32 [{group},{k}], one-hot.") } else { String::new() };
    let what = if extra == 0 {
        String::new()
    } else {
        format!(" Scores one group of {group} images at once: the dense layer also reads the minibatch standard deviation over the group.")
    };
    g.finish(
        "dcgan_discriminator",
        &format!("edgegen DCGAN discriminator. Input image: float32 [{group},{c},{hh},{ww}], x/127.5-1.{class} Output: realness logit [{group},1].{what}"),
        &[("family", "gan-discriminator".into())],
    )
}

/// Parameters of the generator as exported: BatchNorm folded away into the layer before it.
pub fn exported_params(g: &Generator) -> usize {
    folded_generator(g).params()
}

/// Golden vectors for both networks (trainer's forward pass): three generator inputs and
/// their images; three discriminator inputs of one group each (one image, or with `--mbstd`
/// the group its standard deviation is taken over), their classes and logits.
pub fn write_golden(gan: &Gan, dir: &Path) -> Result<()> {
    let g = gan.generator.valid();
    let (latent, n) = (g.latent(), g.input_len());
    let shape = image_shape(&g);
    let device = crate::device::of(&g);
    // Draw `i`: noise from seed 1000 + i; a conditional generator's class is i mod K.
    let draw = |i: usize| {
        let mut z = vec![0f32; n];
        edgegen_runtime::rng::Rng::new(1000 + i as u64).fill_normal(&mut z[..latent]);
        if g.classes > 0 {
            z[latent + i % g.classes] = 1.0;
        }
        let img = to_vec(g.forward(Tensor::from_data(TensorData::new(z.clone(), [1, n]), &device)));
        (z, img)
    };
    for i in 0..3 {
        let (z, img) = draw(i);
        let set = dir.join("golden/generator").join(format!("test_data_set_{i}"));
        crate::export::onnx::save_tensor(&set.join("input_0.pb"), "z", &[1, n], &z)?;
        crate::export::onnx::save_tensor(&set.join("output_0.pb"), "image", &shape, &img)?;
    }
    let group = gan.discriminator.group();
    let batch = [group, shape[1], shape[2], shape[3]];
    for i in 0..3 {
        let (mut images, mut classes, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        for j in i * group..(i + 1) * group {
            let (z, img) = draw(j);
            images.extend(img);
            classes.extend_from_slice(&z[latent..]);
            labels.push((j % g.classes.max(1)) as u8);
        }
        let logit = to_vec(gan.discriminator.valid().forward(Tensor::from_data(TensorData::new(images.clone(), batch), &device), &labels));
        let set = dir.join("golden/discriminator").join(format!("test_data_set_{i}"));
        crate::export::onnx::save_tensor(&set.join("input_0.pb"), "image", &batch, &images)?;
        if g.classes > 0 {
            crate::export::onnx::save_tensor(&set.join("input_1.pb"), "class", &[group, g.classes], &classes)?;
        }
        crate::export::onnx::save_tensor(&set.join("output_0.pb"), "logit", &[group, 1], &logit)?;
    }
    Ok(())
}

/// How a GAN was measured: Fréchet distances (Fashion-MNIST models), the last iterate's FD
/// when the average ships, which weights ship (the card's `generator_weights`), the card's
/// `dataset` line and the data it trained on.
pub struct PublishData<'a> {
    /// FD figures (`None` for other data: FD needs the Fashion-MNIST classifier's features).
    pub fd: Option<&'a crate::eval::fd::FdReport>,
    /// The last iterate's FD, when `gan` holds the averaged generator.
    pub fd_last: Option<f64>,
    /// Which weights ship.
    pub weights: &'a str,
    /// The card's `dataset` line.
    pub dataset: &'a str,
    /// Where the training frames came from.
    pub source: &'a crate::data::Source,
    /// A conditional generator's classes and per-class figures.
    pub classes: Option<&'a ClassFigures>,
}

/// A conditional generator's class names and how well it draws each class.
#[derive(Debug, Clone, Default)]
pub struct ClassFigures {
    /// Class names, by index.
    pub names: Vec<String>,
    /// Share of samples the FD classifier puts in the class they were drawn for.
    pub agreement: Option<f64>,
    /// FD of each class's samples against that class's test images.
    pub fd: Option<Vec<f64>>,
    /// FD of each class's training images against its test images (the floor).
    pub fd_floor: Option<Vec<f64>>,
}

/// Publishes the GAN into `dir`: both networks' ONNX, golden vectors, `samples.png` and
/// `card.json`.
pub fn publish(
    gan: &Gan,
    state: &crate::families::checkpoint::TrainState,
    command: &str,
    train_config: Option<serde_json::Value>,
    dir: &Path,
    d: &PublishData,
) -> Result<()> {
    let g = gan.generator.valid();
    let latent = g.latent();
    let shape = image_shape(&g);
    let geo = d.source.geometry();
    anyhow::ensure!(
        [1, geo.channels as usize, geo.height as usize, geo.width as usize] == shape,
        "the generator draws {shape:?} images, its data has {geo:?}"
    );
    crate::export::onnx::save(&generator_onnx(&gan.generator), &dir.join("generator.onnx"))?;
    // The discriminator stays on the host (with --mbstd it scores a group of images at once).
    crate::export::onnx::save(&discriminator_onnx(&gan.discriminator, shape), &dir.join("discriminator.onnx"))?;
    write_golden(gan, dir)?;
    let scale = (56 / geo.height.max(geo.width) as usize).max(1);
    let (samples, columns) = match g.classes {
        0 => (generate(gan, &(0..64).collect::<Vec<u64>>()), 8),
        // One column per class, one row per seed: the same noise drawn as every class.
        k => {
            let per_class: Vec<Vec<u8>> = (0..k).map(|c| generate_class(gan, &(0..8).collect::<Vec<u64>>(), Some(c as u8))).collect();
            let n = geo.values();
            let mut grid = Vec::with_capacity(8 * k * n);
            for row in 0..8 {
                for class in &per_class {
                    grid.extend_from_slice(&class[row * n..(row + 1) * n]);
                }
            }
            (grid, k)
        }
    };
    crate::data::imageio::write_frame_grid(&dir.join("samples.png"), &samples, geo, columns, scale)?;
    let fd = d.fd;
    let card = Card {
        name: card_name(dir, "gan-fmnist"),
        family: FamilyCard::Gan(GanCard {
            latent_dim: latent,
            params_discriminator: gan.discriminator.num_params() as u64,
            params_note: "generator as exported (BatchNorm folded); the discriminator is not shipped to devices".into(),
            fd: fd.map(|f| r4(f.gan)),
            fd_floor: fd.map(|f| r4(f.floor)),
            fd_ratio: fd.map(|f| r4(f.gan / f.floor)),
            vae_fd: fd.map(|f| r4(f.vae)),
            fd_samples: fd.map(|f| f.samples),
            fd_note: fd.map_or_else(
                || "no Fréchet distance: FD measures samples in the features of a Fashion-MNIST classifier, which mean nothing for other data; look at samples.png".to_string(),
                |f| f.note.clone(),
            ),
            fd_last_iterate: d.fd_last.map(r4),
            generator_weights: d.weights.to_string(),
            fd_int8: None,
            classes: d.classes.map(|c| c.names.clone()),
            class_agreement: d.classes.and_then(|c| c.agreement.map(r4)),
            class_agreement_int8: None,
            fd_per_class: d.classes.and_then(|c| c.fd.as_ref().map(|v| v.iter().map(|&x| r4(x)).collect())),
            fd_floor_per_class: d.classes.and_then(|c| c.fd_floor.as_ref().map(|v| v.iter().map(|&x| r4(x)).collect())),
        }),
        dataset: d.dataset.to_string(),
        params: exported_params(&g) as u64,
        macs: g.macs() as u64,
        files: [
            ("generator", file_entry(dir, "generator.onnx")),
            ("discriminator", file_entry(dir, "discriminator.onnx")),
            (
                "golden",
                json!(match gan.discriminator.group() {
                    1 => "golden/{generator,discriminator}/test_data_set_N/{input_0,output_0}.pb (ONNX TensorProto)".to_string(),
                    g => format!("golden/{{generator,discriminator}}/test_data_set_N/{{input_0,output_0}}.pb (ONNX TensorProto); the discriminator's sets hold one group of {g} images each (--mbstd {g})"),
                }),
            ),
            ("samples", json!("samples.png")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        inputs: match g.classes {
            0 => json!({"generator": [{"name": "z", "shape": [1, latent], "dtype": "float32", "meaning": "noise, z ~ N(0, I); the runtime draws it from Rng::new(seed)"}]}),
            k => json!({"generator": [{"name": "z", "shape": [1, latent + k], "dtype": "float32", "meaning": format!("{latent} noise values z ~ N(0, I) (the runtime draws them from Rng::new(seed)), then the class as {k} one-hot values")}]}),
        },
        outputs: json!({"generator": [{"name": "image", "shape": shape, "meaning": "image on the network scale (-1..1); pixel = round((v+1)*127.5)"}]}),
        run: crate::export::card::RunRecord::of(state, ["d_loss", "g_loss"], command, train_config),
        role: None,
        device: Default::default(),
        data: (!d.source.is_fashion_mnist()).then(|| d.source.clone()),
        geometry: Some(crate::export::card::GeometryCard::of(geo)),
    };
    card.write(dir)
}
