//! `edgegen eval ood`, `statistics`, `selective` and `fd`.

use anyhow::{bail, Result};
use edgegen_trainer::eval::score::EngineKind;
use std::path::{Path, PathBuf};

/// Which evaluation.
#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Outlier rejection: AUROC, AUPRC and false accepts of every score, Fashion-MNIST vs
    /// MNIST and vs corrupted frames, on the int8 engines; JSON report and ROC plot.
    Ood {
        /// Model directories (PixelCNN and VAE).
        #[arg(long, default_values = ["models/pixelcnn-fmnist", "models/vae-fmnist"])]
        models: Vec<PathBuf>,
        /// Images per set.
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Where the report and the plot go (`--out models/ood` replaces the bundled report).
        #[arg(long, default_value = "out/ood")]
        out: PathBuf,
        /// Hide progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Every statistic the guard could use, per frame, as CSV: the PixelCNN's and its
    /// background model's bits (whole frame, halves, worst line and patch), the lossless
    /// coder's bits and the VAE encoder's posterior, on validation frames, test frames and
    /// every outlier set of `eval ood`.
    Statistics {
        /// The PixelCNN (its background model is the sibling `-bg` directory).
        #[arg(long, default_value = "models/pixelcnn-fmnist")]
        model: PathBuf,
        /// The VAE whose encoder adds the posterior's statistics.
        #[arg(long)]
        vae: Option<PathBuf>,
        /// Frames per set.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// The CSV file.
        #[arg(long, default_value = "out/statistics.csv")]
        out: PathBuf,
        /// Hide progress.
        #[arg(long)]
        quiet: bool,
    },
    /// Selective classification: the classifier answers only for frames the guard accepts.
    /// Accuracy on the accepted test frames, coverage, the fraction of each outlier set of
    /// `eval ood` that gets a label, and the accuracy-coverage curve (int8 engines).
    Selective {
        /// The classifier.
        #[arg(long, default_value = "models/classifier-fmnist")]
        classifier: PathBuf,
        /// The guard: a calibrated PixelCNN.
        #[arg(long, default_value = "models/pixelcnn-fmnist")]
        guard: PathBuf,
        /// Frames per set.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Where selective.json and accuracy-coverage.png go (`--out models/selective`
        /// replaces the bundled report).
        #[arg(long, default_value = "out/selective")]
        out: PathBuf,
        /// Hide progress.
        #[arg(long)]
        quiet: bool,
    },
    /// Bayes' rule: the VAE with a Gaussian prior per class as a class-conditional generative
    /// model, classifying by argmax p(x|y) p(y) and scoring outliers by p(x) = sum_y p(x|y)
    /// p(y) (int8 engine); accuracy and AUROCs against the outlier sets of `eval ood`.
    Bayes {
        /// The VAE.
        #[arg(long, default_value = "models/vae-fmnist")]
        vae: PathBuf,
        /// Training frames the class priors are fitted on.
        #[arg(long, default_value_t = 10_000)]
        fit: usize,
        /// Frames per set.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Importance samples per frame.
        #[arg(long, default_value_t = 4)]
        k: usize,
        /// Where bayes.json and class-priors.bin go.
        #[arg(long, default_value = "out/bayes")]
        out: PathBuf,
        /// Hide progress.
        #[arg(long)]
        quiet: bool,
    },
    /// Where a generator's Frechet distance comes from: its mean and covariance terms, the
    /// classes in its samples and the FD within each class, beside the floor's.
    Fd {
        /// Model directory (GAN, VAE or PixelCNN).
        #[arg(long, default_value = "models/gan-fmnist")]
        model: PathBuf,
        /// Engine drawing the samples.
        #[arg(long, value_enum, default_value = "tract")]
        engine: EngineKind,
        /// Samples (seeds 0..N-1).
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// The FD classifier's cache (trained there, 2 epochs, when absent).
        #[arg(long, default_value = "runs/fd-classifier")]
        classifier: PathBuf,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// A conditional GAN's samples are also labelled by this classifier (the shipped
        /// one, on the int8 engine): how often it names the class each was drawn for.
        #[arg(long, default_value = "models/classifier-fmnist")]
        label_classifier: PathBuf,
    },
}

/// Runs `edgegen eval`.
pub fn run(what: What) -> Result<()> {
    match what {
        What::Ood { models, count, out, quiet } => {
            let dirs: Vec<&Path> = models.iter().map(|p| p.as_path()).collect();
            edgegen_trainer::eval::ood::run(&dirs, count, &out, !quiet).map(|_| ())
        }
        What::Statistics { model, vae, count, out, quiet } => {
            edgegen_trainer::eval::features::dump(&model, vae.as_deref(), count, &out, !quiet)
        }
        What::Selective { classifier, guard, count, out, quiet } => {
            let r = edgegen_trainer::eval::classify::selective(&classifier, &guard, count, &out, !quiet)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        What::Bayes { vae, fit, count, k, out, quiet } => {
            let r = edgegen_trainer::eval::bayes::run(&vae, fit, count, k, &out, !quiet)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        What::Fd { model, engine, count, classifier, json, label_classifier } => {
            fd(&model, engine, count, &classifier, json.as_deref(), &label_classifier)
        }
    }
}

fn fd(dir: &Path, engine: EngineKind, count: usize, cache: &Path, json: Option<&Path>, label_classifier: &Path) -> Result<()> {
    if !(1_000..=60_000).contains(&count) {
        bail!("--count must be in 1000..=60000 (a 128-d covariance needs many samples)");
    }
    let loaded = edgegen_trainer::eval::score::Loaded::open(dir, engine)?;
    let (classifier, accuracy) = edgegen_trainer::eval::fd::classifier(cache, true)?;
    // A PixelCNN draws a pass per row: 10,000 samples take a while, so they count up.
    let bar = edgegen_trainer::progress::bar(true, count as u64, "sample");
    bar.set_message(format!("{} samples ({engine:?})", loaded.family()));
    let samples = edgegen_trainer::parallel::map(count, |i| {
        let s = loaded.sample(i as u64);
        bar.inc(1);
        s
    });
    edgegen_trainer::progress::finish(&bar);
    let samples = samples.into_iter().collect::<Result<Vec<_>>>()?.concat();
    let b = edgegen_trainer::eval::fd::breakdown(&classifier, &samples)?;
    println!("{}: {count} samples, seeds 0..{}; classifier test accuracy {:.2}%", dir.display(), count - 1, accuracy * 100.0);
    print!("{b}");
    let mut report = serde_json::to_value(&b)?;
    if loaded.classes() > 0 {
        let c = edgegen_trainer::eval::fd::conditional_report(&loaded, &classifier, count, label_classifier)?;
        print!("{c}");
        report["conditional"] = serde_json::to_value(&c)?;
    }
    if let Some(path) = json {
        edgegen_trainer::data::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    }
    Ok(())
}
