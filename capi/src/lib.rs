//! # edgegen-capi
//!
//! The edgegen runtime for firmware written in C: open a compiled model (`.egm`) from a byte
//! array, ask how much arena it needs, and run the calls only edgegen has — the exact
//! likelihood in bits/dim, the calibrated outlier guard and its verdict, classification that
//! answers only when the guard accepts, and sampling — bit for bit as the Rust runtime and
//! the host compute them.
//!
//! Built as a static library (`libedgegen_capi.a`) for the host, `thumbv7em-none-eabihf`
//! and `thumbv8m.main-none-eabihf`; the header `include/edgegen.h` is generated from this
//! file by cbindgen (a unit test fails when it is stale). No allocator: every byte the
//! library touches is a buffer the caller passes (model bytes, handles, arenas, images).
//!
//! ## The contract at the boundary
//!
//! * Every function returns an [`edgegen_status`] (0 = [`EDGEGEN_OK`], negative = an error
//!   [`edgegen_status_name`] and [`edgegen_status_message`] name) and writes its results
//!   through out-pointers only on success.
//! * Null pointers, buffers of the wrong length, unopened handles, corrupt or foreign model
//!   files and too-small arenas are errors, never a crash. Nothing panics across the
//!   boundary: on the host a panic inside the library (a bug) is caught and returned as
//!   [`EDGEGEN_ERR_INTERNAL`]; on a bare-metal target the library's panic handler executes a
//!   permanently undefined instruction, so the firmware's HardFault handler sees it.
//! * Handles ([`edgegen_model`], [`edgegen_guard`]) are plain structs the caller allocates
//!   (static, stack or its own pool); they borrow the model bytes and (the guard) the arena,
//!   which must stay valid and unmoved while the handle is used. A handle is not
//!   thread-safe: use one from one thread (or task) at a time; different handles are
//!   independent, and model handles are read-only after opening (several guards may share
//!   them).
#![no_std]
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

#[cfg(not(target_os = "none"))]
extern crate std;

use core::ffi::c_char;
use core::mem::{align_of, size_of};
use core::ptr;

use edgegen_runtime::engine::{Classifier, Gan, PixelCnn, Vae};
use edgegen_runtime::guard::{Guard, PixelCnnScorer, ScoreKind};
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::likelihood;
use edgegen_runtime::model::{Family, Model};
use edgegen_runtime::rng::Rng;
use edgegen_runtime::Error;

#[cfg(test)]
mod tests;

/// The result of every call: [`EDGEGEN_OK`] (0) or a negative error code.
pub type edgegen_status = i32;

/// Success.
pub const EDGEGEN_OK: edgegen_status = 0;
/// A pointer argument that must not be null was null.
pub const EDGEGEN_ERR_NULL: edgegen_status = -1;
/// The handle was never opened (or its open failed, or the struct was overwritten).
pub const EDGEGEN_ERR_HANDLE: edgegen_status = -2;
/// A buffer has the wrong length (an image must be exactly `edgegen_info.image_size` bytes).
pub const EDGEGEN_ERR_LENGTH: edgegen_status = -3;
/// A parameter is outside its valid range, or two models do not belong together.
pub const EDGEGEN_ERR_PARAMETER: edgegen_status = -4;
/// The model bytes are shorter than the file's header says.
pub const EDGEGEN_ERR_TRUNCATED: edgegen_status = -5;
/// The bytes are not an edgegen model file (no `EGMF` magic).
pub const EDGEGEN_ERR_BAD_MAGIC: edgegen_status = -6;
/// A model file format version this library does not read.
pub const EDGEGEN_ERR_VERSION: edgegen_status = -7;
/// The model file's checksum does not match its contents: the file is corrupt.
pub const EDGEGEN_ERR_CHECKSUM: edgegen_status = -8;
/// The model file is structurally invalid.
pub const EDGEGEN_ERR_MALFORMED: edgegen_status = -9;
/// The arena is smaller than the call needs (see `edgegen_info` and
/// `edgegen_guard_arena_size`).
pub const EDGEGEN_ERR_ARENA_TOO_SMALL: edgegen_status = -10;
/// The model is of another family than the call runs (e.g. `edgegen_log_prob` on a GAN).
pub const EDGEGEN_ERR_WRONG_FAMILY: edgegen_status = -11;
/// The PixelCNN file holds no calibrated guard (`edgegen calibrate` writes one), or its
/// score needs a model that was not given (the background model or the VAE).
pub const EDGEGEN_ERR_NO_GUARD: edgegen_status = -12;
/// A bug in the library (a caught panic, host builds only): please report it.
pub const EDGEGEN_ERR_INTERNAL: edgegen_status = -13;

/// Family of a VAE encoder file (image → posterior).
pub const EDGEGEN_FAMILY_VAE_ENCODER: u32 = 1;
/// Family of a VAE decoder file (latent → pixel distribution).
pub const EDGEGEN_FAMILY_VAE_DECODER: u32 = 2;
/// Family of a PixelCNN file (exact likelihood, guard, sampling).
pub const EDGEGEN_FAMILY_PIXELCNN: u32 = 3;
/// Family of a GAN generator file (sampling).
pub const EDGEGEN_FAMILY_GAN: u32 = 4;
/// Family of a classifier file (class logits).
pub const EDGEGEN_FAMILY_CLASSIFIER: u32 = 5;
/// A VAE opened from its encoder and decoder files together (`edgegen_vae_open`).
pub const EDGEGEN_FAMILY_VAE: u32 = 6;

/// Bytes of a model handle's storage.
pub const EDGEGEN_MODEL_SIZE: usize = 320;
/// Bytes of a guard handle's storage.
pub const EDGEGEN_GUARD_SIZE: usize = 2048;
/// `EDGEGEN_MODEL_SIZE` in 8-byte words.
pub const EDGEGEN_MODEL_WORDS: usize = 40;
/// `EDGEGEN_GUARD_SIZE` in 8-byte words.
pub const EDGEGEN_GUARD_WORDS: usize = 256;

/// A model opened by `edgegen_model_open` or `edgegen_vae_open`: opaque storage the caller
/// allocates (`EDGEGEN_MODEL_SIZE` bytes, 8-byte aligned). It borrows the model bytes.
#[repr(C)]
pub struct edgegen_model {
    /// Opaque: written by the open call, read by the others.
    pub _opaque: [u64; EDGEGEN_MODEL_WORDS],
}

/// A calibrated guard opened by `edgegen_guard_open`: opaque storage the caller allocates
/// (`EDGEGEN_GUARD_SIZE` bytes, 8-byte aligned). It borrows the model bytes and its arena.
#[repr(C)]
pub struct edgegen_guard {
    /// Opaque: written by `edgegen_guard_open`, read and updated by the guard's calls.
    pub _opaque: [u64; EDGEGEN_GUARD_WORDS],
}

/// What a model file holds and what its calls need.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct edgegen_info {
    /// `EDGEGEN_FAMILY_*`.
    pub family: u32,
    /// Image geometry: channels (1 gray, 3 colour; images are planar, channel by channel).
    pub channels: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Image width in pixels.
    pub width: u32,
    /// Bytes of one image (`channels · height · width`, one byte per value).
    pub image_size: usize,
    /// Arena bytes for `edgegen_log_prob`, `edgegen_classify` and `edgegen_vae_bound` (the
    /// network's planned arena; for a VAE the larger of its encoder's and decoder's).
    pub arena_size: usize,
    /// Arena bytes for `edgegen_sample` (0 when the family does not sample). For a PixelCNN
    /// the row-window arena (smaller than `arena_size` for the bundled models).
    pub sample_arena_size: usize,
    /// Latent dimensions (VAE and GAN; 0 otherwise).
    pub latent: u32,
    /// Classes (a classifier's, or those a conditional GAN draws on request with
    /// `edgegen_sample_class`; 0 otherwise).
    pub classes: u32,
    /// 1 when a PixelCNN file holds a calibrated guard (`edgegen_guard_open` can use it).
    pub guard_calibrated: u32,
    /// The file's CRC-32 (for a VAE: the encoder's), as `edgegen inspect` prints it.
    pub crc: u32,
    /// The model's name from its file, UTF-8, NUL-terminated.
    pub name: [c_char; 33],
}

/// The exact likelihood of one image under a PixelCNN.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct edgegen_likelihood {
    /// log p(image) in nats.
    pub log_prob: f64,
    /// −log₂ p(image) / (channels · height · width): bits per dimension.
    pub bits_per_dim: f64,
}

/// A VAE's bounds on log p(image) from k importance samples.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct edgegen_vae_bounds {
    /// The ELBO in nats.
    pub elbo: f64,
    /// The k-sample importance-weighted bound in nats (≥ the ELBO).
    pub iwae: f64,
    /// The importance-weighted bound in bits per dimension.
    pub iwae_bits_per_dim: f64,
}

/// The guard's decision on one image.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct edgegen_verdict {
    /// The guard's score (higher = more anomalous).
    pub score: f32,
    /// The calibrated threshold it was compared with.
    pub threshold: f32,
    /// 1 when the image is accepted (`score <= threshold`), 0 when rejected.
    pub accept: u32,
    /// The image's bits/dim under the PixelCNN (computed on the way).
    pub bits_per_dim: f64,
}

/// A classifier's answer.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct edgegen_class {
    /// The most probable class (lowest index on ties).
    pub class_index: u32,
    /// Its softmax probability p(y|x).
    pub probability: f64,
}

/// A classifier's answer through the guard: the class, and the verdict that decides
/// whether to act on it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct edgegen_answer {
    /// The guard's verdict on the image.
    pub verdict: edgegen_verdict,
    /// The classifier's most probable class, whatever the verdict.
    pub class_index: u32,
    /// Its softmax probability p(y|x).
    pub probability: f64,
    /// The answer to act on: `class_index` when the guard accepts, −1 when it rejects.
    pub label: i32,
}

// ---------------------------------------------------------------------------------------
// Handles: a tag, then the Rust value, written into the caller's storage.

const MODEL_TAG: u32 = 0x4F4D_4745; // "EGMO"
const GUARD_TAG: u32 = 0x4447_4745; // "EGGD"

/// What a model handle holds: one validated file, or a VAE's two.
#[derive(Clone, Copy)]
enum Loaded {
    One(Model<'static>),
    Vae(Model<'static>, Model<'static>),
}

#[repr(C)]
struct Slot<T> {
    tag: u32,
    value: T,
}

type GuardValue = Guard<PixelCnnScorer<'static, 'static>>;

const _: () = {
    assert!(size_of::<Slot<Loaded>>() <= size_of::<edgegen_model>());
    assert!(align_of::<Slot<Loaded>>() <= align_of::<edgegen_model>());
    assert!(size_of::<Slot<GuardValue>>() <= size_of::<edgegen_guard>());
    assert!(align_of::<Slot<GuardValue>>() <= align_of::<edgegen_guard>());
    assert!(size_of::<edgegen_model>() == EDGEGEN_MODEL_SIZE && size_of::<edgegen_guard>() == EDGEGEN_GUARD_SIZE);
};

type Result<T> = core::result::Result<T, edgegen_status>;

fn status(e: Error) -> edgegen_status {
    match e {
        Error::LengthMismatch { .. } => EDGEGEN_ERR_LENGTH,
        Error::InvalidParameter(_) => EDGEGEN_ERR_PARAMETER,
        Error::Truncated { .. } => EDGEGEN_ERR_TRUNCATED,
        Error::BadMagic => EDGEGEN_ERR_BAD_MAGIC,
        Error::UnsupportedVersion { .. } => EDGEGEN_ERR_VERSION,
        Error::ChecksumMismatch { .. } => EDGEGEN_ERR_CHECKSUM,
        Error::Malformed { .. } => EDGEGEN_ERR_MALFORMED,
        Error::ArenaTooSmall { .. } => EDGEGEN_ERR_ARENA_TOO_SMALL,
        Error::WrongFamily => EDGEGEN_ERR_WRONG_FAMILY,
        Error::NoGuard => EDGEGEN_ERR_NO_GUARD,
        _ => EDGEGEN_ERR_INTERNAL,
    }
}

/// Runs one call's body; on the host a panic (a bug) becomes [`EDGEGEN_ERR_INTERNAL`]
/// instead of unwinding into C.
fn guarded(f: impl FnOnce() -> Result<()>) -> edgegen_status {
    #[cfg(not(target_os = "none"))]
    let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).unwrap_or(Err(EDGEGEN_ERR_INTERNAL));
    #[cfg(target_os = "none")]
    let r = f();
    match r {
        Ok(()) => EDGEGEN_OK,
        Err(s) => s,
    }
}

/// A shared view of `len` bytes at `p` (null only when `len` is 0).
///
/// # Safety
/// `p` must point to `len` readable bytes that stay valid and unchanged for `'a`.
unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8]> {
    if p.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(EDGEGEN_ERR_NULL) };
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// # Safety
/// `p` must point to `len` writable bytes that nothing else uses for `'a`.
unsafe fn bytes_mut<'a>(p: *mut u8, len: usize) -> Result<&'a mut [u8]> {
    if p.is_null() {
        return Err(EDGEGEN_ERR_NULL);
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
}

/// # Safety
/// `p` is null or points to an `edgegen_model` (opened or not).
unsafe fn model<'a>(p: *const edgegen_model) -> Result<&'a Loaded> {
    if p.is_null() {
        return Err(EDGEGEN_ERR_NULL);
    }
    let slot = p.cast::<Slot<Loaded>>();
    // SAFETY: the storage is at least as large and aligned as a slot (checked above); the
    // tag is read as plain bytes before the value is trusted.
    unsafe {
        if ptr::read(ptr::addr_of!((*slot).tag)) != MODEL_TAG {
            return Err(EDGEGEN_ERR_HANDLE);
        }
        Ok(&(*slot).value)
    }
}

/// # Safety
/// `p` is null or points to an `edgegen_model` the caller may use for `'a`.
unsafe fn optional_model<'a>(p: *const edgegen_model) -> Result<Option<&'a Loaded>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: as for `model`.
        unsafe { model(p) }.map(Some)
    }
}

/// # Safety
/// `p` is null or points to an `edgegen_guard` (opened or not) the caller owns.
unsafe fn guard<'a>(p: *mut edgegen_guard) -> Result<&'a mut GuardValue> {
    if p.is_null() {
        return Err(EDGEGEN_ERR_NULL);
    }
    let slot = p.cast::<Slot<GuardValue>>();
    // SAFETY: as for `model`.
    unsafe {
        if ptr::read(ptr::addr_of!((*slot).tag)) != GUARD_TAG {
            return Err(EDGEGEN_ERR_HANDLE);
        }
        Ok(&mut (*slot).value)
    }
}

/// Writes `value` through `out` (checked non-null).
///
/// # Safety
/// `out` is null or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) -> Result<()> {
    if out.is_null() {
        return Err(EDGEGEN_ERR_NULL);
    }
    // SAFETY: the caller's contract.
    unsafe { out.write(value) };
    Ok(())
}

fn one(m: &Loaded) -> Result<Model<'static>> {
    match m {
        Loaded::One(m) => Ok(*m),
        Loaded::Vae(..) => Err(EDGEGEN_ERR_WRONG_FAMILY),
    }
}

fn pixelcnn(m: &Loaded) -> Result<PixelCnn<'static>> {
    PixelCnn::new(one(m)?, Kernels::Optimized).map_err(status)
}

fn vae(m: &Loaded) -> Result<Vae<'static>> {
    match m {
        Loaded::Vae(e, d) => Vae::new(*e, *d, Kernels::Optimized).map_err(status),
        Loaded::One(_) => Err(EDGEGEN_ERR_WRONG_FAMILY),
    }
}

fn info_of(m: &Loaded) -> Result<edgegen_info> {
    let file = match m {
        Loaded::One(m) | Loaded::Vae(m, _) => *m,
    };
    let md = file.metadata();
    let g = file.geometry();
    let mut name = [0 as c_char; 33];
    for (d, s) in name.iter_mut().zip(md.name.iter().take(32)) {
        *d = *s as c_char;
    }
    let mut info = edgegen_info {
        family: md.family as u32,
        channels: g.channels as u32,
        height: g.height as u32,
        width: g.width as u32,
        image_size: g.values(),
        arena_size: file.arena_len(),
        sample_arena_size: 0,
        latent: 0,
        classes: 0,
        guard_calibrated: 0,
        crc: file.crc(),
        name,
    };
    match (m, md.family) {
        (Loaded::Vae(..), _) => {
            let v = vae(m)?;
            info.family = EDGEGEN_FAMILY_VAE;
            info.arena_size = v.arena_len();
            info.sample_arena_size = v.arena_len();
            info.latent = v.latent() as u32;
        }
        (_, Family::PixelCnn) => {
            let p = pixelcnn(m)?;
            info.sample_arena_size = p.sample_arena_len();
            info.guard_calibrated =
                u32::from(md.guard_flags & 1 != 0 && md.guard_threshold.is_finite() && ScoreKind::from_u8(md.guard_score).is_some());
        }
        (_, Family::GanGenerator) => {
            let g = Gan::new(file, Kernels::Optimized).map_err(status)?;
            info.sample_arena_size = g.arena_len();
            info.latent = g.latent() as u32;
            info.classes = g.classes() as u32;
        }
        (_, Family::Classifier) => {
            let c = Classifier::new(file, Kernels::Optimized).map_err(status)?;
            info.classes = c.classes() as u32;
        }
        _ => info.latent = md.latent as u32,
    }
    Ok(info)
}

// ---------------------------------------------------------------------------------------
// Models.

/// Opens a compiled model file (`.egm`: a PixelCNN, a GAN generator, a classifier, or one
/// half of a VAE) held in `bytes[0..len]`, validating all of it once (magic, version,
/// checksum, every offset, shape and quantization parameter).
///
/// `bytes` is borrowed, not copied: it must stay valid and unchanged while `model` (or a
/// guard opened with it) is used — typically a `const` array in flash (`edgegen export
/// c-array` writes one, 16-byte aligned; any alignment works). On failure `model` is left
/// unopened and every call on it returns `EDGEGEN_ERR_HANDLE`.
///
/// # Safety
/// `model` is null or valid for writes of an `edgegen_model`; `bytes` is null or points to
/// `len` readable bytes that outlive every use of the handle.
#[no_mangle]
pub unsafe extern "C" fn edgegen_model_open(model: *mut edgegen_model, bytes: *const u8, len: usize) -> edgegen_status {
    guarded(|| {
        if model.is_null() {
            return Err(EDGEGEN_ERR_NULL);
        }
        let slot = model.cast::<Slot<Loaded>>();
        // SAFETY: storage checked non-null, sized and aligned for a slot.
        unsafe { ptr::addr_of_mut!((*slot).tag).write(0) };
        // SAFETY: the caller's contract on `bytes`.
        let file = Model::from_bytes(unsafe { self::bytes(bytes, len) }?).map_err(status)?;
        // SAFETY: as above.
        unsafe { slot.write(Slot { tag: MODEL_TAG, value: Loaded::One(file) }) };
        Ok(())
    })
}

/// Opens a VAE from its encoder and decoder files (both validated as by
/// `edgegen_model_open`, and checked to belong together). Both byte arrays are borrowed.
///
/// # Safety
/// As for `edgegen_model_open`, for both byte arrays.
#[no_mangle]
pub unsafe extern "C" fn edgegen_vae_open(
    model: *mut edgegen_model,
    encoder: *const u8,
    encoder_len: usize,
    decoder: *const u8,
    decoder_len: usize,
) -> edgegen_status {
    guarded(|| {
        if model.is_null() {
            return Err(EDGEGEN_ERR_NULL);
        }
        let slot = model.cast::<Slot<Loaded>>();
        // SAFETY: as in `edgegen_model_open`.
        unsafe { ptr::addr_of_mut!((*slot).tag).write(0) };
        // SAFETY: the caller's contract on both arrays.
        let (e, d) = unsafe { (bytes(encoder, encoder_len)?, bytes(decoder, decoder_len)?) };
        let (e, d) = (Model::from_bytes(e).map_err(status)?, Model::from_bytes(d).map_err(status)?);
        Vae::new(e, d, Kernels::Optimized).map_err(status)?;
        // SAFETY: as above.
        unsafe { slot.write(Slot { tag: MODEL_TAG, value: Loaded::Vae(e, d) }) };
        Ok(())
    })
}

/// What `model` holds: family, image geometry, the arena sizes its calls need, name.
///
/// # Safety
/// `model` is null or points to an `edgegen_model`; `info` is null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn edgegen_model_info(model: *const edgegen_model, info: *mut edgegen_info) -> edgegen_status {
    guarded(|| {
        // SAFETY: the caller's contract.
        let m = unsafe { self::model(model) }?;
        let i = info_of(m)?;
        // SAFETY: the caller's contract.
        unsafe { put(info, i) }
    })
}

/// The exact log-likelihood of an 8-bit image under a PixelCNN (`image_len` must be
/// `edgegen_info.image_size`; values 0..=255, planar), in nats and bits per dimension.
/// Runs in `arena` (at least `edgegen_info.arena_size` bytes, any alignment; its contents
/// on entry do not matter and are scratch afterwards).
///
/// # Safety
/// Pointers null or valid for their lengths; `arena` not used by anything else meanwhile.
#[no_mangle]
pub unsafe extern "C" fn edgegen_log_prob(
    model: *const edgegen_model,
    arena: *mut u8,
    arena_len: usize,
    image: *const u8,
    image_len: usize,
    out: *mut edgegen_likelihood,
) -> edgegen_status {
    guarded(|| {
        // SAFETY: the caller's contract.
        let (m, arena, image) = unsafe { (self::model(model)?, bytes_mut(arena, arena_len)?, bytes(image, image_len)?) };
        let p = pixelcnn(m)?;
        if image.len() != p.geometry().values() {
            return Err(EDGEGEN_ERR_LENGTH);
        }
        let log_prob = p.log_prob(arena, image).map_err(status)?;
        let r = edgegen_likelihood { log_prob, bits_per_dim: likelihood::bits_per_dim(log_prob, image.len()) };
        // SAFETY: the caller's contract.
        unsafe { put(out, r) }
    })
}

/// A VAE's ELBO and k-sample importance-weighted bound on log p(image) (`k` from 1 to 64),
/// the k latent samples drawn from `seed` (the same seed gives the same bounds on every
/// target). Runs in `arena` (`edgegen_info.arena_size` bytes).
///
/// # Safety
/// As for `edgegen_log_prob`.
#[no_mangle]
pub unsafe extern "C" fn edgegen_vae_bound(
    model: *const edgegen_model,
    k: u32,
    seed: u64,
    arena: *mut u8,
    arena_len: usize,
    image: *const u8,
    image_len: usize,
    out: *mut edgegen_vae_bounds,
) -> edgegen_status {
    guarded(|| {
        // SAFETY: the caller's contract.
        let (m, arena, image) = unsafe { (self::model(model)?, bytes_mut(arena, arena_len)?, bytes(image, image_len)?) };
        let v = vae(m)?;
        if !(1..=64).contains(&k) {
            return Err(EDGEGEN_ERR_PARAMETER);
        }
        if image.len() != v.geometry().values() {
            return Err(EDGEGEN_ERR_LENGTH);
        }
        let b = v.bounds(arena, image, k as usize, &mut Rng::new(seed)).map_err(status)?;
        // SAFETY: the caller's contract.
        unsafe { put(out, edgegen_vae_bounds { elbo: b.elbo, iwae: b.iwae, iwae_bits_per_dim: b.iwae_bpd() }) }
    })
}

/// Draws one image (`image_len` = `edgegen_info.image_size` bytes) from a PixelCNN (pixel by
/// pixel, in the row-window arena), a VAE or a GAN, from `seed`: the same seed gives the
/// same image on every target. Runs in `arena` (`edgegen_info.sample_arena_size` bytes).
///
/// # Safety
/// As for `edgegen_log_prob`; `image` valid for `image_len` writes.
#[no_mangle]
pub unsafe extern "C" fn edgegen_sample(
    model: *const edgegen_model,
    seed: u64,
    arena: *mut u8,
    arena_len: usize,
    image: *mut u8,
    image_len: usize,
) -> edgegen_status {
    guarded(|| {
        // SAFETY: the caller's contract.
        let (m, arena, out) = unsafe { (self::model(model)?, bytes_mut(arena, arena_len)?, bytes_mut(image, image_len)?) };
        let r = match m {
            Loaded::Vae(..) => {
                let v = vae(m)?;
                if out.len() != v.geometry().values() {
                    return Err(EDGEGEN_ERR_LENGTH);
                }
                v.sample(arena, seed, out)
            }
            Loaded::One(file) => match file.metadata().family {
                Family::PixelCnn => {
                    let p = pixelcnn(m)?;
                    if out.len() != p.geometry().values() {
                        return Err(EDGEGEN_ERR_LENGTH);
                    }
                    if arena.len() < p.sample_arena_len() {
                        return Err(EDGEGEN_ERR_ARENA_TOO_SMALL);
                    }
                    p.sample(arena, seed, out)
                }
                Family::GanGenerator => {
                    let g = Gan::new(*file, Kernels::Optimized).map_err(status)?;
                    if out.len() != g.geometry().values() {
                        return Err(EDGEGEN_ERR_LENGTH);
                    }
                    g.sample(arena, seed, out)
                }
                _ => return Err(EDGEGEN_ERR_WRONG_FAMILY),
            },
        };
        r.map_err(status)
    })
}

/// Draws one image of class `class` from a conditional GAN (`edgegen_info.classes` > 0),
/// from `seed`: the seed's noise is the same for every class, so one seed drawn as each class
/// gives the same style in every class. `class` −1 lets the seed draw the class (as
/// `edgegen_sample` does); the class drawn is written to `*drawn` when `drawn` is not null.
/// `EDGEGEN_ERR_PARAMETER` for a class the model does not have, or any class (≥ 0) for a
/// model without classes; `EDGEGEN_ERR_WRONG_FAMILY` for a model that is not a GAN.
///
/// # Safety
/// As for `edgegen_sample`; `drawn` null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn edgegen_sample_class(
    model: *const edgegen_model,
    seed: u64,
    class: i32,
    arena: *mut u8,
    arena_len: usize,
    image: *mut u8,
    image_len: usize,
    drawn: *mut i32,
) -> edgegen_status {
    guarded(|| {
        // SAFETY: the caller's contract.
        let (m, arena, out) = unsafe { (self::model(model)?, bytes_mut(arena, arena_len)?, bytes_mut(image, image_len)?) };
        let Loaded::One(file) = m else { return Err(EDGEGEN_ERR_WRONG_FAMILY) };
        if file.metadata().family != Family::GanGenerator {
            return Err(EDGEGEN_ERR_WRONG_FAMILY);
        }
        let g = Gan::new(*file, Kernels::Optimized).map_err(status)?;
        if out.len() != g.geometry().values() {
            return Err(EDGEGEN_ERR_LENGTH);
        }
        let class = match class {
            -1 => None,
            c if c >= 0 && (c as usize) < g.classes() => Some(c as usize),
            _ => return Err(EDGEGEN_ERR_PARAMETER),
        };
        let c = g.sample_class(arena, seed, class, out).map_err(status)?;
        if !drawn.is_null() {
            // SAFETY: the caller's contract (non-null: valid for one write).
            unsafe { drawn.write_unaligned(c as i32) };
        }
        Ok(())
    })
}

/// The classifier's most probable class for an image and its softmax probability (no
/// guard: see `edgegen_guard_classify` for an answer only on accepted frames). Runs in
/// `arena` (`edgegen_info.arena_size` bytes).
///
/// # Safety
/// As for `edgegen_log_prob`.
#[no_mangle]
pub unsafe extern "C" fn edgegen_classify(
    model: *const edgegen_model,
    arena: *mut u8,
    arena_len: usize,
    image: *const u8,
    image_len: usize,
    out: *mut edgegen_class,
) -> edgegen_status {
    guarded(|| {
        // SAFETY: the caller's contract.
        let (m, arena, image) = unsafe { (self::model(model)?, bytes_mut(arena, arena_len)?, bytes(image, image_len)?) };
        let c = Classifier::new(one(m)?, Kernels::Optimized).map_err(status)?;
        if image.len() != c.geometry().values() {
            return Err(EDGEGEN_ERR_LENGTH);
        }
        let a = c.classify(arena, image).map_err(status)?;
        // SAFETY: the caller's contract.
        unsafe { put(out, edgegen_class { class_index: a.class as u32, probability: a.probability }) }
    })
}

// ---------------------------------------------------------------------------------------
// The guard.

/// The engines a guard runs: the PixelCNN, its background model, the VAE.
fn guard_engines(
    pixelcnn: &Loaded,
    background: Option<&Loaded>,
    vae: Option<&Loaded>,
) -> Result<(PixelCnn<'static>, Option<PixelCnn<'static>>, Option<Vae<'static>>)> {
    let p = self::pixelcnn(pixelcnn)?;
    let b = background.map(self::pixelcnn).transpose()?;
    let v = vae.map(self::vae).transpose()?;
    Ok((p, b, v))
}

/// Arena bytes `edgegen_guard_open` needs for these models (`background` and `vae` may be
/// null; pass the ones the guard's score uses: the bundled evidence guard reads all three).
///
/// # Safety
/// Model pointers null or pointing to `edgegen_model`s; `size` null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn edgegen_guard_arena_size(
    pixelcnn: *const edgegen_model,
    background: *const edgegen_model,
    vae: *const edgegen_model,
    size: *mut usize,
) -> edgegen_status {
    guarded(|| {
        // SAFETY: the caller's contract.
        let (p, b, v) = unsafe { (model(pixelcnn)?, optional_model(background)?, optional_model(vae)?) };
        let (p, b, v) = guard_engines(p, b, v)?;
        let n = PixelCnnScorer::arena_len(&p, b.as_ref(), v.as_ref());
        // SAFETY: the caller's contract.
        unsafe { put(size, n) }
    })
}

/// Opens the guard calibrated into the PixelCNN's file (its score kind, constants and
/// threshold, written by `edgegen calibrate`), over the PixelCNN, its background model and
/// the VAE the structural and evidence scores read (`background`/`vae` null when the
/// score does not use them). The guard keeps `arena` (at least `edgegen_guard_arena_size`
/// bytes, any alignment) for itself until it is no longer used.
///
/// # Safety
/// Model pointers as for `edgegen_guard_arena_size` (the model bytes must outlive the
/// guard; the `edgegen_model` structs need not); `guard` valid for writes of an
/// `edgegen_guard`; `arena` valid for `arena_len` bytes and used by nothing else while the
/// guard is.
#[no_mangle]
pub unsafe extern "C" fn edgegen_guard_open(
    guard: *mut edgegen_guard,
    pixelcnn: *const edgegen_model,
    background: *const edgegen_model,
    vae: *const edgegen_model,
    arena: *mut u8,
    arena_len: usize,
) -> edgegen_status {
    guarded(|| {
        if guard.is_null() {
            return Err(EDGEGEN_ERR_NULL);
        }
        let slot = guard.cast::<Slot<GuardValue>>();
        // SAFETY: storage checked non-null, sized and aligned for a slot.
        unsafe { ptr::addr_of_mut!((*slot).tag).write(0) };
        // SAFETY: the caller's contract.
        let (p, b, v, arena) =
            unsafe { (model(pixelcnn)?, optional_model(background)?, optional_model(vae)?, bytes_mut(arena, arena_len)?) };
        let (p, b, v) = guard_engines(p, b, v)?;
        let guard_value = PixelCnnScorer::calibrated(p, b, v, arena).map_err(status)?;
        // SAFETY: as above.
        unsafe { slot.write(Slot { tag: GUARD_TAG, value: guard_value }) };
        Ok(())
    })
}

fn verdict_of(g: &GuardValue, v: edgegen_runtime::guard::Verdict) -> edgegen_verdict {
    edgegen_verdict {
        score: v.score,
        threshold: v.threshold,
        accept: u32::from(v.accept),
        bits_per_dim: g.scorer().last().map_or(f64::NAN, |s| s.bpd),
    }
}

/// Scores an image (`image_len` = the PixelCNN's `edgegen_info.image_size`) and decides:
/// accept when the score is at most the calibrated threshold.
///
/// # Safety
/// `guard` null or pointing to an `edgegen_guard`; `image` null or valid for `image_len`
/// bytes; `out` null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn edgegen_guard_check(
    guard: *mut edgegen_guard,
    image: *const u8,
    image_len: usize,
    out: *mut edgegen_verdict,
) -> edgegen_status {
    guarded(|| {
        // SAFETY: the caller's contract.
        let (g, image) = unsafe { (self::guard(guard)?, bytes(image, image_len)?) };
        if image.len() != g.scorer().geometry().values() {
            return Err(EDGEGEN_ERR_LENGTH);
        }
        let v = g.check(image).map_err(status)?;
        let r = verdict_of(g, v);
        // SAFETY: the caller's contract.
        unsafe { put(out, r) }
    })
}

/// The guard's verdict and the classifier's answer on one image, the classifier running
/// in the guard's arena after the verdict: `label` is the class when the guard accepts
/// and −1 when it rejects — a classifier must name a class for anything it is shown, the
/// guard says when that name means nothing.
///
/// # Safety
/// As for `edgegen_guard_check`; `classifier` null or pointing to an `edgegen_model`.
#[no_mangle]
pub unsafe extern "C" fn edgegen_guard_classify(
    guard: *mut edgegen_guard,
    classifier: *const edgegen_model,
    image: *const u8,
    image_len: usize,
    out: *mut edgegen_answer,
) -> edgegen_status {
    guarded(|| {
        // SAFETY: the caller's contract.
        let (g, c, image) = unsafe { (self::guard(guard)?, model(classifier)?, bytes(image, image_len)?) };
        let c = Classifier::new(one(c)?, Kernels::Optimized).map_err(status)?;
        if image.len() != g.scorer().geometry().values() {
            return Err(EDGEGEN_ERR_LENGTH);
        }
        let a = g.classify(&c, image).map_err(status)?;
        let r = edgegen_answer {
            verdict: verdict_of(g, a.verdict),
            class_index: a.class as u32,
            probability: a.probability,
            label: a.label().map_or(-1, |l| l as i32),
        };
        // SAFETY: the caller's contract.
        unsafe { put(out, r) }
    })
}

// ---------------------------------------------------------------------------------------
// Errors and version.

const STATUS: [(edgegen_status, &str, &str); 14] = [
    (EDGEGEN_OK, "EDGEGEN_OK\0", "success\0"),
    (EDGEGEN_ERR_NULL, "EDGEGEN_ERR_NULL\0", "a pointer argument that must not be null was null\0"),
    (
        EDGEGEN_ERR_HANDLE,
        "EDGEGEN_ERR_HANDLE\0",
        "the handle is not open: call edgegen_model_open / edgegen_guard_open first and check its status\0",
    ),
    (EDGEGEN_ERR_LENGTH, "EDGEGEN_ERR_LENGTH\0", "a buffer has the wrong length: an image must be exactly edgegen_info.image_size bytes\0"),
    (EDGEGEN_ERR_PARAMETER, "EDGEGEN_ERR_PARAMETER\0", "a parameter is out of range, or the models given do not belong together\0"),
    (EDGEGEN_ERR_TRUNCATED, "EDGEGEN_ERR_TRUNCATED\0", "the model bytes are shorter than the file's header says: pass the whole file\0"),
    (
        EDGEGEN_ERR_BAD_MAGIC,
        "EDGEGEN_ERR_BAD_MAGIC\0",
        "not an edgegen model file (no EGMF magic): pass a .egm written by edgegen compile\0",
    ),
    (
        EDGEGEN_ERR_VERSION,
        "EDGEGEN_ERR_VERSION\0",
        "a model file format version this library does not read: recompile the model or update the library\0",
    ),
    (EDGEGEN_ERR_CHECKSUM, "EDGEGEN_ERR_CHECKSUM\0", "the model file's checksum does not match: the bytes are corrupt\0"),
    (EDGEGEN_ERR_MALFORMED, "EDGEGEN_ERR_MALFORMED\0", "the model file is structurally invalid (edgegen inspect names the part)\0"),
    (
        EDGEGEN_ERR_ARENA_TOO_SMALL,
        "EDGEGEN_ERR_ARENA_TOO_SMALL\0",
        "the arena is too small: see edgegen_info and edgegen_guard_arena_size\0",
    ),
    (EDGEGEN_ERR_WRONG_FAMILY, "EDGEGEN_ERR_WRONG_FAMILY\0", "the model is of another family than this call runs\0"),
    (
        EDGEGEN_ERR_NO_GUARD,
        "EDGEGEN_ERR_NO_GUARD\0",
        "no calibrated guard in the PixelCNN file, or its score needs the background model or the VAE that was not given\0",
    ),
    (EDGEGEN_ERR_INTERNAL, "EDGEGEN_ERR_INTERNAL\0", "a bug in edgegen (a caught panic): please report it\0"),
];

fn status_entry(s: edgegen_status) -> Option<&'static (edgegen_status, &'static str, &'static str)> {
    STATUS.iter().find(|e| e.0 == s)
}

/// The name of a status code (`"EDGEGEN_ERR_ARENA_TOO_SMALL"`), or `"EDGEGEN_UNKNOWN"`: a
/// static NUL-terminated string, never null.
#[no_mangle]
pub extern "C" fn edgegen_status_name(status: edgegen_status) -> *const c_char {
    status_entry(status).map_or("EDGEGEN_UNKNOWN\0", |e| e.1).as_ptr().cast()
}

/// A sentence saying what a status code means and what to do: a static NUL-terminated
/// string, never null.
#[no_mangle]
pub extern "C" fn edgegen_status_message(status: edgegen_status) -> *const c_char {
    status_entry(status).map_or("not an edgegen status code\0", |e| e.2).as_ptr().cast()
}

/// The library's version, `"MAJOR.MINOR.PATCH"`: a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn edgegen_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// On a bare-metal target a panic (a bug: every input is checked) executes a permanently
/// undefined instruction: the firmware's HardFault handler sees it, instead of unwinding
/// into C.
#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        #[cfg(target_arch = "arm")]
        // SAFETY: `udf` only raises the undefined-instruction fault.
        unsafe {
            core::arch::asm!("udf #0")
        };
    }
}
