//! VAE evaluation: burn runs the networks, `edgegen_runtime::likelihood` does all of the
//! probability (the same code the device and the host engines use).

use super::model::Vae;
use crate::data::Images;
use crate::families::loss::{frames_to_tensor, to_vec};
use burn::prelude::*;
use edgegen_runtime::{likelihood, rng::Rng};

/// Per-image likelihood bounds in nats.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    /// ELBO estimated as the mean of the k log importance weights (analytic-free, unbiased).
    pub elbo: Vec<f64>,
    /// Importance-weighted bound with k samples.
    pub iwae: Vec<f64>,
    /// Values per image (the "dimensions" of bits/dim).
    pub values: usize,
}

impl Bounds {
    /// Mean ELBO in bits/dim.
    pub fn elbo_bpd(&self) -> f64 {
        mean_bpd(&self.elbo, self.values)
    }
    /// Mean importance-weighted bound in bits/dim.
    pub fn iwae_bpd(&self) -> f64 {
        mean_bpd(&self.iwae, self.values)
    }
}

/// Mean of per-image log-likelihoods (nats) of images of `values` values, in bits/dim.
pub fn mean_bpd(log_p: &[f64], values: usize) -> f64 {
    likelihood::bits_per_dim(log_p.iter().sum::<f64>() / log_p.len().max(1) as f64, values)
}

/// The latent noise stream of image `index`: the same on every engine for the same seed.
pub fn image_rng(seed: u64, index: usize) -> Rng {
    Rng::with_stream(seed, index as u64)
}

/// Computes the ELBO and the k-sample importance-weighted bound of every image.
/// Image `i` draws its latents from [`image_rng`]`(seed, i)`.
pub fn bounds(model: &Vae, images: &Images, k: usize, seed: u64, progress: bool) -> Bounds {
    let model = model.valid();
    let device = crate::device::of(&model);
    let comps = model.decoder.components();
    let latent = model.decoder.latent();
    let chunk = (1024 / k).max(1);
    let bar = crate::progress::bar(progress, images.len() as u64, "eval");
    let values = images.values();
    let Ok(g) = images.geometry() else { return Bounds { values, ..Bounds::default() } };
    let mut out = Bounds { values, ..Bounds::default() };
    for start in (0..images.len()).step_by(chunk) {
        let b = chunk.min(images.len() - start);
        let pixels = &images.pixels[start * values..(start + b) * values];
        let (mu, logvar) = model.encoder.forward(frames_to_tensor(pixels, b, g, &device));
        let (mu, logvar) = (to_vec(mu), to_vec(logvar));
        let mut z = vec![0f32; b * k * latent];
        for i in 0..b {
            let mut rng = image_rng(seed, start + i);
            let (m, lv) = (&mu[i * latent..(i + 1) * latent], &logvar[i * latent..(i + 1) * latent]);
            for s in 0..k {
                let zi = &mut z[(i * k + s) * latent..(i * k + s + 1) * latent];
                likelihood::reparameterize(m, lv, &mut rng, zi).expect("matching lengths");
            }
        }
        let params = to_vec(model.decoder.forward(Tensor::from_data(TensorData::new(z.clone(), [b * k, latent]), &device)));
        let per = 3 * comps * values;
        let log_weights = crate::parallel::map(b * k, |j| {
            let i = j / k;
            let img = &pixels[i * values..(i + 1) * values];
            let lp = likelihood::mixture_image_log_prob(img, &params[j * per..(j + 1) * per], comps, g.plane()).expect("head shape");
            likelihood::importance_log_weight(
                lp,
                &z[j * latent..(j + 1) * latent],
                &mu[i * latent..(i + 1) * latent],
                &logvar[i * latent..(i + 1) * latent],
            )
            .expect("matching lengths")
        });
        for i in 0..b {
            let w = &log_weights[i * k..(i + 1) * k];
            out.elbo.push(w.iter().sum::<f64>() / k as f64);
            out.iwae.push(likelihood::iwae_bound(w).expect("k >= 1"));
        }
        bar.inc(b as u64);
    }
    crate::progress::finish(&bar);
    out
}

/// Decoder outputs for latents `z` (`n · latent` values): the planar mixture heads.
pub fn decode(model: &Vae, z: &[f32]) -> Vec<f32> {
    let model = model.valid();
    let latent = model.decoder.latent();
    let n = z.len() / latent;
    to_vec(model.decoder.forward(Tensor::from_data(TensorData::new(z.to_vec(), [n, latent]), &crate::device::of(&model))))
}

/// `(mu, logvar)` for images.
pub fn encode(model: &Vae, images: &Images) -> (Vec<f32>, Vec<f32>) {
    let model = model.valid();
    let g = images.geometry().expect("images of a model's geometry");
    let (mu, lv) = model.encoder.forward(frames_to_tensor(&images.pixels, images.len(), g, &crate::device::of(&model)));
    (to_vec(mu), to_vec(lv))
}
