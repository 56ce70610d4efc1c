//! `edgegen demo`: the main job on the bundled models and frames. Samples images from each
//! bundled model and scores each bundled sensor frame, printing bits/dim per frame.

use crate::data::{self, Images};
use anyhow::{Context, Result};
use edgegen_runtime::image::PIXELS;
use edgegen_runtime::onnx::OnnxVae;
use edgegen_runtime::rng::Rng;
use std::path::{Path, PathBuf};

/// The bundled frame sets: (file, what the frames are).
pub const FRAME_SETS: [(&str, &str); 2] = [
    ("fashion-mnist-test.idx", "Fashion-MNIST test images (in distribution)"),
    ("mnist-digits.idx", "MNIST digits (out of distribution)"),
];

/// Writes the bundled frames: the first `n` Fashion-MNIST test images and `n` MNIST digits
/// spread over all ten classes (`edgegen data frames`).
pub fn write_frames(dir: &Path, n: usize) -> Result<()> {
    let test = data::fashion_mnist(data::Split::Test)?;
    let mnist = data::mnist_digits()?;
    let picks: Vec<usize> = (0..n).map(|i| i * mnist.len() / n + 7).collect();
    let mut fm = test.slice(0..n);
    fm.labels = None;
    let mut mn = mnist.select(&picks);
    mn.labels = None;
    data::write_atomic(&dir.join(FRAME_SETS[0].0), &data::encode_idx_images(&fm))?;
    data::write_atomic(&dir.join(FRAME_SETS[1].0), &data::encode_idx_images(&mn))?;
    Ok(())
}

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Directory of bundled models.
    pub models: PathBuf,
    /// Directory of bundled frames.
    pub frames: PathBuf,
    /// Where pictures go.
    pub out: PathBuf,
    /// Importance samples per frame.
    pub k: usize,
}

/// Runs the demo, printing to stdout.
pub fn run(opts: &DemoOptions) -> Result<()> {
    let vae_dir = opts.models.join("vae-fmnist");
    let vae = OnnxVae::load(&vae_dir).with_context(|| format!("loading the bundled VAE from {}", vae_dir.display()))?;
    println!("edgegen demo: VAE {} (latent {}, {}-component pixel mixture) through tract", vae_dir.display(), vae.latent(), vae.components());

    let mut samples = vec![0u8; 16 * PIXELS];
    for (seed, img) in samples.chunks_mut(PIXELS).enumerate() {
        vae.sample(seed as u64, img)?;
    }
    let tiles: Vec<&[u8]> = samples.chunks(PIXELS).collect();
    let (w, h, g) = crate::imageio::grid(&tiles, 28, 8, 2, 255);
    let (w, h, g) = crate::imageio::upscale(w, h, &g, 3);
    let grid_path = opts.out.join("vae-samples.png");
    crate::imageio::write_gray_png(&grid_path, w, h, &g)?;
    println!("samples: 16 images from seeds 0..15 -> {}", grid_path.display());
    println!();
    println!("{:<28} {:>10} {:>16}", "frame", "ELBO bpd", format!("IWAE k={} bpd", opts.k));
    for (file, what) in FRAME_SETS {
        let path = opts.frames.join(file);
        let frames: Images = data::read_idx_images(&path)?;
        data::ensure_28x28(&frames, &path.display().to_string())?;
        println!("# {what}");
        let mut sum = 0f64;
        for i in 0..frames.len() {
            let mut rng = Rng::with_stream(0, i as u64);
            let b = vae.bounds(frames.image(i), opts.k, &mut rng)?;
            sum += b.iwae_bpd();
            println!("{:<28} {:>10.3} {:>16.3}", format!("{file}#{i}"), b.elbo_bpd(), b.iwae_bpd());
        }
        println!("{:<28} {:>10} {:>16.3}", "mean", "", sum / frames.len().max(1) as f64);
    }
    Ok(())
}
