//! edgegen firmware: the end of the data path. Embeds the compiled models and a set of
//! sensor frames, generates images with every model family (feature `generate`), scores
//! every frame with the guard, logs it all with defmt, draws a screen with embedded-graphics
//! and sends it to the host through semihosting (under QEMU, feature `qemu`). Exits QEMU
//! with 0 when every check passed; on a real board (features `nucleo-l4r5zi`, `alif-e7-hp`)
//! logs over RTT and stops at a breakpoint (see `boards/`).
//!
//! Every number it logs is computed by the same `edgegen-runtime` code the host runs (the
//! int8 kernels and `libm`), so the host test compares them bit for bit.
#![no_std]
#![no_main]

mod assets;
mod clock;
mod host;
mod mem;
#[cfg(feature = "qemu")]
mod screen;
mod stack;

use assets::{ARENA, SAMPLE_ARENA};
use cortex_m_rt::entry;
#[cfg(feature = "qemu")]
use cortex_m_rt::{exception, ExceptionFrame};
#[cfg(feature = "probe")]
use defmt_rtt as _;
#[cfg(feature = "qemu")]
use defmt_semihosting as _;
use edgegen_runtime::engine::{Classifier, Gan, PixelCnn, Vae};
use edgegen_runtime::guard::PixelCnnScorer;
use edgegen_runtime::image::Geometry;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::model::Model;
use edgegen_runtime::rng::Rng;
#[cfg(feature = "probe")]
use panic_probe as _;

/// Importance samples of the VAE bound on the device.
const VAE_K: usize = 4;
/// Frames of each set the VAE's Bayes classifier runs on (feature `bayes`).
const BAYES_FRAMES: usize = 4;
/// Images generated per model family.
pub const SAMPLES: usize = 4;

fn fail(what: &str) -> ! {
    defmt::error!("check failed: {=str}", what);
    host::exit(false)
}

/// Where generated images and verdicts are drawn: the screen under QEMU, or nowhere on a
/// board without one.
pub trait Show {
    /// Generated sample `n` of `family` (0: VAE, 1: GAN, 2: PixelCNN).
    fn sample(&mut self, family: usize, n: usize, img: &[u8], g: Geometry);
    /// Scored frame `slot` with its verdict, score and the classifier's label (given only
    /// when the guard accepts).
    fn frame(&mut self, slot: usize, img: &[u8], g: Geometry, accept: bool, score: f32, label: Option<&str>);
}

#[cfg(feature = "qemu")]
impl Show for screen::Screen {
    fn sample(&mut self, family: usize, n: usize, img: &[u8], g: Geometry) {
        let family = [screen::Family::Vae, screen::Family::Gan, screen::Family::PixelCnn][family.min(2)];
        screen::Screen::sample(self, family, n, img, g)
    }
    fn frame(&mut self, slot: usize, img: &[u8], g: Geometry, accept: bool, score: f32, label: Option<&str>) {
        screen::Screen::frame(self, slot, img, g, accept, score, label)
    }
}

/// The arenas, in `.bss` (sized by `build.rs` from the embedded models, so the linker
/// checks that the board holds them).
static mut ARENA_BYTES: [u8; ARENA] = [0; ARENA];
static mut SAMPLE_ARENA_BYTES: [u8; SAMPLE_ARENA] = [0; SAMPLE_ARENA];
#[cfg(feature = "qemu")]
static mut SCREEN: screen::Screen = screen::Screen::blank();

fn load(bytes: &'static [u8], what: &str) -> Model<'static> {
    match Model::from_bytes(bytes) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("{=str}: {}", what, e);
            fail(what)
        }
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    let mut cp = cortex_m::Peripherals::take().unwrap_or_else(|| fail("peripherals"));
    clock::start(&mut cp.SYST);
    // SAFETY: `main` runs once and never returns, no interrupt touches these statics, and
    // each is borrowed here only: these are their only references.
    let (arena, sample_arena) = unsafe { (&mut *core::ptr::addr_of_mut!(ARENA_BYTES), &mut *core::ptr::addr_of_mut!(SAMPLE_ARENA_BYTES)) };

    let pixelcnn = PixelCnn::new(load(assets::PIXELCNN, "pixelcnn"), Kernels::Optimized).unwrap_or_else(|_| fail("pixelcnn engine"));
    let background =
        PixelCnn::new(load(assets::PIXELCNN_BG, "pixelcnn background"), Kernels::Optimized).unwrap_or_else(|_| fail("background engine"));
    let vae = assets::VAE
        .map(|(e, d)| Vae::new(load(e, "vae encoder"), load(d, "vae decoder"), Kernels::Optimized).unwrap_or_else(|_| fail("vae engine")));
    let gan = assets::GAN_GENERATOR.map(|g| Gan::new(load(g, "gan generator"), Kernels::Optimized).unwrap_or_else(|_| fail("gan engine")));
    let classifier = assets::CLASSIFIER
        .map(|c| Classifier::new(load(c, "classifier"), Kernels::Optimized).unwrap_or_else(|_| fail("classifier engine")));
    let gan_arena = gan.as_ref().map_or(0, |g| g.arena_len());
    let guard_arena = PixelCnnScorer::arena_len(&pixelcnn, Some(&background), vae.as_ref());
    // Where the VAE only feeds the guard, its encoder runs in the guard's arena.
    let vae_arena = vae.as_ref().map_or(0, |v| if assets::VAE_SCORES { v.arena_len() } else { v.encoder_arena_len() });
    // Each network on its own (the golden checks) runs in the guard's arena.
    let classifier_arena = classifier.as_ref().map_or(0, |c| c.arena_len());
    let models_arena = pixelcnn
        .arena_len()
        .max(background.arena_len())
        .max(vae.as_ref().map_or(0, |v| v.arena_len()))
        .max(gan_arena)
        .max(classifier_arena);
    defmt::info!(
        "boot board={=str} counter={=str} use_case={=str} arena={=usize} pixelcnn_arena={=usize} background_arena={=usize} guard_arena={=usize} pixelcnn_sample_arena={=usize} vae_arena={=usize} gan_arena={=usize} classifier_arena={=usize} models_bytes={=usize}",
        assets::BOARD,
        clock::COUNTER,
        assets::NAME,
        ARENA,
        pixelcnn.arena_len(),
        background.arena_len(),
        guard_arena,
        pixelcnn.sample_arena_len(),
        vae_arena,
        gan_arena,
        classifier_arena,
        assets::MODELS_BYTES
    );
    if (assets::VAE_SCORES && vae_arena > ARENA)
        || gan_arena > ARENA
        || models_arena > SAMPLE_ARENA
        || guard_arena > SAMPLE_ARENA
        || (assets::PIXELCNN_SAMPLES && pixelcnn.sample_arena_len() > SAMPLE_ARENA)
    {
        fail("a model needs more arena than the firmware reserves");
    }

    // Model views are copies of a few references into flash.
    let mut models: heapless::Vec<(&str, Model<'static>), 6> = heapless::Vec::new();
    let _ = models.push(("pixelcnn", *pixelcnn.interpreter().model()));
    let _ = models.push(("pixelcnn-bg", *background.interpreter().model()));
    if let Some(v) = &vae {
        let _ = models.push(("vae-encoder", *v.encoder_model()));
        let _ = models.push(("vae-decoder", *v.decoder_model()));
    }
    if let Some(g) = &gan {
        let _ = models.push(("gan-generator", *g.model()));
    }
    if let Some(c) = &classifier {
        let _ = models.push(("classifier", *c.model()));
    }
    check_golden(&models, &mut sample_arena[..]);
    profile(&pixelcnn, &mut sample_arena[..]);
    // The VAE's own figures (samples, bounds) where the use case asks for them; its encoder
    // and decoder feed the guard either way.
    let vae_scores = vae.as_ref().filter(|_| assets::VAE_SCORES);
    #[cfg(feature = "qemu")]
    // SAFETY: as for the arenas: the only reference to the framebuffer.
    let screen = unsafe { &mut *core::ptr::addr_of_mut!(SCREEN) };
    #[cfg(feature = "qemu")]
    screen.init(assets::NAME, vae_scores.is_some(), assets::PIXELCNN_SAMPLES);
    #[cfg(feature = "qemu")]
    let mut show: Option<&mut dyn Show> = Some(&mut *screen);
    #[cfg(not(feature = "qemu"))]
    let mut show: Option<&mut dyn Show> = None;
    if let Some(gan) = &gan {
        generate(&pixelcnn, vae_scores, gan, &mut arena[..], &mut sample_arena[..], &mut show);
        walk(vae_scores, gan, &mut arena[..]);
    }
    if let Some(bytes) = assets::FLOW {
        flow(bytes, &mut sample_arena[..]);
    }
    score_frames(pixelcnn, background, vae.as_ref(), classifier.as_ref(), &mut arena[..], &mut sample_arena[..], &mut show);
    defmt::info!("stack used_bytes={=usize}", stack::used());
    #[cfg(feature = "qemu")]
    match host::write_file("edgegen-screen.pgm\0", &screen.pgm_header(), screen.pixels()) {
        Ok(()) => defmt::info!("screen {=usize}x{=usize} written to edgegen-screen.pgm", screen::WIDTH, screen::HEIGHT),
        Err(()) => fail("writing the screen to the host"),
    }
    defmt::info!("done: all checks passed");
    host::exit(true)
}

/// The trainer's golden vectors, bit for bit, on this CPU: one set per model (golden
/// version 2, cut by `build.rs`), each found by its name.
fn check_golden(models: &[(&str, Model<'static>)], arena: &mut [u8]) {
    if models.len() != assets::GOLDEN.len() {
        fail("a golden file per embedded model");
    }
    for (name, bytes) in assets::GOLDEN {
        let model = models.iter().find(|(n, _)| n == name).map(|m| &m.1).unwrap_or_else(|| fail("golden file of an embedded model"));
        let golden = edgegen_runtime::golden::Golden::parse(bytes).unwrap_or_else(|_| fail("golden file"));
        let interp = edgegen_runtime::interpreter::Interpreter::new(*model, Kernels::Optimized);
        let passed = golden.passed(&interp, arena).unwrap_or(0);
        defmt::info!("golden model={=str} sets={=usize} passed={=usize}", name, golden.len(), passed);
        if passed != golden.len() {
            fail("golden vectors");
        }
    }
}

/// Where the PixelCNN's instructions go: every op once, with its multiply-accumulates
/// (nominal, and executed: without the masked taps the optimized kernels skip).
fn profile(pixelcnn: &PixelCnn<'static>, arena: &mut [u8]) {
    let interp = pixelcnn.interpreter();
    let zeros = [0u8; assets::IMAGE_VALUES];
    interp.set_input_image(arena, &zeros[..pixelcnn.geometry().values()]).unwrap_or_else(|_| fail("profile input"));
    for i in 0..interp.model().op_count() {
        let (code, macs, executed, n) = run_op(interp, arena, i);
        defmt::info!(
            "op model=pixelcnn index={=usize} code={=u8} macs={=u64} executed_macs={=u64} instructions={=u64}",
            i,
            code,
            macs,
            executed,
            n
        );
    }
}

/// Runs op `i` alone: its code, its multiply-accumulates (nominal, executed) and the
/// instructions it took.
fn run_op(interp: &edgegen_runtime::interpreter::Interpreter<'_>, arena: &mut [u8], i: usize) -> (u8, u64, u64, u64) {
    let t = clock::now();
    interp.invoke_ops(arena, i..i + 1).unwrap_or_else(|_| fail("profile op"));
    let n = clock::now() - t;
    let (macs, executed) = interp.op_macs(i);
    (interp.model().op(i).code as u8, macs, executed, n)
}

/// Generation: every family of the use case from fixed seeds, each image's CRC and
/// instructions logged and drawn on the screen.
fn generate(
    pixelcnn: &PixelCnn<'static>,
    vae: Option<&Vae<'static>>,
    gan: &Gan<'static>,
    arena: &mut [u8],
    sample_arena: &mut [u8],
    show: &mut Option<&mut dyn Show>,
) {
    let mut buf = [0u8; assets::IMAGE_VALUES];
    for seed in 0..SAMPLES as u64 {
        if let Some(vae) = vae {
            let img = &mut buf[..vae.geometry().values()];
            let t = clock::now();
            vae.sample(arena, seed, img).unwrap_or_else(|_| fail("vae sample"));
            let n = clock::now() - t;
            defmt::info!("sample model=vae seed={=u64} crc={=u32:#010x} instructions={=u64}", seed, edgegen_runtime::crc32::crc32(img), n);
            if let Some(s) = show.as_deref_mut() {
                s.sample(0, seed as usize, img, vae.geometry());
            }
        }
        let img = &mut buf[..gan.geometry().values()];
        if gan.classes() == 0 {
            let t = clock::now();
            gan.sample(arena, seed, img).unwrap_or_else(|_| fail("gan sample"));
            let n = clock::now() - t;
            defmt::info!("sample model=gan seed={=u64} crc={=u32:#010x} instructions={=u64}", seed, edgegen_runtime::crc32::crc32(img), n);
            if let Some(s) = show.as_deref_mut() {
                s.sample(1, seed as usize, img, gan.geometry());
            }
        } else {
            // A conditional generator (feature `cgan`): every class asked for in turn, from
            // the same seed (the same noise drawn as each class); the screen shows class
            // `seed`.
            for class in 0..gan.classes() {
                let t = clock::now();
                gan.sample_class(arena, seed, Some(class), img).unwrap_or_else(|_| fail("gan sample"));
                let n = clock::now() - t;
                defmt::info!(
                    "sample model=gan seed={=u64} class={=usize} crc={=u32:#010x} instructions={=u64}",
                    seed,
                    class,
                    edgegen_runtime::crc32::crc32(img),
                    n
                );
                if let (Some(s), true) = (show.as_deref_mut(), class as u64 == seed) {
                    s.sample(1, seed as usize, img, gan.geometry());
                }
            }
        }
        if assets::PIXELCNN_SAMPLES {
            let img = &mut buf[..pixelcnn.geometry().values()];
            let t = clock::now();
            pixelcnn.sample(sample_arena, seed, img).unwrap_or_else(|_| fail("pixelcnn sample"));
            let n = clock::now() - t;
            defmt::info!(
                "sample model=pixelcnn seed={=u64} crc={=u32:#010x} instructions={=u64}",
                seed,
                edgegen_runtime::crc32::crc32(img),
                n
            );
            if let Some(s) = show.as_deref_mut() {
                s.sample(2, seed as usize, img, pixelcnn.geometry());
            }
        }
    }
}

/// Pictures walking the latent space from seed 0's latent to seed 1's (spherical
/// interpolation, `edgegen sample --interpolate 0:1 --count 5`), each picture's CRC logged.
fn walk(vae: Option<&Vae<'static>>, gan: &Gan<'static>, arena: &mut [u8]) {
    const STEPS: usize = 5;
    let mut buf = [0u8; assets::IMAGE_VALUES];
    // (noise dimensions, classes): a conditional generator walks within class 0.
    let latents = [(gan.latent(), gan.classes()), (vae.map_or(0, |v| v.latent()), 0)];
    for (family, (n, k)) in ["gan", "vae"].into_iter().zip(latents) {
        if n == 0 {
            continue;
        }
        let (mut za, mut zb, mut z) = (
            [0f32; edgegen_runtime::engine::MAX_LATENT],
            [0f32; edgegen_runtime::engine::MAX_LATENT],
            [0f32; edgegen_runtime::engine::MAX_LATENT],
        );
        let class = (k > 0).then_some(0);
        edgegen_runtime::engine::seed_input(0, n, k, class, &mut za[..n + k]).unwrap_or_else(|_| fail("latent"));
        edgegen_runtime::engine::seed_input(1, n, k, class, &mut zb[..n + k]).unwrap_or_else(|_| fail("latent"));
        z[n..n + k].copy_from_slice(&za[n..n + k]);
        let n_in = n + k;
        for step in 0..STEPS {
            let t = step as f32 / (STEPS - 1) as f32;
            edgegen_runtime::likelihood::slerp(&za[..n], &zb[..n], t, &mut z[..n]).unwrap_or_else(|_| fail("slerp"));
            let start = clock::now();
            let img = match (family, vae) {
                ("vae", Some(v)) => {
                    let img = &mut buf[..v.geometry().values()];
                    v.decode_mean(arena, &z[..n], img).unwrap_or_else(|_| fail("vae decode"));
                    img
                }
                _ => {
                    let img = &mut buf[..gan.geometry().values()];
                    gan.generate(arena, &z[..n_in], img).unwrap_or_else(|_| fail("gan generate"));
                    img
                }
            };
            let instructions = clock::now() - start;
            defmt::info!(
                "walk model={=str} from=0 to=1 step={=usize} of={=usize} crc={=u32:#010x} instructions={=u64}",
                family,
                step,
                STEPS,
                edgegen_runtime::crc32::crc32(img),
                instructions
            );
        }
    }
}

/// Frames of each set the flow scores (feature `flow`).
const FLOW_FRAMES: usize = 4;

/// The normalizing flow (feature `flow`): log p of the first frames of each set and samples
/// from fixed seeds, each logged with its bits and instructions.
fn flow(bytes: &'static [u8], arena: &mut [u8]) {
    static mut SCRATCH: [f32; 4 * assets::IMAGE_VALUES] = [0.0; 4 * assets::IMAGE_VALUES];
    // SAFETY: as for the arenas: `flow` runs once, and this is the only reference.
    let scratch = unsafe { &mut *core::ptr::addr_of_mut!(SCRATCH) };
    let flow = edgegen_runtime::flow::Flow::from_bytes(bytes, Kernels::Optimized).unwrap_or_else(|e| {
        defmt::error!("flow: {}", e);
        fail("flow file")
    });
    if flow.arena_len() > arena.len() || flow.scratch_len() > scratch.len() {
        fail("the flow needs more arena than the firmware reserves");
    }
    let g = flow.geometry();
    defmt::info!(
        "flow_boot couplings={=usize} arena={=usize} scratch_bytes={=usize}",
        flow.couplings(),
        flow.arena_len(),
        4 * flow.scratch_len()
    );
    for (set, frames) in assets::frame_sets(g) {
        for (index, frame) in frames.take(FLOW_FRAMES).enumerate() {
            let t = clock::now();
            let lp = flow.log_prob(arena, scratch, frame).unwrap_or_else(|_| fail("flow log p"));
            let n = clock::now() - t;
            let bpd = edgegen_runtime::likelihood::bits_per_dim(lp, g.values());
            defmt::info!(
                "flow set={=str} index={=usize} bpd={=f64} log_prob={=f64} bits={=u64:#018x} instructions={=u64}",
                set,
                index,
                bpd,
                lp,
                lp.to_bits(),
                n
            );
        }
    }
    flow_profile(&flow, arena, scratch);
    let mut img = [0u8; assets::IMAGE_VALUES];
    for seed in 0..SAMPLES as u64 {
        let img = &mut img[..g.values()];
        let t = clock::now();
        flow.sample(arena, scratch, seed, img).unwrap_or_else(|_| fail("flow sample"));
        let n = clock::now() - t;
        defmt::info!("sample model=flow seed={=u64} crc={=u32:#010x} instructions={=u64}", seed, edgegen_runtime::crc32::crc32(img), n);
    }
}

/// Where the flow's instructions go: each coupling's network whole, and the first coupling
/// of each stage (before and after the squeeze) op by op, on a zero input.
fn flow_profile(flow: &edgegen_runtime::flow::Flow<'static>, arena: &mut [u8], scratch: &mut [f32]) {
    for k in 0..flow.couplings() {
        let Some(net) = flow.network(k) else { fail("flow coupling") };
        let input = &mut scratch[..net.model().input().len()];
        input.fill(0.0);
        net.set_input_f32(arena, input).unwrap_or_else(|_| fail("flow profile input"));
        let t = clock::now();
        net.invoke(arena).unwrap_or_else(|_| fail("flow profile"));
        let n = clock::now() - t;
        let macs: u64 = (0..net.model().op_count()).map(|i| net.op_macs(i).0).sum();
        defmt::info!("flow_coupling index={=usize} macs={=u64} instructions={=u64}", k, macs, n);
        if k != 0 && k != flow.pre() {
            continue;
        }
        net.set_input_f32(arena, input).unwrap_or_else(|_| fail("flow profile input"));
        for i in 0..net.model().op_count() {
            let (code, macs, executed, n) = run_op(net, arena, i);
            defmt::info!(
                "flow_op coupling={=usize} index={=usize} code={=u8} macs={=u64} executed_macs={=u64} instructions={=u64}",
                k,
                i,
                code,
                macs,
                executed,
                n
            );
        }
    }
}

/// Scoring: every embedded frame, with the guard calibrated into the PixelCNN's file (its
/// score may need the background model's per-pixel likelihoods too), the VAE's bound, and
/// the classifier's answer (a label only when the guard accepts).
fn score_frames(
    pixelcnn: PixelCnn<'static>,
    background: PixelCnn<'static>,
    vae: Option<&Vae<'static>>,
    classifier: Option<&Classifier<'static>>,
    arena: &mut [u8],
    sample_arena: &mut [u8],
    show: &mut Option<&mut dyn Show>,
) {
    let g = pixelcnn.geometry();
    if vae.is_some_and(|v| v.geometry() != g) {
        fail("the VAE and the PixelCNN take frames of different geometries");
    }
    // The evidence guard also reads the VAE's posterior and reconstruction (the structural
    // one its posterior), as the PixelCNN's file says.
    let mut guard = PixelCnnScorer::guard(pixelcnn, Some(background), vae.cloned(), sample_arena)
        .unwrap_or_else(|| fail("no calibrated guard in the PixelCNN file (or its VAE is missing)"));
    let kind = guard.scorer().kind();
    let class_priors = assets::CLASS_PRIORS.map(|b| {
        let block = edgegen_runtime::guard::GuardBlock::parse(b).unwrap_or_else(|_| fail("class priors"));
        if vae.is_none_or(|v| v.encoder_model().crc() != block.encoder_crc()) {
            fail("the class priors were fitted with another VAE encoder");
        }
        block
    });
    let mut slot = 0;
    for (set, frames) in assets::frame_sets(g) {
        for (index, frame) in frames.enumerate() {
            let t = clock::now();
            let verdict = guard.check(frame).unwrap_or_else(|_| fail("guard"));
            let guard_instructions = clock::now() - t;
            let stats = guard.scorer().last().unwrap_or_else(|| fail("guard statistics"));
            // The VAE as a Bayes classifier (feature `bayes`), on the first frames of each
            // set (each costs an encoder pass and four decoder passes).
            if let (Some(vae), Some(priors), true) = (vae.filter(|_| assets::VAE_SCORES), class_priors.as_ref(), index < BAYES_FRAMES) {
                let t = clock::now();
                let a = vae.bayes(arena, frame, VAE_K, priors, &mut Rng::with_stream(1, index as u64)).unwrap_or_else(|_| fail("bayes"));
                let instructions = clock::now() - t;
                defmt::info!(
                    "bayes set={=str} index={=usize} class={=usize} probability={=f64} bits={=u64:#018x} log_px={=f64} bits={=u64:#018x} instructions={=u64}",
                    set,
                    index,
                    a.class,
                    a.probability,
                    a.probability.to_bits(),
                    a.log_px,
                    a.log_px.to_bits(),
                    instructions
                );
            }
            match vae.filter(|_| assets::VAE_SCORES) {
                Some(vae) => {
                    let t = clock::now();
                    let bounds =
                        vae.bounds(arena, frame, VAE_K, &mut Rng::with_stream(0, index as u64)).unwrap_or_else(|_| fail("vae bounds"));
                    let vae_instructions = clock::now() - t;
                    defmt::info!(
                        "frame set={=str} index={=usize} pixelcnn_bpd={=f64} bits={=u64:#018x} vae_iwae_bpd={=f64} bits={=u64:#018x} score_kind={=str} score={=f32} score_bits={=u32:#010x} threshold={=f32} verdict={=str} guard_instructions={=u64} vae_instructions={=u64}",
                        set,
                        index,
                        stats.bpd,
                        stats.bpd.to_bits(),
                        bounds.iwae_bpd(),
                        bounds.iwae_bpd().to_bits(),
                        kind.name(),
                        verdict.score,
                        verdict.score.to_bits(),
                        verdict.threshold,
                        if verdict.accept { "accept" } else { "reject" },
                        guard_instructions,
                        vae_instructions
                    );
                }
                None => defmt::info!(
                    "frame set={=str} index={=usize} pixelcnn_bpd={=f64} bits={=u64:#018x} score_kind={=str} score={=f32} score_bits={=u32:#010x} threshold={=f32} verdict={=str} guard_instructions={=u64}",
                    set,
                    index,
                    stats.bpd,
                    stats.bpd.to_bits(),
                    kind.name(),
                    verdict.score,
                    verdict.score.to_bits(),
                    verdict.threshold,
                    if verdict.accept { "accept" } else { "reject" },
                    guard_instructions
                ),
            }
            let label = classifier.map(|c| {
                let t = clock::now();
                let answer = guard.answer(c, frame, verdict).unwrap_or_else(|_| fail("classifier"));
                let instructions = clock::now() - t;
                let name = assets::CLASS_NAMES.get(answer.class).copied().unwrap_or("?");
                defmt::info!(
                    "classify set={=str} index={=usize} class={=usize} name={=str} probability={=f64} bits={=u64:#018x} label={=str} instructions={=u64}",
                    set,
                    index,
                    answer.class,
                    name,
                    answer.probability,
                    answer.probability.to_bits(),
                    if answer.label().is_some() { name } else { "none" },
                    instructions
                );
                answer.label().map(|_| name)
            });
            if let Some(s) = show.as_deref_mut() {
                s.frame(slot, frame, g, verdict.accept, verdict.score, label.flatten());
            }
            slot += 1;
        }
    }
}

/// Under QEMU a fault ends the run with a failure (cortex-m-rt's default handler would
/// loop forever); on a board probe-rs catches it.
#[cfg(feature = "qemu")]
#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc={=u32:#010x}", ef.pc());
    host::exit(false)
}

/// Under QEMU a panic is logged and exits with a failure (on a board, panic-probe).
#[cfg(feature = "qemu")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if let Some(loc) = info.location() {
        defmt::error!("panic at {=str}:{=u32}", loc.file(), loc.line());
    } else {
        defmt::error!("panic");
    }
    host::exit(false)
}

defmt::timestamp!("{=u64}", clock::now());
