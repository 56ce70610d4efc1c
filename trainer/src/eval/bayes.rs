//! Bayes' rule, measured (`edgegen eval bayes`): the VAE as a class-conditional generative
//! model — its decoder p(x|z) with one Gaussian prior p(z|y) per class, fitted on training
//! frames' posteriors — used as a classifier, argmax_y p(x|y) p(y), with
//! p(x) = Σ_y p(x|y) p(y) as its outlier score ([`edgegen_runtime::engine::Vae::bayes`]).
//! Beside it: the discriminative classifier with the guard.

use crate::data::{self, Images};
use crate::engines::Engines;
use crate::eval::ood::{auroc, eval_sets_of, EvalSets};
use crate::eval::score::{EngineKind, Loaded};
use crate::export::card::r4;
use anyhow::{ensure, Context, Result};
use edgegen_runtime::engine::{BayesAnswer, Vae};
use edgegen_runtime::guard::GuardBlock;
use edgegen_runtime::rng::Rng;
use serde_json::json;
use std::path::Path;

/// The class priors of `vae`: per class `y`, the Gaussian with the first two moments of
/// the aggregate posterior of its training frames (mean of μ; covariance of μ plus the mean
/// posterior variance), weight the class's frequency; encoded as a guard block (one
/// component per class, identity standardization, tied to the encoder's CRC).
pub fn fit_class_priors(vae: &Vae<'_>, images: &Images, classes: usize) -> Result<Vec<u8>> {
    let labels = images.labels.as_ref().context("class priors need labelled frames")?;
    let l = vae.latent();
    let posts = crate::parallel::map(images.len(), |i| -> Result<(Vec<f32>, Vec<f32>)> {
        let (mut mu, mut lv) = (vec![0f32; l], vec![0f32; l]);
        vae.encode(&mut vec![0u8; vae.arena_len()], images.image(i), &mut mu, &mut lv)?;
        Ok((mu, lv))
    });
    let posts: Vec<(Vec<f32>, Vec<f32>)> = posts.into_iter().collect::<Result<_>>()?;
    let mut packed = Vec::new();
    for y in 0..classes {
        let rows: Vec<&(Vec<f32>, Vec<f32>)> = posts.iter().zip(labels).filter(|(_, &c)| c as usize == y).map(|(p, _)| p).collect();
        ensure!(rows.len() > 2 * l, "class {y} has {} frames: too few to fit its {l}-d prior", rows.len());
        let n = rows.len() as f64;
        let mean: Vec<f64> = (0..l).map(|j| rows.iter().map(|r| r.0[j] as f64).sum::<f64>() / n).collect();
        let mut cov = vec![0f64; l * l];
        for r in &rows {
            for a in 0..l {
                for b in 0..l {
                    cov[a * l + b] += (r.0[a] as f64 - mean[a]) * (r.0[b] as f64 - mean[b]) / n;
                }
                cov[a * l + a] += (r.1[a] as f64).exp() / n;
            }
        }
        let c = super::gmm::component(n / images.len() as f64, mean, cov, 1e-6)?;
        packed.push((c.constant() as f32, c.mean.iter().map(|&v| v as f32).collect(), c.l.iter().map(|&v| v as f32).collect()));
    }
    let (zero, one) = (vec![0f32; l], vec![1f32; l]);
    Ok(GuardBlock::encode(vae.encoder_model().crc(), (0.0, 1.0), &zero, &one, &packed, &[]))
}

/// `edgegen eval bayes`: fits the class priors on `fit` training frames, then classifies
/// `count` test frames and scores every `eval ood` outlier set with the int8 VAE (`k`
/// importance samples); writes `bayes.json` and `class-priors.bin` into `out`.
pub fn run(vae_dir: &Path, fit: usize, count: usize, k: usize, out: &Path, progress: bool) -> Result<serde_json::Value> {
    ensure!(count >= 100 && fit >= 1000 && k >= 1, "--count at least 100, --fit at least 1000, --k at least 1");
    let loaded = Loaded::open(vae_dir, EngineKind::Int8)?;
    let Engines::VaeInt8(vae) = loaded.engines() else { anyhow::bail!("{}: give a VAE (int8)", vae_dir.display()) };
    let source = crate::export::card::Card::read(vae_dir)?.source();
    ensure!(source.is_fashion_mnist(), "Bayes' rule needs labelled frames: Fashion-MNIST models");
    let train = source.load(progress)?.train;
    let pick = data::permutation(train.len(), 21);
    let train = train.select(&pick[..fit.min(train.len())]);
    let block_bytes = fit_class_priors(vae, &train, 10)?;
    let classes = GuardBlock::parse(&block_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(out)?;
    data::write_atomic(&out.join("class-priors.bin"), &block_bytes)?;
    let EvalSets { inliers, sets } = eval_sets_of(&source, count, progress)?;
    let labels = inliers.labels.clone().context("test labels")?;
    let total = (inliers.len() + sets.iter().map(|s| s.images.len()).sum::<usize>()) as u64;
    let bar = crate::progress::bar(progress, total, "bayes");
    let answer_all = |imgs: &Images| -> Result<Vec<BayesAnswer>> {
        let r = crate::parallel::map(imgs.len(), |i| {
            bar.inc(1);
            let mut rng = Rng::with_stream(0, i as u64);
            vae.bayes(&mut vec![0u8; vae.arena_len()], imgs.image(i), k, &classes, &mut rng).map_err(anyhow::Error::from)
        });
        r.into_iter().collect()
    };
    let g = inliers.geometry()?;
    let coder = |imgs: &Images, i: usize| edgegen_runtime::complexity::bits_per_dim(imgs.image(i), g.width as usize);
    let inl = answer_all(&inliers)?;
    let accuracy = inl.iter().zip(&labels).filter(|(a, &l)| a.class == l as usize).count() as f64 / inl.len() as f64;
    let inl_bpd: Vec<f64> = inl.iter().map(|a| a.bpd()).collect();
    let inl_cc: Vec<f64> = inl.iter().enumerate().map(|(i, a)| a.bpd() - coder(&inliers, i)).collect();
    let mut rows = Vec::new();
    for s in &sets {
        let a = answer_all(&s.images)?;
        let bpd: Vec<f64> = a.iter().map(|x| x.bpd()).collect();
        let cc: Vec<f64> = a.iter().enumerate().map(|(i, x)| x.bpd() - coder(&s.images, i)).collect();
        rows.push(json!({
            "outliers": s.name, "frames": a.len(),
            "auroc_bits_per_dim": r4(auroc(&inl_bpd, &bpd)),
            "auroc_complexity_corrected": r4(auroc(&inl_cc, &cc)),
        }));
    }
    crate::progress::finish(&bar);
    let report = json!({
        "vae": crate::export::card::card_name(vae_dir, "vae"),
        "engine": "int8",
        "model": "the VAE's decoder p(x|z) with one full-covariance Gaussian prior p(z|y) per class (the first two moments of the class's aggregate posterior), p(y) the class frequencies",
        "fitted_on": format!("{} Fashion-MNIST training frames (permutation seed 21 of the first 55,000)", train.len()),
        "importance_samples": k,
        "test_frames": inl.len(),
        "accuracy": r4(accuracy),
        "mean_test_bits_per_dim": r4(inl_bpd.iter().sum::<f64>() / inl_bpd.len() as f64),
        "per_set": rows,
        "command": format!("cargo edgegen eval bayes --vae {} --fit {fit} --count {count} --k {k} --out {}", vae_dir.display(), out.display()),
        "note": "log p(x|y) by importance sampling from q(z|x) (the same k samples for every class); class = argmax p(x|y) p(y); outlier score: -log2 p(x)/dims with p(x) = sum_y p(x|y) p(y), raw and minus the lossless coder's bits (complexity-corrected)",
    });
    data::write_atomic(&out.join("bayes.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}
