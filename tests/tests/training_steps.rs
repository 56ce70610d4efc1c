//! PixelCNN and GAN training: a few steps on a small subset improve the objective.
//! Needs Fashion-MNIST (`edgegen data fetch`; the test command installs it).

mod common;

use edgegen_trainer::families::training::TrainOptions;

fn opts(run_dir: std::path::PathBuf, lr: f64) -> TrainOptions {
    TrainOptions {
        epochs: 2,
        batch: 32,
        lr,
        cosine: false,
        seed: 4,
        limit: Some(512),
        run_dir,
        resume: false,
        checkpoint_every: 1000,
        progress: false,
        perturb: 0.0,
        weight_decay: 0.0,
        max_steps: None,
        source: edgegen_trainer::data::Source::FashionMnist,
        device: Default::default(),
    }
}

#[test]
fn pixelcnn_few_steps_lower_the_loss() {
    let _serial = common::training_lock();
    let cfg = edgegen_trainer::families::pixelcnn::PixelCnnConfig::new().with_channels(16).with_inner(8).with_blocks(1).with_components(2);
    let dir = common::temp_dir("pixelcnn-train");
    let untrained = edgegen_trainer::families::pixelcnn::eval::mean_bpd(
        &cfg.init(&burn::prelude::Device::flex()),
        &edgegen_trainer::data::fashion_mnist(edgegen_trainer::data::Split::Validation).unwrap().slice(0..500),
        false,
    );
    let (_, state, _) = edgegen_trainer::families::pixelcnn::training::train(&cfg, &opts(dir.clone(), 3e-3)).unwrap();
    let val = state.history.last().unwrap().2;
    assert!(val < untrained - 0.5, "validation {val} bits/dim vs untrained {untrained}");
    std::fs::remove_dir_all(dir).ok();
}

/// The flow's exact likelihood falls with training: validation bits/dim after two short
/// epochs well under the untrained flow's (the logit transform of a standard normal).
#[test]
fn flow_few_steps_lower_the_loss() {
    let _serial = common::training_lock();
    let cfg = edgegen_trainer::families::flow::FlowConfig::new().with_hidden(8);
    let dir = common::temp_dir("flow-train");
    let valid = edgegen_trainer::data::fashion_mnist(edgegen_trainer::data::Split::Validation).unwrap().slice(0..500);
    let untrained = edgegen_trainer::families::flow::training::mean_bpd(&cfg.init(&burn::prelude::Device::flex()), &valid, 4);
    let (_, state, _) = edgegen_trainer::families::flow::training::train(&cfg, &opts(dir.clone(), 3e-3)).unwrap();
    let val = state.history.last().unwrap().2;
    assert!(val < untrained - 1.0, "validation {val} bits/dim vs untrained {untrained}");
    std::fs::remove_dir_all(dir).ok();
}

/// A conditional GAN trains on the images' labels: its discriminator learns, each class
/// draws its own image from the same noise, and the generator's input is noise + one-hot.
#[test]
fn conditional_gan_trains_on_labels() {
    let _serial = common::training_lock();
    let cfg = edgegen_trainer::families::gan::GanConfig::new().with_latent(8).with_features(16).with_classes(10);
    let dir = common::temp_dir("cgan-train");
    let (gan, _, state, _) = edgegen_trainer::families::gan::training::train(&cfg, &opts(dir.clone(), 2e-4), 0.0, None).unwrap();
    let d_loss = state.history.last().unwrap().1;
    assert!(d_loss < 1.3, "discriminator loss {d_loss}");
    assert_eq!(gan.generator.input_len(), 18);
    let generate = edgegen_trainer::families::gan::training::generate_class;
    let (a, b) = (generate(&gan, &[3], Some(1)), generate(&gan, &[3], Some(8)));
    assert!(a.len() == 784 && a != b, "the class changes the image");
    // Each seed's own class: the image of that class.
    let mut z = vec![0f32; 18];
    let class = edgegen_runtime::engine::seed_input(3, 8, 10, None, &mut z).unwrap();
    assert_eq!(edgegen_trainer::families::gan::training::generate(&gan, &[3]), generate(&gan, &[3], Some(class as u8)));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn gan_discriminator_learns_and_generator_stays_finite() {
    let _serial = common::training_lock();
    let cfg = edgegen_trainer::families::gan::GanConfig::new().with_latent(8).with_features(16).with_d_layers(3);
    let dir = common::temp_dir("gan-train");
    let (gan, averaged, state, _) = edgegen_trainer::families::gan::training::train(&cfg, &opts(dir.clone(), 2e-4), 0.9, None).unwrap();
    // A random discriminator scores ln 2 on each half (≈ 1.39 with smoothing); a learning one less.
    let d_loss = state.history.last().unwrap().1;
    assert!(d_loss < 1.3, "discriminator loss {d_loss}");
    let imgs = edgegen_trainer::families::gan::training::generate(&gan, &[1, 2, 3]);
    assert_eq!(imgs.len(), 3 * 784);
    // The averaged generator trails the last one: different weights, finite, and it samples.
    let avg = averaged.expect("an averaged generator with --ema 0.9");
    let w = |g: &edgegen_trainer::families::gan::model::Generator| {
        edgegen_trainer::families::loss::to_vec({
            let t = g.fc.weight.val();
            let n = t.dims().iter().product::<usize>();
            t.reshape([n])
        })
    };
    let (last_w, avg_w) = (w(&gan.generator), w(&avg.generator));
    assert!(avg_w.iter().all(|v| v.is_finite()));
    assert!(last_w.iter().zip(&avg_w).any(|(a, b)| a != b), "the average equals the last generator");
    assert_eq!(edgegen_trainer::families::gan::training::generate(&avg, &[1, 2]).len(), 2 * 784);
    // Stopped in the middle of the second epoch (16 steps an epoch) and resumed: the same
    // history as the uninterrupted run, the interrupted epoch's mean losses included.
    let stop_dir = common::temp_dir("gan-stopped");
    let mut stopped = opts(stop_dir.clone(), 2e-4);
    stopped.max_steps = Some(21);
    let (_, _, s, _) = edgegen_trainer::families::gan::training::train(&cfg, &stopped, 0.9, None).unwrap();
    assert_eq!((s.epoch, s.step), (1, 5));
    let mut resumed = opts(stop_dir.clone(), 2e-4);
    resumed.resume = true;
    let (_, _, s, _) = edgegen_trainer::families::gan::training::train(&cfg, &resumed, 0.9, None).unwrap();
    common::assert_same_history(&s.history, &state.history);
    std::fs::remove_dir_all(stop_dir).ok();
    // Resuming restores the average from the checkpoint (four files: two modules, two optimizers).
    let mut more = opts(dir.clone(), 2e-4);
    more.epochs += 1;
    more.resume = true;
    let (_, averaged, state, _) = edgegen_trainer::families::gan::training::train(&cfg, &more, 0.9, Some(2)).unwrap();
    assert!(averaged.is_some());
    assert_eq!(state.epoch, more.epochs);
    // Resuming with another discriminator is refused with the file and the remedy, nothing trained.
    more.epochs += 1;
    let err = edgegen_trainer::families::gan::training::train(&cfg.clone().with_d_layers(2), &more, 0.9, Some(2))
        .expect_err("a mismatched resume fails");
    let msg = format!("{err:#}");
    assert!(msg.contains("shape mismatch") && msg.contains("model arguments the run started with"), "{msg}");
    // The decayed learning rate: full before the decay epoch, half way down in the middle of
    // the decaying epochs, 0 only after the last step.
    let lr = edgegen_trainer::families::gan::training::learning_rate;
    assert_eq!(lr(2e-4, Some(2), 4, 10, 1, 9), 2e-4);
    assert!((lr(2e-4, Some(2), 4, 10, 3, 0) - 1e-4).abs() < 1e-12);
    assert!(lr(2e-4, Some(2), 4, 10, 3, 9) > 0.0);
    assert_eq!(lr(2e-4, None, 4, 10, 3, 9), 2e-4);
    std::fs::remove_dir_all(dir).ok();
}

/// Every float parameter of a module, flattened, in visiting order.
fn params<M: burn::module::Module>(m: &M) -> Vec<f32> {
    struct P(Vec<f32>);
    impl burn::module::ModuleVisitor for P {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::prelude::Tensor<D>>) {
            self.0.extend(edgegen_trainer::families::loss::to_vec(p.val()));
        }
    }
    let mut p = P(Vec::new());
    m.visit(&mut p);
    p.0
}

/// `--device cpu,cpu` and `cpu,cpu,cpu` (data parallel: each device a share of the batch, the
/// gradients summed on the first) take the same step as one device on the whole batch, from
/// the same checkpoint, up to float summation order — the VAE's per-step noise and the
/// classifier's labels following each share's rows; the GAN refuses several devices.
#[test]
fn data_parallel_steps_equal_the_single_device_step() {
    use edgegen_trainer::device::Devices;
    let _serial = common::training_lock();
    let dir = common::temp_dir("data-parallel");
    let step = |name: &str, train: &dyn Fn(&TrainOptions) -> Vec<f32>| {
        let mut first = opts(dir.join(name), 1e-3);
        (first.batch, first.max_steps, first.epochs) = (16, Some(1), 1);
        let after_first = train(&first);
        let resumed: Vec<Vec<f32>> = ["cpu", "cpu,cpu", "cpu,cpu,cpu"]
            .iter()
            .map(|d| {
                let run = dir.join(format!("{name}-{d}"));
                std::fs::create_dir_all(&run).unwrap();
                for e in std::fs::read_dir(dir.join(name)).unwrap() {
                    let e = e.unwrap();
                    std::fs::copy(e.path(), run.join(e.file_name())).unwrap();
                }
                let mut o = opts(run, 1e-3);
                (o.batch, o.max_steps, o.epochs, o.resume, o.device) = (16, Some(1), 1, true, Devices::parse(d).unwrap());
                train(&o)
            })
            .collect();
        let scale = resumed[0].iter().fold(0f32, |m, v| m.max(v.abs()));
        for (d, p) in ["cpu,cpu", "cpu,cpu,cpu"].iter().zip(&resumed[1..]) {
            let diff = common::max_abs_diff(&resumed[0], p) / scale;
            eprintln!("{name}: one step on {d} vs cpu: max relative difference {diff:.2e}");
            assert!(diff < 1e-5, "{name}: a step on {d} differs from one on cpu by {diff} (relative)");
        }
        // The step itself moved the weights (a comparison of untouched weights proves nothing).
        let moved = common::max_abs_diff(&after_first, &resumed[0]);
        assert!(moved > 1e-6, "{name}: the resumed step left the weights as they were");
    };
    let vae = edgegen_trainer::families::vae::VaeConfig::new().with_latent(8).with_components(2);
    step("vae", &|o| params(&edgegen_trainer::families::vae::training::train(&vae, o).unwrap().0));
    let clf = edgegen_trainer::families::classifier::ClassifierConfig::new();
    step("classifier", &|o| {
        let parts = o.source.load(false).unwrap();
        params(&edgegen_trainer::families::classifier::training::train_on(&clf, o, &parts).unwrap().0)
    });
    let pix = edgegen_trainer::families::pixelcnn::PixelCnnConfig::new().with_channels(16).with_inner(8).with_blocks(1).with_components(2);
    step("pixelcnn", &|o| params(&edgegen_trainer::families::pixelcnn::training::train(&pix, o).unwrap().0));
    let mut o = opts(dir.join("gan"), 2e-4);
    o.device = Devices::parse("cpu,cpu").unwrap();
    let gan = edgegen_trainer::families::gan::GanConfig::new().with_latent(8).with_features(16).with_d_layers(3);
    let err = edgegen_trainer::families::gan::training::train(&gan, &o, 0.0, None).map(|_| ()).unwrap_err();
    assert!(format!("{err:#}").contains("one device"), "{err:#}");
    std::fs::remove_dir_all(dir).ok();
}
