//! The C API against the Rust runtime it wraps, on the bundled models: every call's result
//! bit for bit, and every misuse a C caller can make answered with its status code.

use super::*;
use edgegen_runtime::engine::{Classifier, PixelCnn, Vae};
use edgegen_runtime::guard::PixelCnnScorer;
use std::ffi::CStr;
use std::path::PathBuf;
use std::vec;
use std::vec::Vec;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> &'static [u8] {
    let b = std::fs::read(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    Vec::leak(b)
}

struct Bundle {
    pixelcnn: &'static [u8],
    background: &'static [u8],
    encoder: &'static [u8],
    decoder: &'static [u8],
    classifier: &'static [u8],
    gan: &'static [u8],
}

fn bundle() -> Bundle {
    Bundle {
        pixelcnn: read("models/pixelcnn-fmnist/model.egm"),
        background: read("models/pixelcnn-fmnist-bg/model.egm"),
        encoder: read("models/vae-fmnist/encoder.egm"),
        decoder: read("models/vae-fmnist/decoder.egm"),
        classifier: read("models/classifier-fmnist/classifier.egm"),
        gan: read("models/gan-fmnist/generator.egm"),
    }
}

/// Test frames: Fashion-MNIST garments and MNIST digits from the bundled IDX files.
fn frames(file: &str, n: usize) -> Vec<Vec<u8>> {
    let b = read(file);
    let dims = b[3] as usize;
    let size: usize = (1..dims).map(|i| u32::from_be_bytes(b[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).product();
    let start = 4 + 4 * dims;
    (0..n).map(|i| b[start + i * size..start + (i + 1) * size].to_vec()).collect()
}

fn zeroed_model() -> edgegen_model {
    edgegen_model { _opaque: [0; EDGEGEN_MODEL_WORDS] }
}

fn zeroed_guard() -> std::boxed::Box<edgegen_guard> {
    std::boxed::Box::new(edgegen_guard { _opaque: [0; EDGEGEN_GUARD_WORDS] })
}

fn open(bytes: &[u8]) -> edgegen_model {
    let mut m = zeroed_model();
    let s = unsafe { edgegen_model_open(&mut m, bytes.as_ptr(), bytes.len()) };
    assert_eq!(s, EDGEGEN_OK, "{}", name(s));
    m
}

fn open_vae(b: &Bundle) -> edgegen_model {
    let mut m = zeroed_model();
    let s = unsafe { edgegen_vae_open(&mut m, b.encoder.as_ptr(), b.encoder.len(), b.decoder.as_ptr(), b.decoder.len()) };
    assert_eq!(s, EDGEGEN_OK, "{}", name(s));
    m
}

fn info(m: &edgegen_model) -> edgegen_info {
    let mut i = core::mem::MaybeUninit::<edgegen_info>::uninit();
    assert_eq!(unsafe { edgegen_model_info(m, i.as_mut_ptr()) }, EDGEGEN_OK);
    unsafe { i.assume_init() }
}

fn name(s: edgegen_status) -> &'static str {
    unsafe { CStr::from_ptr(edgegen_status_name(s)) }.to_str().unwrap()
}

fn runtime(bytes: &'static [u8]) -> Model<'static> {
    Model::from_bytes(bytes).unwrap()
}

#[test]
fn header_is_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new().with_crate(&dir).with_config(config).generate().expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = dir.join("include/edgegen.h");
    if std::env::var_os("EDGEGEN_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "capi/include/edgegen.h is stale: regenerate it with `EDGEGEN_BLESS=1 cargo test -p edgegen-capi header_is_current` and commit it"
    );
}

#[test]
fn info_describes_every_family() {
    let b = bundle();
    let p = info(&open(b.pixelcnn));
    let engine = PixelCnn::new(runtime(b.pixelcnn), Kernels::Optimized).unwrap();
    assert_eq!((p.family, p.channels, p.height, p.width, p.image_size), (EDGEGEN_FAMILY_PIXELCNN, 1, 28, 28, 784));
    assert_eq!((p.arena_size, p.sample_arena_size, p.guard_calibrated), (engine.arena_len(), engine.sample_arena_len(), 1));
    assert!(p.sample_arena_size < p.arena_size);
    assert_eq!(p.crc, runtime(b.pixelcnn).crc());
    let name = unsafe { CStr::from_ptr(p.name.as_ptr()) }.to_str().unwrap();
    assert_eq!(name, runtime(b.pixelcnn).metadata().name_str());

    let v = info(&open_vae(&b));
    let vae = Vae::new(runtime(b.encoder), runtime(b.decoder), Kernels::Optimized).unwrap();
    assert_eq!((v.family, v.arena_size, v.latent as usize), (EDGEGEN_FAMILY_VAE, vae.arena_len(), vae.latent()));
    let c = info(&open(b.classifier));
    assert_eq!((c.family, c.classes, c.sample_arena_size), (EDGEGEN_FAMILY_CLASSIFIER, 10, 0));
    let g = info(&open(b.gan));
    assert_eq!(g.family, EDGEGEN_FAMILY_GAN);
    assert!(g.latent > 0 && g.sample_arena_size == g.arena_size);
    let e = info(&open(b.encoder));
    assert_eq!((e.family, e.sample_arena_size), (EDGEGEN_FAMILY_VAE_ENCODER, 0));
}

#[test]
fn calls_match_the_runtime_bit_for_bit() {
    let b = bundle();
    let (pm, bm, vm, cm) = (open(b.pixelcnn), open(b.background), open_vae(&b), open(b.classifier));
    let mut size = 0usize;
    assert_eq!(unsafe { edgegen_guard_arena_size(&pm, &bm, &vm, &mut size) }, EDGEGEN_OK);
    // An arena at an odd address: no alignment is asked of the caller.
    let mut guard_buf = vec![0u8; size + 1];
    let mut g = zeroed_guard();
    assert_eq!(unsafe { edgegen_guard_open(&mut *g, &pm, &bm, &vm, guard_buf[1..].as_mut_ptr(), size) }, EDGEGEN_OK);

    let pixelcnn = PixelCnn::new(runtime(b.pixelcnn), Kernels::Optimized).unwrap();
    let background = PixelCnn::new(runtime(b.background), Kernels::Optimized).unwrap();
    let vae = Vae::new(runtime(b.encoder), runtime(b.decoder), Kernels::Optimized).unwrap();
    let classifier = Classifier::new(runtime(b.classifier), Kernels::Optimized).unwrap();
    assert_eq!(size, PixelCnnScorer::arena_len(&pixelcnn, Some(&background), Some(&vae)));
    let mut rust_arena = vec![0u8; size];
    let mut rust_guard = PixelCnnScorer::guard(pixelcnn.clone(), Some(background), Some(vae.clone()), &mut rust_arena).unwrap();

    let mut arena = vec![0u8; info(&pm).arena_size.max(info(&vm).arena_size).max(info(&cm).arena_size)];
    let mut rust_scratch = arena.clone();
    let mut accepted = [0usize; 2];
    for (set, frames) in [frames("models/frames/fashion-mnist-test.idx", 6), frames("models/frames/mnist-digits.idx", 6)].iter().enumerate()
    {
        for f in frames {
            let mut l = edgegen_likelihood { log_prob: 0.0, bits_per_dim: 0.0 };
            assert_eq!(unsafe { edgegen_log_prob(&pm, arena.as_mut_ptr(), arena.len(), f.as_ptr(), f.len(), &mut l) }, EDGEGEN_OK);
            assert_eq!(l.log_prob.to_bits(), pixelcnn.log_prob(&mut rust_scratch, f).unwrap().to_bits());

            let mut a = core::mem::MaybeUninit::<edgegen_answer>::uninit();
            assert_eq!(unsafe { edgegen_guard_classify(&mut *g, &cm, f.as_ptr(), f.len(), a.as_mut_ptr()) }, EDGEGEN_OK);
            let a = unsafe { a.assume_init() };
            let r = rust_guard.classify(&classifier, f).unwrap();
            assert_eq!(a.verdict.score.to_bits(), r.verdict.score.to_bits());
            assert_eq!((a.verdict.accept == 1, a.class_index as usize), (r.verdict.accept, r.class));
            assert_eq!(a.probability.to_bits(), r.probability.to_bits());
            assert_eq!(a.label, r.label().map_or(-1, |l| l as i32));
            assert_eq!(a.verdict.bits_per_dim.to_bits(), l.bits_per_dim.to_bits());

            let mut v = core::mem::MaybeUninit::<edgegen_verdict>::uninit();
            assert_eq!(unsafe { edgegen_guard_check(&mut *g, f.as_ptr(), f.len(), v.as_mut_ptr()) }, EDGEGEN_OK);
            assert_eq!(unsafe { v.assume_init() }.verdict_bits(), a.verdict.verdict_bits());
            accepted[set] += a.verdict.accept as usize;

            let mut c = edgegen_class { class_index: 99, probability: 0.0 };
            assert_eq!(unsafe { edgegen_classify(&cm, arena.as_mut_ptr(), arena.len(), f.as_ptr(), f.len(), &mut c) }, EDGEGEN_OK);
            assert_eq!((c.class_index, c.probability.to_bits()), (a.class_index, a.probability.to_bits()));

            let mut vb = edgegen_vae_bounds { elbo: 0.0, iwae: 0.0, iwae_bits_per_dim: 0.0 };
            assert_eq!(unsafe { edgegen_vae_bound(&vm, 4, 7, arena.as_mut_ptr(), arena.len(), f.as_ptr(), f.len(), &mut vb) }, EDGEGEN_OK);
            let rb = vae.bounds(&mut rust_scratch, f, 4, &mut Rng::new(7)).unwrap();
            assert_eq!((vb.elbo.to_bits(), vb.iwae.to_bits()), (rb.elbo.to_bits(), rb.iwae.to_bits()));
        }
    }
    // The guard tells the sets apart (all but one garment accepted, most digits rejected).
    assert!(accepted[0] >= 5 && accepted[1] <= 3, "accepted garments/digits: {accepted:?}");

    // Sampling: PixelCNN in its row-window arena, the VAE and the GAN.
    let gm = open(b.gan);
    let gan = edgegen_runtime::engine::Gan::new(runtime(b.gan), Kernels::Optimized).unwrap();
    let (mut img, mut want) = (vec![0u8; 784], vec![0u8; 784]);
    let mut small = vec![0u8; info(&pm).sample_arena_size];
    assert_eq!(unsafe { edgegen_sample(&pm, 3, small.as_mut_ptr(), small.len(), img.as_mut_ptr(), img.len()) }, EDGEGEN_OK);
    pixelcnn.sample(&mut rust_scratch, 3, &mut want).unwrap();
    assert_eq!(img, want);
    assert_eq!(unsafe { edgegen_sample(&vm, 5, arena.as_mut_ptr(), arena.len(), img.as_mut_ptr(), img.len()) }, EDGEGEN_OK);
    vae.sample(&mut rust_scratch, 5, &mut want).unwrap();
    assert_eq!(img, want);
    assert_eq!(unsafe { edgegen_sample(&gm, 9, arena.as_mut_ptr(), arena.len(), img.as_mut_ptr(), img.len()) }, EDGEGEN_OK);
    let mut ga = vec![0u8; gan.arena_len()];
    gan.sample(&mut ga, 9, &mut want).unwrap();
    assert_eq!(img, want);
}

impl edgegen_verdict {
    fn verdict_bits(&self) -> (u32, u32, u32, u64) {
        (self.score.to_bits(), self.threshold.to_bits(), self.accept, self.bits_per_dim.to_bits())
    }
}

/// A conditional GAN from C: its classes in `edgegen_model_info`, each class asked for (and
/// one drawn by the seed) equal to the runtime's `Gan::sample_class`; classes it lacks, a class
/// for an unconditional GAN and a model that is no GAN are refused.
#[test]
fn conditional_gan_draws_the_class_asked_for() {
    let bytes = read("models/cgan-fmnist/generator.egm");
    let m = open(bytes);
    let i = info(&m);
    assert_eq!((i.family, i.classes, i.latent), (EDGEGEN_FAMILY_GAN, 10, 32));
    let gan = edgegen_runtime::engine::Gan::new(runtime(bytes), Kernels::Optimized).unwrap();
    let mut arena = vec![0u8; i.sample_arena_size + 3];
    let mut ga = vec![0u8; gan.arena_len()];
    let (mut img, mut want) = (vec![0u8; 784], vec![0u8; 784]);
    let mut drawn = -5i32;
    for class in [0, 7, 9] {
        let s = unsafe {
            edgegen_sample_class(&m, 4, class, arena[3..].as_mut_ptr(), arena.len() - 3, img.as_mut_ptr(), img.len(), &mut drawn)
        };
        assert_eq!(s, EDGEGEN_OK);
        assert_eq!(gan.sample_class(&mut ga, 4, Some(class as usize), &mut want).unwrap(), class as usize);
        assert_eq!((img.clone(), drawn), (want.clone(), class));
    }
    let s = unsafe { edgegen_sample_class(&m, 4, -1, arena.as_mut_ptr(), arena.len(), img.as_mut_ptr(), img.len(), &mut drawn) };
    assert_eq!(s, EDGEGEN_OK);
    assert_eq!(gan.sample_class(&mut ga, 4, None, &mut want).unwrap(), drawn as usize);
    assert_eq!(img, want);
    // edgegen_sample draws the seed's class too.
    assert_eq!(unsafe { edgegen_sample(&m, 4, arena.as_mut_ptr(), arena.len(), want.as_mut_ptr(), want.len()) }, EDGEGEN_OK);
    assert_eq!(img, want);
    let null = core::ptr::null_mut();
    for bad in [10, -2] {
        let s = unsafe { edgegen_sample_class(&m, 4, bad, arena.as_mut_ptr(), arena.len(), img.as_mut_ptr(), img.len(), null) };
        assert_eq!(name(s), "EDGEGEN_ERR_PARAMETER", "class {bad}");
    }
    let plain = open(bundle().gan);
    assert_eq!(info(&plain).classes, 0);
    let s = unsafe { edgegen_sample_class(&plain, 4, 0, arena.as_mut_ptr(), arena.len(), img.as_mut_ptr(), img.len(), null) };
    assert_eq!(name(s), "EDGEGEN_ERR_PARAMETER");
    let s = unsafe { edgegen_sample_class(&plain, 4, -1, arena.as_mut_ptr(), arena.len(), img.as_mut_ptr(), img.len(), null) };
    assert_eq!(s, EDGEGEN_OK, "an unconditional GAN samples with class -1");
    let classifier = open(bundle().classifier);
    let s = unsafe { edgegen_sample_class(&classifier, 4, 0, arena.as_mut_ptr(), arena.len(), img.as_mut_ptr(), img.len(), null) };
    assert_eq!(name(s), "EDGEGEN_ERR_WRONG_FAMILY");
}

#[test]
fn misuse_is_an_error_code_not_a_crash() {
    let b = bundle();
    let p = open(b.pixelcnn);
    let mut m = zeroed_model();
    let mut l = edgegen_likelihood { log_prob: 1.0, bits_per_dim: 1.0 };
    let mut arena = vec![0u8; info(&p).arena_size];
    let img = vec![0u8; 784];
    unsafe {
        // Null pointers.
        assert_eq!(edgegen_model_open(ptr::null_mut(), b.pixelcnn.as_ptr(), b.pixelcnn.len()), EDGEGEN_ERR_NULL);
        assert_eq!(edgegen_model_open(&mut m, ptr::null(), 10), EDGEGEN_ERR_NULL);
        assert_eq!(edgegen_model_info(&p, ptr::null_mut()), EDGEGEN_ERR_NULL);
        assert_eq!(edgegen_log_prob(&p, arena.as_mut_ptr(), arena.len(), img.as_ptr(), 784, ptr::null_mut()), EDGEGEN_ERR_NULL);
        assert_eq!(edgegen_log_prob(ptr::null(), arena.as_mut_ptr(), arena.len(), img.as_ptr(), 784, &mut l), EDGEGEN_ERR_NULL);
        // Not files, cut files, corrupt files: the handle stays unopened.
        let text = [b'x'; 200];
        assert_eq!(edgegen_model_open(&mut m, text.as_ptr(), text.len()), EDGEGEN_ERR_BAD_MAGIC);
        assert_eq!(edgegen_model_open(&mut m, b.pixelcnn.as_ptr(), 0), EDGEGEN_ERR_TRUNCATED);
        assert_eq!(edgegen_model_open(&mut m, b.pixelcnn.as_ptr(), b.pixelcnn.len() - 100), EDGEGEN_ERR_TRUNCATED);
        let mut bad = b.pixelcnn.to_vec();
        bad[1000] ^= 0x40;
        assert_eq!(edgegen_model_open(&mut m, bad.as_ptr(), bad.len()), EDGEGEN_ERR_CHECKSUM);
        assert_eq!(edgegen_model_info(&m, &mut core::mem::zeroed()), EDGEGEN_ERR_HANDLE);
        // A failed open over an opened handle closes it.
        let mut q = open(b.pixelcnn);
        assert_eq!(edgegen_model_open(&mut q, bad.as_ptr(), bad.len()), EDGEGEN_ERR_CHECKSUM);
        assert_eq!(edgegen_log_prob(&q, arena.as_mut_ptr(), arena.len(), img.as_ptr(), 784, &mut l), EDGEGEN_ERR_HANDLE);
        // Wrong lengths, small arenas, wrong families.
        assert_eq!(edgegen_log_prob(&p, arena.as_mut_ptr(), arena.len(), img.as_ptr(), 783, &mut l), EDGEGEN_ERR_LENGTH);
        assert_eq!(edgegen_log_prob(&p, arena.as_mut_ptr(), arena.len() - 1, img.as_ptr(), 784, &mut l), EDGEGEN_ERR_ARENA_TOO_SMALL);
        let c = open(b.classifier);
        assert_eq!(edgegen_log_prob(&c, arena.as_mut_ptr(), arena.len(), img.as_ptr(), 784, &mut l), EDGEGEN_ERR_WRONG_FAMILY);
        let mut out = vec![0u8; 784];
        assert_eq!(edgegen_sample(&c, 1, arena.as_mut_ptr(), arena.len(), out.as_mut_ptr(), 784), EDGEGEN_ERR_WRONG_FAMILY);
        let small = info(&p).sample_arena_size - 1;
        assert_eq!(edgegen_sample(&p, 1, arena.as_mut_ptr(), small, out.as_mut_ptr(), 784), EDGEGEN_ERR_ARENA_TOO_SMALL);
        assert_eq!(
            edgegen_vae_open(&mut m, b.decoder.as_ptr(), b.decoder.len(), b.encoder.as_ptr(), b.encoder.len()),
            EDGEGEN_ERR_WRONG_FAMILY
        );
        let v = open_vae(&b);
        let mut vb = core::mem::zeroed();
        assert_eq!(edgegen_vae_bound(&v, 0, 1, arena.as_mut_ptr(), arena.len(), img.as_ptr(), 784, &mut vb), EDGEGEN_ERR_PARAMETER);
        // The guard: its models, its arena, its calibration.
        let bg = open(b.background);
        let mut size = 0;
        assert_eq!(edgegen_guard_arena_size(&p, &bg, &v, &mut size), EDGEGEN_OK);
        let mut garena = vec![0u8; size];
        let mut g = zeroed_guard();
        let mut verdict = core::mem::zeroed();
        assert_eq!(edgegen_guard_check(&mut *g, img.as_ptr(), 784, &mut verdict), EDGEGEN_ERR_HANDLE);
        assert_eq!(edgegen_guard_open(&mut *g, &p, &bg, ptr::null(), garena.as_mut_ptr(), size), EDGEGEN_ERR_NO_GUARD);
        assert_eq!(edgegen_guard_open(&mut *g, &bg, &bg, &v, garena.as_mut_ptr(), size), EDGEGEN_ERR_NO_GUARD);
        assert_eq!(edgegen_guard_open(&mut *g, &c, &bg, &v, garena.as_mut_ptr(), size), EDGEGEN_ERR_WRONG_FAMILY);
        assert_eq!(edgegen_guard_open(&mut *g, &p, &bg, &v, garena.as_mut_ptr(), size - 1), EDGEGEN_ERR_ARENA_TOO_SMALL);
        assert_eq!(edgegen_guard_check(&mut *g, img.as_ptr(), 784, &mut verdict), EDGEGEN_ERR_HANDLE);
        assert_eq!(edgegen_guard_open(&mut *g, &p, &bg, &v, garena.as_mut_ptr(), size), EDGEGEN_OK);
        assert_eq!(edgegen_guard_check(&mut *g, img.as_ptr(), 700, &mut verdict), EDGEGEN_ERR_LENGTH);
        assert_eq!(edgegen_guard_check(&mut *g, img.as_ptr(), 784, &mut verdict), EDGEGEN_OK);
        let mut answer = core::mem::zeroed();
        assert_eq!(edgegen_guard_classify(&mut *g, &p, img.as_ptr(), 784, &mut answer), EDGEGEN_ERR_WRONG_FAMILY);
    }
}

#[test]
fn every_status_has_a_name_and_a_message() {
    for code in 0..=13 {
        let s = -code;
        let n = name(s);
        let m = unsafe { CStr::from_ptr(edgegen_status_message(s)) }.to_str().unwrap();
        assert!(n.starts_with("EDGEGEN_") && n != "EDGEGEN_UNKNOWN" && m.len() > 5, "{s}: {n} {m}");
    }
    assert_eq!(name(-14), "EDGEGEN_UNKNOWN");
    assert_eq!(name(1), "EDGEGEN_UNKNOWN");
    assert_eq!(unsafe { CStr::from_ptr(edgegen_version()) }.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}
