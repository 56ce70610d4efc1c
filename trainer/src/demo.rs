//! `edgegen demo`: the main job on the bundled models and frames. Samples images from each
//! bundled model and scores each bundled sensor frame, printing bits/dim per frame and the
//! guard's verdict where a threshold is calibrated.

use crate::data::{self, Images};
use crate::eval::score::{EngineKind, Loaded};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The bundled frame sets: (file, what the frames are).
pub const FRAME_SETS: [(&str, &str); 3] = [
    ("fashion-mnist-test.idx", "Fashion-MNIST test images (in distribution)"),
    ("mnist-digits.idx", "MNIST digits (out of distribution)"),
    ("sensor-faults.idx", "sensor faults: Fashion-MNIST test images corrupted, one kind after another (out of distribution)"),
];

/// Writes the bundled frames (`edgegen data frames`): the first `n` Fashion-MNIST test
/// images, `n` MNIST digits spread over the file, and `n` corrupted test images (the next
/// `n`, one corruption kind after another).
pub fn write_frames(dir: &Path, n: usize) -> Result<()> {
    let test = data::fashion_mnist(data::Split::Test)?;
    let mnist = data::mnist_digits()?;
    anyhow::ensure!(n >= 1 && 2 * n <= test.len() && n <= mnist.len(), "--count must be in 1..={}", test.len() / 2);
    let picks: Vec<usize> = (0..n).map(|i| i * mnist.len() / n + 7).collect();
    let mut fm = test.slice(0..n);
    fm.labels = None;
    let mut mn = mnist.select(&picks);
    mn.labels = None;
    // Sensor faults: the next `n` test images, corrupted with the kinds of `eval ood` in turn.
    let mut rng = edgegen_runtime::rng::Rng::with_stream(5, 0);
    let pixels: Vec<u8> = (0..n)
        .flat_map(|i| {
            crate::eval::ood::corrupt(crate::eval::ood::CORRUPTIONS[i % crate::eval::ood::CORRUPTIONS.len()], test.image(n + i), &mut rng)
        })
        .collect();
    let faults = data::Images::gray(28, 28, pixels);
    data::write_atomic(&dir.join(FRAME_SETS[0].0), &data::encode_idx_images(&fm))?;
    data::write_atomic(&dir.join(FRAME_SETS[1].0), &data::encode_idx_images(&mn))?;
    data::write_atomic(&dir.join(FRAME_SETS[2].0), &data::encode_idx_images(&faults))?;
    Ok(())
}

/// The second use case's frame sets (32×32 RGB tiles of a microscope slide): (file, what).
pub const SLIDE_FRAME_SETS: [(&str, &str); 2] = [
    ("slide-test.idx", "slide tiles from the held-out test band (in distribution)"),
    ("slide-defects.idx", "slide tiles with defects drawn on them, one kind after another (out of distribution)"),
];

/// Writes the second use case's bundled frames: `n` test tiles of the slide (spread over the
/// test band) and `n` other test tiles with the defects of `eval ood` drawn on them in turn,
/// as colour IDX files (n × 3 × 32 × 32).
pub fn write_slide_frames(dir: &Path, n: usize) -> Result<()> {
    let source = data::Source::Folder {
        path: data::slide_tiles_dir(),
        channels: 3,
        height: data::SLIDE_TILE as u16,
        width: data::SLIDE_TILE as u16,
        resize: false,
    };
    let test = source.load(false)?.test;
    anyhow::ensure!(n >= 1 && 2 * n <= test.len(), "--count must be in 1..={}", test.len() / 2);
    let g = test.geometry()?;
    let inliers: Vec<usize> = (0..n).map(|i| i * test.len() / n).collect();
    let others: Vec<usize> = (0..n).map(|i| (i * test.len() / n + test.len() / (2 * n)).min(test.len() - 1)).collect();
    let mut rng = edgegen_runtime::rng::Rng::with_stream(6, 0);
    let defects = crate::eval::defects::DEFECTS;
    let pixels: Vec<u8> = others
        .iter()
        .enumerate()
        .flat_map(|(i, &j)| crate::eval::defects::draw(defects[i % defects.len()], test.image(j), g, &mut rng))
        .collect();
    data::write_atomic(&dir.join(SLIDE_FRAME_SETS[0].0), &data::encode_idx_images(&test.select(&inliers)))?;
    data::write_atomic(
        &dir.join(SLIDE_FRAME_SETS[1].0),
        &data::encode_idx_images(&Images { pixels, labels: None, ..test.select(&others) }),
    )?;
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
    /// Engine.
    pub engine: EngineKind,
}

/// The bundled models the demo uses, in order, with how many samples to draw.
const MODELS: [(&str, usize); 5] =
    [("pixelcnn-fmnist", 8), ("vae-fmnist", 16), ("flow-fmnist", 16), ("gan-fmnist", 16), ("cgan-fmnist", 20)];

/// The classifier that labels the frames the guard accepts.
const CLASSIFIER: &str = "classifier-fmnist";

/// The second use case's guard model.
const SLIDE_MODEL: &str = "pixelcnn-ihc";

/// The second use case's generator.
const SLIDE_GAN: &str = "gan-ihc";

/// Runs the demo, printing to stdout: samples from every bundled model, then every
/// bundled frame's bits/dim under each likelihood model and the guards' verdicts.
pub fn run(opts: &DemoOptions) -> Result<()> {
    println!("edgegen demo: bundled models in {}, {:?} engine", opts.models.display(), opts.engine);
    let mut scorers = Vec::new();
    for (name, count) in MODELS {
        let dir = opts.models.join(name);
        if !dir.join("card.json").exists() {
            println!("  {name}: not bundled, skipped");
            continue;
        }
        let loaded = Loaded::open(&dir, opts.engine).with_context(|| format!("loading {}", dir.display()))?;
        let started = std::time::Instant::now();
        let path = opts.out.join(format!("{name}-samples.png"));
        let k = loaded.classes();
        if k > 0 {
            // A conditional generator: every class asked for, one column each, a row per seed.
            let rows = count.div_ceil(k);
            let images = crate::parallel::map(rows * k, |i| loaded.sample_class((i / k) as u64, Some(i % k)).map(|(x, _)| x));
            let images = images.into_iter().collect::<Result<Vec<_>>>()?.concat();
            crate::data::imageio::write_frame_grid(&path, &images, loaded.geometry(), k, 3)?;
            println!(
                "  {name}: each of its {k} classes asked for (seeds 0..{}) in {:.1} s -> {}",
                rows - 1,
                started.elapsed().as_secs_f64(),
                path.display()
            );
            continue;
        }
        let images = crate::parallel::map(count, |i| loaded.sample(i as u64));
        let images = images.into_iter().collect::<Result<Vec<_>>>()?.concat();
        crate::data::imageio::write_frame_grid(&path, &images, loaded.geometry(), 8, 3)?;
        println!("  {name}: {count} samples (seeds 0..{}) in {:.1} s -> {}", count - 1, started.elapsed().as_secs_f64(), path.display());
        if loaded.family().has_likelihood() {
            scorers.push((name, loaded));
        }
    }
    // The classifier answers for the frames the first guard accepts.
    let cdir = opts.models.join(CLASSIFIER);
    let classifier = if cdir.join("card.json").exists() {
        let l = Loaded::open(&cdir, opts.engine).with_context(|| format!("loading {}", cdir.display()))?;
        let names = match crate::export::card::Card::read(&cdir)?.family {
            crate::export::card::FamilyCard::Classifier(c) => c.classes,
            _ => anyhow::bail!("{} is not a classifier", cdir.display()),
        };
        println!("  {CLASSIFIER}: labels the frames the {} guard accepts", scorers.first().map_or("first", |s| s.0));
        Some((l, names))
    } else {
        None
    };
    score_table(&scorers, classifier.as_ref(), &opts.frames, &FRAME_SETS)?;

    // The second use case: a colour PixelCNN on 32×32 tiles of a microscope slide.
    let dir = opts.models.join(SLIDE_MODEL);
    if !dir.join("card.json").exists() || !opts.frames.join(SLIDE_FRAME_SETS[0].0).exists() {
        println!("\n{SLIDE_MODEL}: not bundled, skipped");
        return Ok(());
    }
    let loaded = Loaded::open(&dir, opts.engine).with_context(|| format!("loading {}", dir.display()))?;
    println!("\nsecond use case: {SLIDE_MODEL}, {} frames of a microscope slide", loaded.geometry());
    let started = std::time::Instant::now();
    let images = crate::parallel::map(4, |i| loaded.sample(i as u64));
    let images = images.into_iter().collect::<Result<Vec<_>>>()?.concat();
    let path = opts.out.join(format!("{SLIDE_MODEL}-samples.png"));
    crate::data::imageio::write_frame_grid(&path, &images, loaded.geometry(), 4, 3)?;
    println!("  {SLIDE_MODEL}: 4 samples (seeds 0..3) in {:.1} s -> {}", started.elapsed().as_secs_f64(), path.display());
    let gan_dir = opts.models.join(SLIDE_GAN);
    if gan_dir.join("card.json").exists() {
        let gan = Loaded::open(&gan_dir, opts.engine).with_context(|| format!("loading {}", gan_dir.display()))?;
        let started = std::time::Instant::now();
        let images = crate::parallel::map(16, |i| gan.sample(i as u64));
        let images = images.into_iter().collect::<Result<Vec<_>>>()?.concat();
        let path = opts.out.join(format!("{SLIDE_GAN}-samples.png"));
        crate::data::imageio::write_frame_grid(&path, &images, gan.geometry(), 8, 3)?;
        println!("  {SLIDE_GAN}: 16 samples (seeds 0..15) in {:.1} s -> {}", started.elapsed().as_secs_f64(), path.display());
    }
    score_table(&[(SLIDE_MODEL, loaded)], None, &opts.frames, &SLIDE_FRAME_SETS)
}

/// Prints every frame's bits/dim under each scorer and the guards' verdicts, set by set, and
/// the classifier's label where the first guard accepts the frame (its class in brackets
/// where it rejects: the label that is not given).
fn score_table(
    scorers: &[(&str, Loaded)],
    classifier: Option<&(Loaded, Vec<String>)>,
    frames_dir: &Path,
    sets: &[(&str, &str)],
) -> Result<()> {
    println!();
    print!("{:<26}", "frame");
    for (name, l) in scorers {
        let head = format!("{name} bpd");
        print!(" {head:>22}");
        if let Some((kind, _, t)) = l.guard() {
            print!(" {:>22}", format!("{} <= {t:.2}?", kind.name()));
        }
    }
    if classifier.is_some() {
        print!("  label");
    }
    println!();
    for &(file, what) in sets {
        let path = frames_dir.join(file);
        let frames: Images = data::read_idx_images(&path)?;
        println!("# {what}");
        let mut sums = vec![0f64; scorers.len()];
        for i in 0..frames.len() {
            print!("{:<26}", format!("{file}#{i}"));
            let mut first_verdict = None;
            for (j, (_, l)) in scorers.iter().enumerate() {
                let stats = l.statistics(frames.image(i), i).with_context(|| format!("{}#{i}", path.display()))?;
                sums[j] += stats.bpd;
                print!(" {:>22.3}", stats.bpd);
                if let Some((score, _, accept)) = crate::eval::score::verdict(l, &stats)? {
                    print!(" {:>22}", format!("{score:.3} {}", if accept { "accept" } else { "REJECT" }));
                    first_verdict.get_or_insert(accept);
                }
            }
            if let (Some((c, names)), Some(accept)) = (classifier, first_verdict) {
                let a = c.classify(frames.image(i))?;
                let name = names.get(a.class).map_or("?", |s| s.as_str());
                if accept {
                    print!("  {name} ({:.0}%)", 100.0 * a.probability);
                } else {
                    print!("  - [{name}?]");
                }
            }
            println!();
        }
        print!("{:<26}", "mean");
        for (j, (_, l)) in scorers.iter().enumerate() {
            print!(" {:>22.3}", sums[j] / frames.len().max(1) as f64);
            if l.guard().is_some() {
                print!(" {:>22}", "");
            }
        }
        println!();
    }
    Ok(())
}
