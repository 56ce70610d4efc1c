//! PixelCNN evaluation and sampling: burn runs the network, `edgegen_runtime::likelihood`
//! does all of the probability. Frames of any geometry (planar, channel by channel).

use super::model::PixelCnn;
use crate::data::Images;
use crate::families::loss::{frames_to_tensor, to_vec};
use burn::module::Module;
use edgegen_runtime::image::Geometry;
use edgegen_runtime::{likelihood, rng::Rng};

/// The mixture heads `[n, 3K·C, H, W]` (flattened) for `n` frames of geometry `g`.
pub fn heads(model: &PixelCnn, pixels: &[u8], g: Geometry) -> Vec<f32> {
    let n = pixels.len() / g.values();
    to_vec(model.forward(frames_to_tensor(pixels, n, g, &crate::device::of(model))))
}

/// Exact log p(x) in nats of every image.
pub fn log_probs(model: &PixelCnn, images: &Images, progress: bool) -> Vec<f64> {
    let model = model.valid();
    let Ok(g) = images.geometry() else { return Vec::new() };
    let (k, values) = (model.components(), g.values());
    let per = 3 * k * values;
    // About 200k values per forward pass.
    let chunk = (200_000 / values).clamp(1, 250);
    let bar = crate::progress::bar(progress, images.len() as u64, "eval");
    let mut out = Vec::with_capacity(images.len());
    for start in (0..images.len()).step_by(chunk) {
        let b = (images.len() - start).min(chunk);
        let pixels = &images.pixels[start * values..(start + b) * values];
        let params = heads(&model, pixels, g);
        out.extend(crate::parallel::map(b, |i| {
            likelihood::mixture_image_log_prob(&pixels[i * values..(i + 1) * values], &params[i * per..(i + 1) * per], k, g.plane())
                .expect("head shape")
        }));
        bar.inc(b as u64);
    }
    crate::progress::finish(&bar);
    out
}

/// Mean bits/dim over `images`.
pub fn mean_bpd(model: &PixelCnn, images: &Images, progress: bool) -> f64 {
    crate::families::vae::eval::mean_bpd(&log_probs(model, images, progress), images.values())
}

/// Draws `n` frames of geometry `g` pixel by pixel in raster order, channel by channel within
/// a pixel (the order of `edgegen_runtime::engine::PixelCnn::sample`), frame `i` from
/// `Rng::new(seeds[i])`, batched over frames (`C·H·W` forward passes in all).
pub fn sample(model: &PixelCnn, seeds: &[u64], g: Geometry) -> Vec<u8> {
    let model = model.valid();
    let (k, values, plane) = (model.components(), g.values(), g.plane());
    let n = seeds.len();
    let per = 3 * k * values;
    let mut rngs: Vec<Rng> = seeds.iter().map(|&s| Rng::new(s)).collect();
    let mut images = vec![0u8; n * values];
    for p in 0..plane {
        for c in 0..g.channels as usize {
            let sub = c * plane + p;
            let params = heads(&model, &images, g);
            for (i, rng) in rngs.iter_mut().enumerate() {
                images[i * values + sub] =
                    likelihood::mixture_sample_at(&params[..], i * per + likelihood::head_index(sub, k, plane), k, plane, rng);
            }
        }
    }
    images
}
