//! Training on burn's GPU backends (cargo feature `wgpu` or `vulkan`; the test command runs
//! this with `wgpu` on Mesa's lavapipe, Vulkan on the CPU, when no GPU is there): for each
//! family, a checkpoint written on one device resumes on the other, and the step taken from
//! it there equals the one the CPU takes to within [`TOLERANCE`]; a step shared by the CPU and
//! the GPU backend (`--device cpu,wgpu:cpu`) equals the CPU's.
//!
//! `wgpu` compiles burn's kernels to WGSL (wgpu's naga turns them into SPIR-V for Vulkan);
//! `vulkan` compiles them to SPIR-V directly (CubeCL's compiler). On lavapipe (Debian 12's
//! Mesa 22.3.6, and 25.0.7 from bookworm-backports) the direct SPIR-V of every family but the
//! PixelCNN crashes the driver (SIGSEGV inside `vkCreateComputePipelines`), so a `vulkan`
//! build runs only the PixelCNN here (`EDGEGEN_VULKAN_ALL=1` runs the rest on a driver that
//! takes them); docs/gpu.md says so.
//!
//! `cargo test --release -p edgegen-trainer --features wgpu --test backends`
//! (`EDGEGEN_VULKAN_DEVICE=wgpu:0` picks another adapter than the CPU's). Needs Fashion-MNIST
//! (`edgegen data fetch`; the test command installs it).
#![cfg(any(feature = "vulkan", feature = "wgpu"))]

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use edgegen_trainer::device::DeviceChoice;
use edgegen_trainer::families::training::TrainOptions;
use std::path::{Path, PathBuf};

/// The largest difference of any parameter after one step from the same checkpoint on the two
/// devices, relative to the largest parameter: float sums in another order (~1e-7 per value)
/// carried through one Adam step.
const TOLERANCE: f32 = 1e-4;

/// The GPU backend's device under test: `EDGEGEN_VULKAN_DEVICE`, else the CPU adapter of the
/// backend built (`wgpu:cpu`, or `vulkan:cpu` in a build with `vulkan`).
fn vulkan() -> DeviceChoice {
    let default = if cfg!(feature = "vulkan") { "vulkan:cpu" } else { "wgpu:cpu" };
    DeviceChoice::parse(&std::env::var("EDGEGEN_VULKAN_DEVICE").unwrap_or_else(|_| default.into())).unwrap()
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

fn steps(s: &edgegen_trainer::families::checkpoint::TrainState) -> usize {
    s.epoch * 4 + s.step
}

/// Whether this family can run on the device under test: everything on `wgpu`; on `vulkan`
/// (CubeCL's SPIR-V) only the PixelCNN unless `EDGEGEN_VULKAN_ALL` is set (lavapipe crashes on
/// the others' kernels, see the module docs). Says so when it skips.
fn runs_here(family: &str) -> bool {
    let spirv = matches!(vulkan(), DeviceChoice::Vulkan(_));
    if spirv && family != "pixelcnn" && std::env::var_os("EDGEGEN_VULKAN_ALL").is_none() {
        eprintln!("{family}: not run on {} (lavapipe crashes on its SPIR-V kernels; EDGEGEN_VULKAN_ALL=1 runs it)", vulkan());
        return false;
    }
    true
}

#[test]
fn vae_steps_on_vulkan_as_on_the_cpu_and_resumes_across() {
    let cfg = edgegen_trainer::families::vae::VaeConfig::new().with_latent(8).with_components(2);
    if !runs_here("vae") {
        return;
    }
    check_family("vae", |o| {
        let (m, s) = edgegen_trainer::families::vae::training::train(&cfg, o).unwrap();
        (params(&m), steps(&s))
    });
}

#[test]
fn classifier_steps_on_vulkan_as_on_the_cpu_and_resumes_across() {
    let cfg = edgegen_trainer::families::classifier::ClassifierConfig::new();
    if !runs_here("classifier") {
        return;
    }
    check_family("classifier", |o| {
        let parts = o.source.load(false).unwrap();
        let (m, s) = edgegen_trainer::families::classifier::training::train_on(&cfg, o, &parts).unwrap();
        (params(&m), steps(&s))
    });
}

#[test]
fn gan_steps_on_vulkan_as_on_the_cpu_and_resumes_across() {
    let cfg = edgegen_trainer::families::gan::GanConfig::new().with_latent(8).with_features(16).with_d_layers(3);
    if !runs_here("gan") {
        return;
    }
    check_family("gan", |o| {
        let (m, _, s, _) = edgegen_trainer::families::gan::training::train(&cfg, o, 0.0, None).unwrap();
        (params(&m), steps(&s))
    });
}

#[test]
fn flow_steps_on_vulkan_as_on_the_cpu_and_resumes_across() {
    let cfg = edgegen_trainer::families::flow::FlowConfig::new().with_hidden(8);
    if !runs_here("flow") {
        return;
    }
    check_family("flow", |o| {
        let (m, s, _) = edgegen_trainer::families::flow::training::train(&cfg, o).unwrap();
        (params(&m), steps(&s))
    });
}

#[test]
fn pixelcnn_steps_on_vulkan_as_on_the_cpu_and_resumes_across() {
    let cfg = edgegen_trainer::families::pixelcnn::PixelCnnConfig::new().with_channels(16).with_inner(8).with_blocks(1).with_components(2);
    check_family("pixelcnn", |o| {
        let (m, s, _) = edgegen_trainer::families::pixelcnn::training::train(&cfg, o).unwrap();
        (params(&m), steps(&s))
    });
}

/// A step shared by the CPU and the GPU backend (`--device cpu,wgpu:cpu`: the model forked to
/// both, each computing its half of the batch) equals the step on the CPU alone.
#[test]
fn a_step_shared_by_the_cpu_and_the_gpu_backend_equals_the_cpu_step() {
    if !runs_here("vae") {
        return;
    }
    let dir = temp_dir("shared");
    let cfg = edgegen_trainer::families::vae::VaeConfig::new().with_latent(8).with_components(2);
    let train = |o: &TrainOptions| params(&edgegen_trainer::families::vae::training::train(&cfg, o).unwrap().0);
    let first = train(&opts(&dir.join("first"), DeviceChoice::Cpu, false));
    let mut resumed = Vec::new();
    for devices in [vec![DeviceChoice::Cpu], vec![DeviceChoice::Cpu, vulkan()]] {
        let d = dir.join(format!("resumed-{}", devices.len()));
        copy_dir(&dir.join("first"), &d);
        let mut o = opts(&d, DeviceChoice::Cpu, true);
        o.device = edgegen_trainer::device::Devices(devices);
        resumed.push(train(&o));
    }
    let scale = resumed[0].iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let diff = resumed[0].iter().zip(&resumed[1]).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
    let moved = first.iter().zip(&resumed[0]).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("vae: one step on cpu,{} vs cpu: max relative difference {diff:.2e}", vulkan());
    assert!(moved > 1e-6, "the resumed step left the weights as they were");
    assert!(diff <= TOLERANCE, "a step on cpu,{} differs from one on cpu by {diff} (relative)", vulkan());
    std::fs::remove_dir_all(&dir).ok();
}
