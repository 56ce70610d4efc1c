//! Training on burn's Vulkan backend (cargo feature `vulkan`; the test command runs this with
//! Mesa's lavapipe, Vulkan on the CPU, when no GPU is there): a PixelCNN checkpoint written on
//! one device resumes on the other, and the step taken from it there equals the one the CPU
//! takes to within [`TOLERANCE`].
//!
//! The VAE, the GAN, the classifier and a step shared by the CPU and Vulkan (`--device
//! cpu,vulkan:cpu`, half-batch shapes) are not here: Debian 12's lavapipe (Mesa 22.3.6) crashes
//! (SIGSEGV inside `vkCreateComputePipelines`, while wgpu compiles one of the SPIR-V kernels
//! CubeCL generates for those shapes), so this machine cannot run them on Vulkan; docs/gpu.md
//! says so.
//!
//! `cargo test --release -p edgegen-trainer --features vulkan --test backends`
//! (`EDGEGEN_VULKAN_DEVICE=vulkan:0` picks another adapter than the default `vulkan:cpu`).
//! Needs Fashion-MNIST (`edgegen data fetch`; the test command installs it).
#![cfg(feature = "vulkan")]

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use edgegen_trainer::device::DeviceChoice;
use edgegen_trainer::families::training::TrainOptions;
use std::path::{Path, PathBuf};

/// The largest difference of any parameter after one step from the same checkpoint on the two
/// devices, relative to the largest parameter: float sums in another order (~1e-7 per value)
/// carried through one Adam step.
const TOLERANCE: f32 = 1e-4;

fn vulkan() -> DeviceChoice {
    DeviceChoice::parse(&std::env::var("EDGEGEN_VULKAN_DEVICE").unwrap_or_else(|_| "vulkan:cpu".into())).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgegen-backends-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// One step of a session (`--max-steps 1`) on `device`, continuing the run in `run_dir`
/// when `resume`.
fn opts(run_dir: &Path, device: DeviceChoice, resume: bool) -> TrainOptions {
    TrainOptions {
        epochs: 1,
        batch: 16,
        lr: 1e-3,
        cosine: false,
        seed: 3,
        limit: Some(64),
        run_dir: run_dir.to_path_buf(),
        resume,
        checkpoint_every: 1000,
        progress: false,
        perturb: 0.0,
        weight_decay: 0.0,
        max_steps: Some(1),
        source: edgegen_trainer::data::Source::FashionMnist,
        device: edgegen_trainer::device::Devices::one(device),
    }
}

/// Every float parameter of a module, flattened, in visiting order.
struct Params(Vec<f32>);

impl ModuleVisitor for Params {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.extend(edgegen_trainer::families::loss::to_vec(param.val()));
    }
}

fn params<M: Module>(m: &M) -> Vec<f32> {
    let mut p = Params(Vec::new());
    m.visit(&mut p);
    p.0
}

/// For a family (`train(opts)` → the model's parameters and the steps done): a checkpoint
/// written on each device resumes on both, and the two resumed steps agree.
fn check_family(name: &str, train: impl Fn(&TrainOptions) -> (Vec<f32>, usize)) {
    let dir = temp_dir(name);
    for writer in [DeviceChoice::Cpu, vulkan()] {
        let written = dir.join(format!("written-on-{writer}"));
        let (_, steps) = train(&opts(&written, writer, false));
        assert_eq!(steps, 1, "{name}: the first session on {writer} stops after one step");
        let mut resumed = Vec::new();
        for reader in [DeviceChoice::Cpu, vulkan()] {
            let d = dir.join(format!("{writer}-then-{reader}"));
            copy_dir(&written, &d);
            let (p, steps) = train(&opts(&d, reader, true));
            assert_eq!(steps, 2, "{name}: written on {writer}, resumed on {reader}: one more step");
            assert!(p.iter().all(|v| v.is_finite()), "{name}: non-finite parameters on {reader}");
            resumed.push(p);
        }
        let scale = resumed[0].iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let diff = resumed[0].iter().zip(&resumed[1]).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        eprintln!("{name}: written on {writer}, one step resumed on cpu vs {}: max relative difference {diff:.2e}", vulkan());
        assert!(diff <= TOLERANCE, "{name}: written on {writer}, the step on cpu and on {} differ by {diff} (relative)", vulkan());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn pixelcnn_steps_on_vulkan_as_on_the_cpu_and_resumes_across() {
    let cfg = edgegen_trainer::families::pixelcnn::PixelCnnConfig::new().with_channels(16).with_inner(8).with_blocks(1).with_components(2);
    check_family("pixelcnn", |o| {
        let (m, s, _) = edgegen_trainer::families::pixelcnn::training::train(&cfg, o).unwrap();
        (params(&m), s.epoch * 4 + s.step)
    });
}
