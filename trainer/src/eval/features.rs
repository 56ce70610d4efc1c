//! Per-frame evidence for the guard: every statistic the int8 models give about one frame,
//! from one pass of the PixelCNN, one of its background model and (optionally) the VAE's
//! encoder, written by `edgegen eval ood --statistics FILE` (CSV) for analysis.

use crate::data::Images;
use anyhow::Result;
use edgegen_runtime::engine::{PixelCnn, Vae};
use edgegen_runtime::image::Geometry;

/// Names of the statistics, in [`frame_features`]' order.
pub const NAMES: [&str; 31] = [
    "bpd",
    "coder_bpd",
    "bg_bpd",
    "line_ratio",
    "patch_ratio",
    "patch_bits",
    "top_bpd",
    "bottom_bpd",
    "left_bpd",
    "right_bpd",
    "ratio_top",
    "ratio_bottom",
    "vae_kl",
    "vae_mu_norm",
    "vae_logvar_mean",
    "vae_mu_max",
    "latent_score",
    "rec_bpd",
    "rec_cc",
    "rec_elbo_cc",
    "rec_line",
    "rec_patch",
    "rec_ratio_line",
    "rec_ratio_patch",
    "img_mean",
    "img_ink",
    "img_max",
    "img_cy",
    "img_cx",
    "img_syy",
    "img_sxx",
];

/// Statistics of one frame (see [`NAMES`]): per-value log-likelihoods of the model `fg`
/// and the background `bg` (nats, planar), the image, and the VAE's posterior `(mu,
/// logvar)` when there is one (NaN otherwise).
pub fn from_parts(
    image: &[u8],
    g: Geometry,
    fg: &[f32],
    bg: &[f32],
    posterior: Option<(&[f32], &[f32])>,
    vae: Option<VaeEvidence<'_>>,
) -> Vec<f64> {
    let (h, w, c, plane) = (g.height as usize, g.width as usize, g.channels as usize, g.plane());
    let ln2 = std::f64::consts::LN_2;
    // Bits of pixel p (summed over channels) under the model, and its ratio to the background.
    let bits = |p: usize| (0..c).map(|k| -(fg[k * plane + p] as f64) / ln2).sum::<f64>();
    let ratio = |p: usize| (0..c).map(|k| (bg[k * plane + p] as f64 - fg[k * plane + p] as f64) / ln2).sum::<f64>();
    let region = |f: &dyn Fn(usize) -> f64, ys: std::ops::Range<usize>, xs: std::ops::Range<usize>| -> f64 {
        let mut s = 0.0;
        for y in ys.clone() {
            for x in xs.clone() {
                s += f(y * w + x);
            }
        }
        s
    };
    // The guard's own statistics where it has them (the line and patch ratios, the peak).
    let stats = edgegen_runtime::guard::Statistics::from_pixels(image, g, fg, Some(bg)).with_patch_ratio(g, fg, bg);
    // The worst local bits per value (the worst local ratio is the guard's, above).
    let patch_bits = worst_patch(g, &bits) / ((h / 4).max(1) * (w / 4).max(1) * c) as f64;
    let half = |ys: std::ops::Range<usize>, xs: std::ops::Range<usize>| {
        let n = (ys.len() * xs.len() * c) as f64;
        region(&bits, ys, xs) / n
    };
    let (top, bottom) = (half(0..h / 2, 0..w), half(h / 2..h, 0..w));
    let (left, right) = (half(0..h, 0..w / 2), half(0..h, w / 2..w));
    let (ratio_top, ratio_bottom) = (region(&ratio, 0..h / 2, 0..w), region(&ratio, h / 2..h, 0..w));
    let (kl, mu_norm, lv_mean, mu_max) = match posterior {
        Some((mu, lv)) => {
            let kl: f64 = mu.iter().zip(lv).map(|(&m, &l)| 0.5 * ((m * m) as f64 + (l as f64).exp() - l as f64 - 1.0)).sum();
            let norm = mu.iter().map(|&m| (m * m) as f64).sum::<f64>().sqrt();
            let lvm = lv.iter().map(|&l| l as f64).sum::<f64>() / lv.len().max(1) as f64;
            let mx = mu.iter().map(|&m| (m as f64).abs()).fold(0.0, f64::max);
            (kl, norm, lvm, mx)
        }
        None => (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
    };
    let latent: Vec<f64> = posterior.map(|(mu, _)| mu.iter().map(|&m| m as f64).collect()).unwrap_or_default();
    let mut v = vec![
        stats.bpd,
        stats.coder_bpd,
        stats.background_bpd.unwrap_or(f64::NAN),
        stats.line_ratio.unwrap_or(f64::NAN),
        stats.patch_ratio.unwrap_or(f64::NAN),
        patch_bits,
        top,
        bottom,
        left,
        right,
        ratio_top,
        ratio_bottom,
        kl,
        mu_norm,
        lv_mean,
        mu_max,
    ];
    let guard_kl = posterior.map(|(mu, lv)| edgegen_runtime::likelihood::kl_to_standard_normal(mu, lv).unwrap_or(f64::NAN));
    v.extend(vae_features(image, g, fg, &stats, guard_kl.unwrap_or(f64::NAN), vae));
    v.extend(image_features(image, g));
    // The posterior mean itself, coordinate by coordinate (`mu_0`, `mu_1`, …).
    v.extend(latent);
    v
}

/// What the VAE says of a frame beyond its posterior: the stored guard block's latent score
/// and the decoder's per-value log-likelihoods (nats, planar) at the posterior mean.
#[derive(Debug, Clone, Copy)]
pub struct VaeEvidence<'a> {
    pub latent_score: Option<f64>,
    pub reconstruction: &'a [f32],
}

/// The reconstruction statistics (see [`NAMES`]: `latent_score` to `rec_ratio_patch`); the
/// evidence guard's three (`rec_elbo_cc`, `rec_ratio_line`, `rec_ratio_patch`) as the
/// runtime computes them ([`edgegen_runtime::guard::Reconstruction`], with the KL `kl`).
fn vae_features(
    image: &[u8],
    g: Geometry,
    fg: &[f32],
    stats: &edgegen_runtime::guard::Statistics,
    kl: f64,
    vae: Option<VaeEvidence<'_>>,
) -> Vec<f64> {
    let Some(e) = vae else { return vec![f64::NAN; 8] };
    let (h, w, c, plane) = (g.height as usize, g.width as usize, g.channels as usize, g.plane());
    let ln2 = std::f64::consts::LN_2;
    let d = image.len() as f64;
    let rec = |p: usize| (0..c).map(|k| -(e.reconstruction[k * plane + p] as f64) / ln2).sum::<f64>();
    let rec_bpd = (0..plane).map(rec).sum::<f64>() / d;
    let lines = |f: &dyn Fn(usize) -> f64| {
        let rows = (0..h).map(|y| (0..w).map(|x| f(y * w + x)).sum::<f64>());
        let cols = (0..w).map(|x| (0..h).map(|y| f(y * w + x)).sum::<f64>());
        rows.chain(cols).fold(f64::NEG_INFINITY, f64::max)
    };
    let r = edgegen_runtime::guard::Reconstruction::from_pixels(g, fg, e.reconstruction, kl, stats.coder_bpd);
    vec![
        e.latent_score.unwrap_or(f64::NAN),
        rec_bpd,
        rec_bpd - stats.coder_bpd,
        r.bound_cc,
        lines(&rec),
        worst_patch(g, &rec),
        r.ratio_line,
        r.ratio_patch,
    ]
}

/// The largest sum of `f(pixel)` over a patch: squares a quarter of the frame's side, every
/// eighth of it (the guard's patches).
fn worst_patch(g: Geometry, f: &dyn Fn(usize) -> f64) -> f64 {
    let (h, w) = (g.height as usize, g.width as usize);
    let (ph, pw) = ((h / 4).max(1), (w / 4).max(1));
    let (sy, sx) = ((h / 8).max(1), (w / 8).max(1));
    let mut best = f64::NEG_INFINITY;
    for y in (0..=h - ph).step_by(sy) {
        for x in (0..=w - pw).step_by(sx) {
            best = best.max((y..y + ph).flat_map(|yy| (x..x + pw).map(move |xx| yy * w + xx)).map(f).sum::<f64>());
        }
    }
    best
}

/// Global image statistics (see [`NAMES`]: `img_mean` to `img_sxx`): the mean level, the
/// fraction of inked pixels (≥ 64), the brightest level, and the intensity-weighted centroid
/// and spreads (pixels, from the frame's centre), over the channels' mean.
fn image_features(image: &[u8], g: Geometry) -> Vec<f64> {
    let (h, w, c, plane) = (g.height as usize, g.width as usize, g.channels as usize, g.plane());
    let level = |p: usize| (0..c).map(|k| image[k * plane + p] as f64).sum::<f64>() / c as f64;
    let (mut m, mut my, mut mx, mut ink, mut max) = (0.0, 0.0, 0.0, 0usize, 0f64);
    for y in 0..h {
        for x in 0..w {
            let v = level(y * w + x);
            m += v;
            my += v * y as f64;
            mx += v * x as f64;
            ink += usize::from(v >= 64.0);
            max = max.max(v);
        }
    }
    let n = (h * w) as f64;
    let (cy, cx) = if m > 0.0 { (my / m, mx / m) } else { ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0) };
    let (mut syy, mut sxx) = (0.0, 0.0);
    for y in 0..h {
        for x in 0..w {
            let v = level(y * w + x);
            syy += v * (y as f64 - cy).powi(2);
            sxx += v * (x as f64 - cx).powi(2);
        }
    }
    let (syy, sxx) = if m > 0.0 { ((syy / m).sqrt(), (sxx / m).sqrt()) } else { (0.0, 0.0) };
    vec![m / n, ink as f64 / n, max, cy - (h as f64 - 1.0) / 2.0, cx - (w as f64 - 1.0) / 2.0, syy, sxx]
}

/// The statistics of every frame of `images` (all cores).
pub fn frame_features(images: &Images, model: &PixelCnn, background: &PixelCnn, vae: Option<&Vae>) -> Result<Vec<Vec<f64>>> {
    let g = images.geometry()?;
    let out = crate::parallel::map(images.len(), |i| -> Result<Vec<f64>> {
        let image = images.image(i);
        let (mut fg, mut bg) = (vec![0f32; g.values()], vec![0f32; g.values()]);
        model.log_prob_pixels(&mut vec![0u8; model.arena_len()], image, &mut fg)?;
        background.log_prob_pixels(&mut vec![0u8; background.arena_len()], image, &mut bg)?;
        let mut rec = vec![0f32; g.values()];
        let (posterior, latent_score) = match vae {
            Some(v) => {
                let (mut mu, mut lv) = (vec![0f32; v.latent()], vec![0f32; v.latent()]);
                let mut arena = vec![0u8; v.arena_len()];
                v.encode(&mut arena, image, &mut mu, &mut lv)?;
                v.decode_log_prob_pixels(&mut arena, &mu, image, &mut rec)?;
                let score = model.interpreter().model().guard_block().filter(|b| b.latent() == mu.len()).and_then(|b| b.score(&mu));
                (Some((mu, lv)), score)
            }
            None => (None, None),
        };
        let evidence = posterior.as_ref().map(|_| VaeEvidence { latent_score, reconstruction: &rec });
        Ok(from_parts(image, g, &fg, &bg, posterior.as_ref().map(|(m, l)| (&m[..], &l[..])), evidence))
    });
    out.into_iter().collect()
}

/// `edgegen eval statistics`: the statistics of `count` frames of every evaluation set
/// (the validation part first, then the test inliers and each outlier set of `eval ood`),
/// one CSV row per frame: `set,group,index,` then [`NAMES`].
pub fn dump(pixelcnn: &std::path::Path, vae: Option<&std::path::Path>, count: usize, out: &std::path::Path, progress: bool) -> Result<()> {
    use crate::engines::Engines;
    use crate::eval::score::{EngineKind, Loaded};
    let p = Loaded::open(pixelcnn, EngineKind::Int8)?;
    let Engines::PixelCnnInt8 { model, background: Some(background) } = p.engines() else {
        anyhow::bail!("{}: statistics need an int8 PixelCNN with its background model (a sibling `-bg` directory)", pixelcnn.display());
    };
    let v = vae.map(|d| Loaded::open(d, EngineKind::Int8)).transpose()?;
    let vae_engine = match v.as_ref().map(|l| l.engines()) {
        Some(Engines::VaeInt8(e)) => Some(e),
        Some(_) => anyhow::bail!("--vae must be an int8 VAE"),
        None => None,
    };
    let source = crate::export::card::Card::read(pixelcnn)?.source();
    let validation = source.load(progress)?.validation;
    let pick = crate::data::permutation(validation.len(), 11);
    let validation = validation.select(&pick[..count.min(validation.len())]);
    let sets = crate::eval::ood::eval_sets_of(&source, count, progress)?;
    let latent = vae_engine.map_or(0, |v| v.latent());
    let mu_names: Vec<String> = (0..latent).map(|i| format!("mu_{i}")).collect();
    let mut csv = format!("set,group,index,{}\n", NAMES.iter().map(|s| s.to_string()).chain(mu_names).collect::<Vec<_>>().join(","));
    let mut write = |name: &str, group: &str, images: &Images| -> Result<()> {
        for (i, row) in frame_features(images, model, background, vae_engine)?.into_iter().enumerate() {
            let vals: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
            csv.push_str(&format!("{name},{group},{i},{}\n", vals.join(",")));
        }
        if progress {
            eprintln!("statistics: {name} ({} frames)", images.len());
        }
        Ok(())
    };
    write("validation", "validation", &validation)?;
    write("test", "test", &sets.inliers)?;
    for s in &sets.sets {
        write(&s.name, &format!("{:?}", s.group).to_lowercase(), &s.images)?;
    }
    crate::data::write_atomic(out, csv.as_bytes())
}
