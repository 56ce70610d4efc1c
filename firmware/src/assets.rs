//! What the firmware embeds: the compiled models and the sensor frames, straight from
//! `models/` (the same files the host tests read).

use edgegen_runtime::image::Geometry;

/// Embeds a file in the `.models` section, which each board's memory map places in its
/// flash (after the code on the mps2-an386; in the QSPI flash on the mps3-an547, whose
/// 512 KiB ITCM holds the code).
macro_rules! embed {
    ($path:expr) => {{
        #[link_section = ".models"]
        static BYTES: [u8; include_bytes!($path).len()] = *include_bytes!($path);
        &BYTES
    }};
}

#[cfg(not(feature = "slide"))]
mod use_case {
    /// The use case's name (logged at boot).
    pub const NAME: &str = "fashion";
    /// PixelCNN (guard and pixel-by-pixel generation).
    pub static PIXELCNN: &[u8] = embed!("../../models/pixelcnn-fmnist/model.egm");
    /// The background PixelCNN (trained on perturbed images) of the guard's likelihood ratio.
    pub static PIXELCNN_BG: &[u8] = embed!("../../models/pixelcnn-fmnist-bg/model.egm");
    /// VAE encoder and decoder.
    pub static VAE: Option<(&[u8], &[u8])> =
        Some((embed!("../../models/vae-fmnist/encoder.egm"), embed!("../../models/vae-fmnist/decoder.egm")));
    /// GAN generator.
    #[cfg(all(feature = "generate", not(feature = "cgan")))]
    pub static GAN_GENERATOR: Option<&[u8]> = Some(embed!("../../models/gan-fmnist/generator.egm"));
    /// The class-conditional GAN's generator in its place (feature `cgan`): each class on
    /// request.
    #[cfg(feature = "cgan")]
    pub static GAN_GENERATOR: Option<&[u8]> = Some(embed!("../../models/cgan-fmnist/generator.egm"));
    /// No generator in a guard-only image.
    #[cfg(not(feature = "generate"))]
    pub static GAN_GENERATOR: Option<&[u8]> = None;
    /// The classifier that labels the frames the guard accepts.
    pub static CLASSIFIER: Option<&[u8]> = Some(embed!("../../models/classifier-fmnist/classifier.egm"));
    /// The VAE's class priors p(z|y), p(y) (`edgegen eval bayes --out models/bayes`): the VAE
    /// as a class-conditional generative model and, by Bayes' rule, a classifier.
    #[cfg(feature = "bayes")]
    pub static CLASS_PRIORS: Option<&[u8]> = Some(embed!("../../models/bayes/class-priors.bin"));
    /// No Bayes classifier without the `bayes` feature.
    #[cfg(not(feature = "bayes"))]
    pub static CLASS_PRIORS: Option<&[u8]> = None;
    /// The normalizing flow (feature `flow`): its flow file (coupling networks and constants).
    #[cfg(feature = "flow")]
    pub static FLOW: Option<&[u8]> = Some(embed!("../../models/flow-fmnist/flow.egf"));
    /// No flow without the `flow` feature.
    #[cfg(not(feature = "flow"))]
    pub static FLOW: Option<&[u8]> = None;
    /// Whether the PixelCNN also generates (row-band sampling: 784 values here).
    pub const PIXELCNN_SAMPLES: bool = cfg!(feature = "generate");
    /// Whether the VAE also generates and bounds every frame's likelihood (else it only
    /// gives the guard its posterior and reconstruction).
    pub const VAE_SCORES: bool = cfg!(feature = "generate");
    /// Bytes of all embedded models.
    pub const MODELS_BYTES: usize = include_bytes!("../../models/pixelcnn-fmnist/model.egm").len()
        + include_bytes!("../../models/pixelcnn-fmnist-bg/model.egm").len()
        + include_bytes!("../../models/vae-fmnist/encoder.egm").len()
        + include_bytes!("../../models/vae-fmnist/decoder.egm").len()
        + include_bytes!("../../models/classifier-fmnist/classifier.egm").len()
        + if cfg!(feature = "cgan") {
            include_bytes!("../../models/cgan-fmnist/generator.egm").len()
        } else if cfg!(feature = "generate") {
            include_bytes!("../../models/gan-fmnist/generator.egm").len()
        } else {
            0
        }
        + if cfg!(feature = "flow") { include_bytes!("../../models/flow-fmnist/flow.egf").len() } else { 0 };
    /// Golden vectors of every embedded model: the first set of each file the trainer
    /// wrote, its outputs reduced to their CRC-32 (golden version 2; `build.rs` cuts them),
    /// checked on the device bit for bit.
    pub static GOLDEN: &[(&str, &[u8])] = &[
        ("pixelcnn", embed!(concat!(env!("OUT_DIR"), "/golden-pixelcnn.bin"))),
        ("pixelcnn-bg", embed!(concat!(env!("OUT_DIR"), "/golden-pixelcnn-bg.bin"))),
        ("vae-encoder", embed!(concat!(env!("OUT_DIR"), "/golden-vae-encoder.bin"))),
        ("vae-decoder", embed!(concat!(env!("OUT_DIR"), "/golden-vae-decoder.bin"))),
        #[cfg(feature = "generate")]
        ("gan-generator", embed!(concat!(env!("OUT_DIR"), "/golden-gan-generator.bin"))),
        ("classifier", embed!(concat!(env!("OUT_DIR"), "/golden-classifier.bin"))),
    ];
    /// The scored frame sets: name and IDX file.
    pub static FRAME_FILES: &[(&str, &[u8])] = &[
        ("fashion", embed!("../../models/frames/fashion-mnist-test.idx")),
        ("mnist", embed!("../../models/frames/mnist-digits.idx")),
        ("faults", embed!("../../models/frames/sensor-faults.idx")),
    ];
}

#[cfg(feature = "slide")]
mod use_case {
    /// The use case's name (logged at boot).
    pub const NAME: &str = "slide";
    /// The slide PixelCNN (32×32 RGB tiles): the guard's likelihood.
    pub static PIXELCNN: &[u8] = embed!("../../models/pixelcnn-ihc/model.egm");
    /// The slide background PixelCNN of the guard's likelihood ratio.
    pub static PIXELCNN_BG: &[u8] = embed!("../../models/pixelcnn-ihc-bg/model.egm");
    /// The slide VAE: its encoder's posterior is the structural guard's latent evidence.
    pub static VAE: Option<(&[u8], &[u8])> = Some((embed!("../../models/vae-ihc/encoder.egm"), embed!("../../models/vae-ihc/decoder.egm")));
    /// The slide GAN's generator.
    #[cfg(feature = "generate")]
    pub static GAN_GENERATOR: Option<&[u8]> = Some(embed!("../../models/gan-ihc/generator.egm"));
    /// No generator in a guard-only image.
    #[cfg(not(feature = "generate"))]
    pub static GAN_GENERATOR: Option<&[u8]> = None;
    /// No classifier for the slide tiles (they have no classes).
    pub static CLASSIFIER: Option<&[u8]> = None;
    /// No class priors for the slide tiles.
    pub static CLASS_PRIORS: Option<&[u8]> = None;
    /// No flow for the slide tiles.
    pub static FLOW: Option<&[u8]> = None;
    /// The PixelCNN only guards here: drawing a 3,072-value tile value by value would take
    /// minutes of QEMU per sample (the host draws them: `edgegen sample`).
    pub const PIXELCNN_SAMPLES: bool = false;
    /// The VAE only feeds the guard here (its bound would take four decoder passes a tile).
    pub const VAE_SCORES: bool = false;
    /// Bytes of all embedded models.
    pub const MODELS_BYTES: usize = include_bytes!("../../models/pixelcnn-ihc/model.egm").len()
        + include_bytes!("../../models/pixelcnn-ihc-bg/model.egm").len()
        + include_bytes!("../../models/vae-ihc/encoder.egm").len()
        + include_bytes!("../../models/vae-ihc/decoder.egm").len()
        + if cfg!(feature = "generate") { include_bytes!("../../models/gan-ihc/generator.egm").len() } else { 0 };
    /// Golden vectors of every embedded model (see the Fashion-MNIST use case).
    pub static GOLDEN: &[(&str, &[u8])] = &[
        ("pixelcnn", embed!(concat!(env!("OUT_DIR"), "/golden-pixelcnn.bin"))),
        ("pixelcnn-bg", embed!(concat!(env!("OUT_DIR"), "/golden-pixelcnn-bg.bin"))),
        ("vae-encoder", embed!(concat!(env!("OUT_DIR"), "/golden-vae-encoder.bin"))),
        ("vae-decoder", embed!(concat!(env!("OUT_DIR"), "/golden-vae-decoder.bin"))),
        #[cfg(feature = "generate")]
        ("gan-generator", embed!(concat!(env!("OUT_DIR"), "/golden-gan-generator.bin"))),
    ];
    /// The scored frame sets: held-out test tiles and test tiles with drawn defects.
    pub static FRAME_FILES: &[(&str, &[u8])] =
        &[("slide", embed!("../../models/frames/slide-test.idx")), ("defects", embed!("../../models/frames/slide-defects.idx"))];
}

pub use use_case::*;

include!(concat!(env!("OUT_DIR"), "/geometry.rs"));
include!(concat!(env!("OUT_DIR"), "/arenas.rs"));
include!(concat!(env!("OUT_DIR"), "/classes.rs"));

/// The images of an IDX image file (`n × H × W` gray, or `n × C × H × W` planar colour,
/// validated by the host when it wrote them) when they have geometry `g`; a file of another
/// geometry, or an inconsistent one, yields no images rather than a panic.
fn frames(idx: &'static [u8], g: Geometry) -> impl Iterator<Item = &'static [u8]> {
    let be = |at: usize| u32::from_be_bytes([idx[at], idx[at + 1], idx[at + 2], idx[at + 3]]);
    let dims = (g.channels as u32, g.height as u32, g.width as u32);
    let header = match idx.get(..4) {
        Some([0, 0, 8, 3]) if idx.len() >= 16 && (1, be(8), be(12)) == dims => 16,
        Some([0, 0, 8, 4]) if idx.len() >= 20 && (be(8), be(12), be(16)) == dims => 20,
        _ => idx.len(),
    };
    let body = &idx[header..];
    body.chunks_exact(g.values())
}

/// The frame sets for models of geometry `g`: name and images.
pub fn frame_sets(g: Geometry) -> impl Iterator<Item = (&'static str, impl Iterator<Item = &'static [u8]>)> {
    FRAME_FILES.iter().map(move |&(name, idx)| (name, frames(idx, g)))
}
