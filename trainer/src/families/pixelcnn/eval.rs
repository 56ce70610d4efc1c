//! PixelCNN evaluation and sampling: burn runs the network, `edgegen_runtime::likelihood`
//! does all of the probability.

use super::model::PixelCnn;
use crate::data::Images;
use crate::data::PIXELS;
use crate::families::loss::{images_to_tensor, to_vec};
use burn::module::Module;
use burn::prelude::*;
use edgegen_runtime::{likelihood, rng::Rng};

/// The mixture heads `[n, 3K, 28, 28]` (flattened) for `n` images.
pub fn heads(model: &PixelCnn, pixels: &[u8]) -> Vec<f32> {
    let n = pixels.len() / PIXELS;
    to_vec(model.forward(images_to_tensor(pixels, n, &Device::flex())))
}

/// Exact log p(x) in nats of every image.
pub fn log_probs(model: &PixelCnn, images: &Images, progress: bool) -> Vec<f64> {
    let model = model.valid();
    let k = model.components();
    let per = 3 * k * PIXELS;
    let bar = crate::progress::bar(progress, images.len() as u64, "eval");
    let mut out = Vec::with_capacity(images.len());
    for start in (0..images.len()).step_by(250) {
        let b = (images.len() - start).min(250);
        let pixels = &images.pixels[start * PIXELS..(start + b) * PIXELS];
        let params = heads(&model, pixels);
        out.extend(crate::parallel::map(b, |i| {
            likelihood::mixture_image_log_prob(&pixels[i * PIXELS..(i + 1) * PIXELS], &params[i * per..(i + 1) * per], k, PIXELS)
                .expect("head shape")
        }));
        bar.inc(b as u64);
    }
    crate::progress::finish(&bar);
    out
}

/// Mean bits/dim over `images`.
pub fn mean_bpd(model: &PixelCnn, images: &Images, progress: bool) -> f64 {
    crate::families::vae::eval::mean_bpd(&log_probs(model, images, progress))
}

/// Draws `n` images pixel by pixel in raster order, image `i` from `Rng::new(seeds[i])`,
/// batched over images (784 forward passes in all).
pub fn sample(model: &PixelCnn, seeds: &[u64]) -> Vec<u8> {
    let model = model.valid();
    let k = model.components();
    let n = seeds.len();
    let per = 3 * k * PIXELS;
    let mut rngs: Vec<Rng> = seeds.iter().map(|&s| Rng::new(s)).collect();
    let mut images = vec![0u8; n * PIXELS];
    for p in 0..PIXELS {
        let params = heads(&model, &images);
        for (i, rng) in rngs.iter_mut().enumerate() {
            images[i * PIXELS + p] = likelihood::mixture_sample_at(&params[..], i * per + p, k, PIXELS, rng);
        }
    }
    images
}
