//! Fréchet distance (FD) between image sets in the penultimate-layer features of a small
//! Fashion-MNIST classifier: the FID recipe with a domain-appropriate feature extractor.
//! `FD = |μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)`, with symmetric square roots from a
//! Jacobi eigendecomposition (f64).

use crate::data;
use crate::data::PIXELS;
use crate::families::loss::{images_to_tensor, to_vec};
use anyhow::Result;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use std::path::Path;

/// Feature dimensions of the classifier.
pub const FEATURES: usize = 128;

/// The feature extractor: three convolutions, a 128-unit layer (the features), 10 classes.
#[derive(Module, Debug)]
pub struct Classifier {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    fc: Linear,
    out: Linear,
}

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [k, k]).with_stride([stride, stride]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device)
}

impl Classifier {
    fn new(device: &Device) -> Self {
        Classifier {
            conv1: conv(1, 32, 3, 1, device),
            conv2: conv(32, 64, 4, 2, device),
            conv3: conv(64, 64, 4, 2, device),
            fc: LinearConfig::new(64 * 49, FEATURES).init(device),
            out: LinearConfig::new(FEATURES, 10).init(device),
        }
    }

    /// Penultimate features `[B, 128]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let h = relu(self.conv3.forward(relu(self.conv2.forward(relu(self.conv1.forward(x))))));
        let [b, c, hh, ww] = h.dims();
        relu(self.fc.forward(h.reshape([b, c * hh * ww])))
    }

    /// Class logits `[B, 10]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.out.forward(self.features(x))
    }
}

/// Trains the classifier (2 epochs, Adam, seed 7) or loads it from `cache` when present.
/// Returns it with its test accuracy.
pub fn classifier(cache: &Path, progress: bool) -> Result<(Classifier, f64)> {
    let device = Device::flex().autodiff();
    device.seed(7);
    let path = cache.join("classifier.bpk");
    let model = if path.exists() {
        Classifier::new(&device).try_load_file(&path).map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?
    } else {
        let train = data::fashion_mnist(data::Split::Train)?;
        let labels = train.labels.clone().expect("Fashion-MNIST has labels");
        let mut model = Classifier::new(&device);
        let mut optim = AdamConfig::new().init();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let batch = 128;
        let steps = train.len() / batch;
        let bar = crate::progress::bar(progress, (2 * steps) as u64, "classify");
        for epoch in 0..2 {
            let order = data::permutation(train.len(), 7 + epoch);
            for step in 0..steps {
                let idx = &order[step * batch..(step + 1) * batch];
                let imgs = train.select(idx);
                let y: Vec<i64> = idx.iter().map(|&i| labels[i] as i64).collect();
                let logits = model.forward(images_to_tensor(&imgs.pixels, batch, &device));
                let loss = loss_fn.forward(logits, Tensor::from_data(TensorData::new(y, [batch]), &device));
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(1e-3, model, grads);
                bar.inc(1);
            }
        }
        crate::progress::finish(&bar);
        std::fs::create_dir_all(cache)?;
        model.clone().save_file(&path).map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
        model
    };
    let model = model.valid();
    let test = data::fashion_mnist(data::Split::Test)?;
    let labels = test.labels.clone().expect("labels");
    let mut correct = 0usize;
    for start in (0..test.len()).step_by(500) {
        let logits = to_vec(model.forward(images_to_tensor(&test.pixels[start * PIXELS..(start + 500) * PIXELS], 500, &Device::flex())));
        for i in 0..500 {
            let row = &logits[i * 10..(i + 1) * 10];
            let best = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).expect("10 classes");
            correct += (best == labels[start + i] as usize) as usize;
        }
    }
    Ok((model, correct as f64 / test.len() as f64))
}

/// Mean and covariance of the features of `pixels` (n·784 values).
pub fn feature_stats(model: &Classifier, pixels: &[u8]) -> (Vec<f64>, Vec<f64>) {
    stats(&features_and_classes(model, pixels).0, FEATURES)
}

/// Mean and (unbiased) covariance of `n` rows of `d` values.
pub fn stats(rows: &[f32], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() / d;
    let mut mean = vec![0f64; d];
    for r in rows.chunks(d) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0f64; d * d];
    let mut centered = vec![0f64; d];
    for r in rows.chunks(d) {
        for j in 0..d {
            centered[j] = r[j] as f64 - mean[j];
        }
        for i in 0..d {
            let ci = centered[i];
            for j in i..d {
                cov[i * d + j] += ci * centered[j];
            }
        }
    }
    for i in 0..d {
        for j in i..d {
            let v = cov[i * d + j] / (n as f64 - 1.0);
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
    }
    (mean, cov)
}

/// Eigenvalues and eigenvectors (columns of the returned row-major matrix) of a symmetric
/// `d`×`d` matrix, by cyclic Jacobi rotations.
pub fn symmetric_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0f64; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..d).flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * d + j].powi(2)).sum();
        let scale: f64 = (0..d).map(|i| a[i * d + i].powi(2)).sum::<f64>().max(1e-300);
        if off <= 1e-22 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut c = vec![0f64; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            for j in 0..d {
                c[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    c
}

/// Symmetric positive semi-definite square root.
pub fn sqrt_psd(a: &[f64], d: usize) -> Vec<f64> {
    let (vals, vecs) = symmetric_eigen(a, d);
    let mut out = vec![0f64; d * d];
    for k in 0..d {
        let s = vals[k].max(0.0).sqrt();
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] += vecs[i * d + k] * s * vecs[j * d + k];
            }
        }
    }
    out
}

/// Fréchet distance between two Gaussians (means, covariances of dimension `d`).
pub fn frechet_distance(m1: &[f64], c1: &[f64], m2: &[f64], c2: &[f64], d: usize) -> f64 {
    let mean_term: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b).powi(2)).sum();
    let s1 = sqrt_psd(c1, d);
    let m = matmul(&matmul(&s1, c2, d), &s1, d);
    let (vals, _) = symmetric_eigen(&m, d);
    let tr_sqrt: f64 = vals.iter().map(|v| v.max(0.0).sqrt()).sum();
    let tr = |c: &[f64]| (0..d).map(|i| c[i * d + i]).sum::<f64>();
    mean_term + tr(c1) + tr(c2) - 2.0 * tr_sqrt
}

/// The FD figures of the GAN card.
#[derive(Debug, Clone)]
pub struct FdReport {
    /// 10k GAN samples vs the test set.
    pub gan: f64,
    /// 10k training images vs the test set: the floor a perfect model reaches.
    pub floor: f64,
    /// The VAE's samples vs the test set.
    pub vae: f64,
    /// Samples (and floor images) each FD was measured on.
    pub samples: usize,
    /// How the figures were measured.
    pub note: String,
}

/// FD of `pixels` (n·784 values) against the test set.
pub fn fd_against_test(model: &Classifier, pixels: &[u8], test_stats: &(Vec<f64>, Vec<f64>)) -> f64 {
    let (m, c) = feature_stats(model, pixels);
    frechet_distance(&m, &c, &test_stats.0, &test_stats.1, FEATURES)
}

/// Mean and covariance of the test set's features: what every FD is measured against.
pub fn test_stats(model: &Classifier) -> Result<(Vec<f64>, Vec<f64>)> {
    Ok(feature_stats(model, &data::fashion_mnist(data::Split::Test)?.pixels))
}

/// Measures the GAN, the floor and the VAE (samples from the shipped `vae_dir` through tract)
/// against `test_stats` ([`test_stats`]).
pub fn report(
    model: &Classifier,
    accuracy: f64,
    gan_samples: &[u8],
    vae_dir: &Path,
    test_stats: &(Vec<f64>, Vec<f64>),
) -> Result<FdReport> {
    let n = gan_samples.len() / PIXELS;
    let train = data::fashion_mnist(data::Split::Train)?.first(Some(n));
    let n = n.min(train.len());
    eprintln!("FD: the floor ({n} training images), the GAN and the VAE ({n} samples each)");
    let floor = fd_against_test(model, &train.pixels, test_stats);
    let gan = fd_against_test(model, gan_samples, test_stats);
    let vae = edgegen_runtime::onnx::OnnxVae::load(vae_dir)?;
    let mut vae_samples = vec![0u8; n * PIXELS];
    for (i, img) in vae_samples.chunks_mut(PIXELS).enumerate() {
        vae.sample(i as u64, img)?;
    }
    let vae_fd = fd_against_test(model, &vae_samples, test_stats);
    Ok(FdReport {
        gan,
        floor,
        vae: vae_fd,
        samples: n,
        note: format!(
            "Frechet distance in the 128-d penultimate features of a Fashion-MNIST classifier (3 conv + 2 dense, 2 epochs, test accuracy {:.2}%) between {n} images and the 10,000 test images; floor: the first {n} training images; GAN: seeds 0..{}; VAE: seeds 0..{} through {} (pixels sampled)",
            accuracy * 100.0,
            n - 1,
            n - 1,
            vae_dir.display()
        ),
    })
}

/// A conditional generator measured class by class: `samples[k]` drawn for class k.
/// Returns the share of all samples the classifier puts in the class they were drawn for,
/// each class's FD against the test images *labelled* k, and the floor: as many training
/// images labelled k (the first ones) against the same test images.
pub fn conditional(model: &Classifier, samples: &[Vec<u8>]) -> Result<(f64, Vec<f64>, Vec<f64>)> {
    let test = data::fashion_mnist(data::Split::Test)?;
    let train = data::fashion_mnist(data::Split::Train)?;
    let (test_labels, train_labels) = (test.labels.as_deref().expect("labels"), train.labels.as_deref().expect("labels"));
    let (tf, _) = features_and_classes(model, &test.pixels);
    let (mut agree, mut total) = (0usize, 0usize);
    let (mut fd, mut floor) = (Vec::new(), Vec::new());
    for (k, s) in samples.iter().enumerate() {
        let (sf, sc) = features_and_classes(model, s);
        agree += sc.iter().filter(|&&c| c == k).count();
        total += sc.len();
        let t: Vec<f32> =
            tf.chunks(FEATURES).zip(test_labels).filter(|(_, &y)| y as usize == k).flat_map(|(r, _)| r.iter().copied()).collect();
        fd.push(terms(&sf, &t).fd);
        let picks: Vec<usize> = (0..train.len()).filter(|&i| train_labels[i] as usize == k).take(sc.len()).collect();
        let (ff, _) = features_and_classes(model, &train.select(&picks).pixels);
        floor.push(terms(&ff, &t).fd);
    }
    Ok((agree as f64 / total.max(1) as f64, fd, floor))
}

/// A conditional generator measured class by class ([`conditional_report`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConditionalReport {
    /// Samples drawn for each class (seeds 0..n-1).
    pub per_class: usize,
    /// Share of all samples the FD classifier puts in the class they were drawn for.
    pub agreement: f64,
    /// The same share by the shipped classifier on the int8 engine, when it was given.
    pub agreement_shipped: Option<f64>,
    /// Per class: name, both agreements, FD against the test images of that class and the
    /// floor's (as many training images of the class).
    pub classes: Vec<ConditionalRow>,
}

/// One row of [`ConditionalReport::classes`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConditionalRow {
    /// Class name.
    pub class: &'static str,
    /// Share of this class's samples the FD classifier names this class.
    pub agreement: f64,
    /// The same by the shipped classifier.
    pub agreement_shipped: Option<f64>,
    /// FD of the class's samples against the test images labelled with it.
    pub fd: f64,
    /// FD of as many training images of the class against the same test images.
    pub floor: f64,
}

/// Draws `count / classes` samples of each class from a conditional generator (seeds
/// 0..n-1, the class asked for) and measures each class: how often the FD classifier and the
/// shipped int8 classifier in `label_dir` (when it has one) name the class asked for, and the
/// within-class FD against the floor.
pub fn conditional_report(
    loaded: &crate::engines::Loaded,
    model: &Classifier,
    count: usize,
    label_dir: &Path,
) -> Result<ConditionalReport> {
    let k = loaded.classes();
    anyhow::ensure!(
        k == CLASSES.len(),
        "a conditional generator of {k} classes: the FD classifier knows Fashion-MNIST's {}",
        CLASSES.len()
    );
    let per_class = count.div_ceil(k);
    let bar = crate::progress::bar(true, (per_class * k) as u64, "classes");
    bar.set_message(format!("{per_class} samples of each of the {k} classes"));
    let samples: Vec<Vec<u8>> = (0..k)
        .map(|c| {
            let images = crate::parallel::map(per_class, |i| {
                let s = loaded.sample_class(i as u64, Some(c)).map(|(x, _)| x);
                bar.inc(1);
                s
            });
            Ok(images.into_iter().collect::<Result<Vec<_>>>()?.concat())
        })
        .collect::<Result<_>>()?;
    crate::progress::finish(&bar);
    let shipped = match label_dir.join("classifier.egm").exists() {
        true => Some(crate::engines::Loaded::open(label_dir, crate::engines::EngineKind::Int8)?),
        false => None,
    };
    let mut rows = Vec::with_capacity(k);
    let (mut agree, mut agree_shipped) = (0usize, 0usize);
    for (c, s) in samples.iter().enumerate() {
        let (_, predicted) = features_and_classes(model, s);
        let hits = predicted.iter().filter(|&&p| p == c).count();
        agree += hits;
        let shipped_hits = match &shipped {
            Some(l) => {
                let labels = crate::parallel::map(per_class, |i| l.classify(&s[i * PIXELS..(i + 1) * PIXELS]).map(|a| a.class));
                let labels = labels.into_iter().collect::<Result<Vec<_>>>()?;
                Some(labels.iter().filter(|&&p| p == c).count())
            }
            None => None,
        };
        agree_shipped += shipped_hits.unwrap_or(0);
        rows.push((c, hits, shipped_hits));
    }
    let (_, fd, floor) = conditional(model, &samples)?;
    let n = (per_class * k) as f64;
    Ok(ConditionalReport {
        per_class,
        agreement: agree as f64 / n,
        agreement_shipped: shipped.as_ref().map(|_| agree_shipped as f64 / n),
        classes: rows
            .into_iter()
            .map(|(c, hits, shipped_hits)| ConditionalRow {
                class: CLASSES[c],
                agreement: hits as f64 / per_class as f64,
                agreement_shipped: shipped_hits.map(|h| h as f64 / per_class as f64),
                fd: fd[c],
                floor: floor[c],
            })
            .collect(),
    })
}

impl std::fmt::Display for ConditionalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{:.1}%", 100.0 * v));
        writeln!(
            f,
            "\nconditional: {} samples of each class; the class asked for is named by the FD classifier {} and by the shipped classifier {}",
            self.per_class,
            pct(Some(self.agreement)),
            pct(self.agreement_shipped)
        )?;
        writeln!(f, "{:<14}{:>12}{:>12}{:>12}{:>12}{:>8}", "class", "agree (FD)", "shipped", "FD", "floor", "ratio")?;
        for r in &self.classes {
            writeln!(
                f,
                "{:<14}{:>12}{:>12}{:>12.3}{:>12.3}{:>8.2}",
                r.class,
                pct(Some(r.agreement)),
                pct(r.agreement_shipped),
                r.fd,
                r.floor,
                r.fd / r.floor
            )?;
        }
        Ok(())
    }
}

/// Fashion-MNIST's class names, by label.
pub const CLASSES: [&str; 10] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Features `[n·128]` and predicted classes of `pixels` (n·784 values).
pub fn features_and_classes(model: &Classifier, pixels: &[u8]) -> (Vec<f32>, Vec<usize>) {
    let n = pixels.len() / PIXELS;
    let (mut feats, mut classes) = (Vec::with_capacity(n * FEATURES), Vec::with_capacity(n));
    for start in (0..n).step_by(500) {
        let b = (n - start).min(500);
        let f = model.features(images_to_tensor(&pixels[start * PIXELS..(start + b) * PIXELS], b, &Device::flex()));
        let logits = to_vec(model.out.forward(f.clone()));
        classes.extend(logits.chunks(10).map(|l| (0..10).fold(0, |best, k| if l[k] > l[best] { k } else { best })));
        feats.extend(to_vec(f));
    }
    (feats, classes)
}

/// One image set's FD against the test set, split into its two terms.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct FdTerms {
    /// The whole distance.
    pub fd: f64,
    /// `|μ₁ − μ₂|²`: where the features sit on average.
    pub mean_term: f64,
    /// The rest: how they spread.
    pub covariance_term: f64,
}

fn terms(a: &[f32], b: &[f32]) -> FdTerms {
    let ((m1, c1), (m2, c2)) = (stats(a, FEATURES), stats(b, FEATURES));
    let fd = frechet_distance(&m1, &c1, &m2, &c2, FEATURES);
    let mean_term: f64 = m1.iter().zip(&m2).map(|(x, y)| (x - y).powi(2)).sum();
    FdTerms { fd, mean_term, covariance_term: fd - mean_term }
}

/// Where a generator's FD comes from: its two terms, the classes the classifier sees in its
/// samples, and the FD within each class (samples and the floor's training images of a
/// predicted class against the test images the classifier puts in that class).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Breakdown {
    /// Samples vs test.
    pub samples: FdTerms,
    /// The first 10,000 training images vs test (the floor).
    pub floor: FdTerms,
    /// Per class: name, share of the test images, of the samples, of the floor images; FD of
    /// the samples and of the floor images within the class (`None` below 10 images).
    pub classes: Vec<ClassRow>,
}

/// One row of [`Breakdown::classes`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClassRow {
    /// Class name.
    pub class: &'static str,
    /// Fraction of the test images predicted as this class.
    pub test_share: f64,
    /// Fraction of the samples.
    pub samples_share: f64,
    /// Within-class FD of the samples.
    pub samples_fd: Option<f64>,
    /// Within-class FD of the floor's training images.
    pub floor_fd: Option<f64>,
}

/// Measures [`Breakdown`] for `samples` (n·784 pixels).
pub fn breakdown(model: &Classifier, samples: &[u8]) -> Result<Breakdown> {
    let test = data::fashion_mnist(data::Split::Test)?;
    let train = data::fashion_mnist(data::Split::Train)?.slice(0..10_000);
    let (tf, tc) = features_and_classes(model, &test.pixels);
    let (sf, sc) = features_and_classes(model, samples);
    let (ff, fc) = features_and_classes(model, &train.pixels);
    let of_class = |f: &[f32], c: &[usize], k: usize| -> Vec<f32> {
        f.chunks(FEATURES).zip(c).filter(|(_, &ck)| ck == k).flat_map(|(row, _)| row.iter().copied()).collect()
    };
    let share = |c: &[usize], k: usize| c.iter().filter(|&&x| x == k).count() as f64 / c.len().max(1) as f64;
    let classes = (0..10)
        .map(|k| {
            let t = of_class(&tf, &tc, k);
            let within = |f: &[f32], c: &[usize]| {
                let x = of_class(f, c, k);
                (x.len() >= 10 * FEATURES && t.len() >= 10 * FEATURES).then(|| terms(&x, &t).fd)
            };
            ClassRow {
                class: CLASSES[k],
                test_share: share(&tc, k),
                samples_share: share(&sc, k),
                samples_fd: within(&sf, &sc),
                floor_fd: within(&ff, &fc),
            }
        })
        .collect();
    Ok(Breakdown { samples: terms(&sf, &tf), floor: terms(&ff, &tf), classes })
}

impl std::fmt::Display for Breakdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "FD against the 10,000 test images in the classifier's 128-d features")?;
        writeln!(f, "{:<26}{:>10}{:>14}{:>18}", "", "FD", "mean term", "covariance term")?;
        for (name, t) in [("samples", &self.samples), ("floor (10,000 training)", &self.floor)] {
            writeln!(f, "{name:<26}{:>10.3}{:>14.3}{:>18.3}", t.fd, t.mean_term, t.covariance_term)?;
        }
        writeln!(f, "\nby predicted class (within-class FD: samples, floor)")?;
        writeln!(f, "{:<14}{:>12}{:>15}{:>12}{:>12}", "class", "test share", "samples share", "FD samples", "FD floor")?;
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
        for r in &self.classes {
            writeln!(
                f,
                "{:<14}{:>11.1}%{:>14.1}%{:>12}{:>12}",
                r.class,
                100.0 * r.test_share,
                100.0 * r.samples_share,
                opt(r.samples_fd),
                opt(r.floor_fd)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_and_sqrt_reconstruct() {
        let d = 4;
        let a = [4.0, 1.0, 0.5, 0.0, 1.0, 3.0, 0.2, 0.1, 0.5, 0.2, 2.0, 0.3, 0.0, 0.1, 0.3, 1.0];
        let s = sqrt_psd(&a, d);
        let back = matmul(&s, &s, d);
        for (x, y) in back.iter().zip(&a) {
            assert!((x - y).abs() < 1e-9);
        }
        let (vals, _) = symmetric_eigen(&a, d);
        let trace: f64 = vals.iter().sum();
        assert!((trace - 10.0).abs() < 1e-9);
    }

    #[test]
    fn frechet_distance_of_known_gaussians() {
        let d = 2;
        let id = [1.0, 0.0, 0.0, 1.0];
        assert!(frechet_distance(&[0.0, 0.0], &id, &[0.0, 0.0], &id, d).abs() < 1e-9);
        // Means 3 apart, variances 1 and 4 on each axis: 9 + 2·(1 + 4 − 2·2) = 11.
        let four = [4.0, 0.0, 0.0, 4.0];
        assert!((frechet_distance(&[0.0, 0.0], &id, &[3.0, 0.0], &four, d) - 11.0).abs() < 1e-9);
    }

    #[test]
    fn fd_terms_split_the_distance() {
        // Rows of 128 values: set b is set a shifted by 0.5 in every feature and scaled by 2.
        let mut rng = edgegen_runtime::rng::Rng::new(3);
        let mut a = vec![0f32; 400 * FEATURES];
        rng.fill_normal(&mut a);
        let b: Vec<f32> = a.iter().map(|x| 2.0 * x + 0.5).collect();
        let t = terms(&a, &b);
        assert!((t.mean_term + t.covariance_term - t.fd).abs() < 1e-9);
        // The means differ by exactly 0.5 + (2 − 1)·mean(a) per feature.
        let (ma, _) = stats(&a, FEATURES);
        let want: f64 = ma.iter().map(|m| (0.5 + m).powi(2)).sum();
        assert!((t.mean_term - want).abs() < 1e-6 * want.max(1.0), "{} vs {want}", t.mean_term);
        // Σ_b = 4 Σ_a, so the covariance term is tr(Σ_a) (1 + 4 − 2·2).
        let tr: f64 = {
            let (_, c) = stats(&a, FEATURES);
            (0..FEATURES).map(|i| c[i * FEATURES + i]).sum()
        };
        assert!((t.covariance_term - tr).abs() < 1e-3 * tr, "{} vs {tr}", t.covariance_term);
        assert!(terms(&a, &a).fd.abs() < 1e-6);
    }
}
