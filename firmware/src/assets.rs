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

/// PixelCNN (guard and pixel-by-pixel generation).
pub static PIXELCNN: &[u8] = embed!("../../models/pixelcnn-fmnist/model.egm");
/// The background PixelCNN (trained on perturbed images) of the guard's likelihood ratio.
pub static PIXELCNN_BG: &[u8] = embed!("../../models/pixelcnn-fmnist-bg/model.egm");
/// VAE encoder.
pub static VAE_ENCODER: &[u8] = embed!("../../models/vae-fmnist/encoder.egm");
/// VAE decoder.
pub static VAE_DECODER: &[u8] = embed!("../../models/vae-fmnist/decoder.egm");
/// GAN generator.
pub static GAN_GENERATOR: &[u8] = embed!("../../models/gan-fmnist/generator.egm");
/// Bytes of all embedded models.
pub const MODELS_BYTES: usize = include_bytes!("../../models/pixelcnn-fmnist/model.egm").len()
    + include_bytes!("../../models/pixelcnn-fmnist-bg/model.egm").len()
    + include_bytes!("../../models/vae-fmnist/encoder.egm").len()
    + include_bytes!("../../models/vae-fmnist/decoder.egm").len()
    + include_bytes!("../../models/gan-fmnist/generator.egm").len();

/// Golden vectors of every embedded model: the first set of each file the trainer wrote,
/// its outputs reduced to their CRC-32 (golden version 2; `build.rs` cuts them), checked on
/// the device bit for bit.
pub static GOLDEN: [(&str, &[u8]); 5] = [
    ("pixelcnn", embed!(concat!(env!("OUT_DIR"), "/golden-pixelcnn.bin"))),
    ("pixelcnn-bg", embed!(concat!(env!("OUT_DIR"), "/golden-pixelcnn-bg.bin"))),
    ("vae-encoder", embed!(concat!(env!("OUT_DIR"), "/golden-vae-encoder.bin"))),
    ("vae-decoder", embed!(concat!(env!("OUT_DIR"), "/golden-vae-decoder.bin"))),
    ("gan-generator", embed!(concat!(env!("OUT_DIR"), "/golden-gan-generator.bin"))),
];

static FASHION: &[u8] = embed!("../../models/frames/fashion-mnist-test.idx");
static MNIST: &[u8] = embed!("../../models/frames/mnist-digits.idx");
static FAULTS: &[u8] = embed!("../../models/frames/sensor-faults.idx");

include!(concat!(env!("OUT_DIR"), "/geometry.rs"));

/// The images of an IDX image file (`n × H × W`, validated by the host when it wrote them)
/// when they have geometry `g` (one channel); a file of another geometry, or an inconsistent
/// one, yields no images rather than a panic.
fn frames(idx: &'static [u8], g: Geometry) -> impl Iterator<Item = &'static [u8]> {
    let be = |at: usize| u32::from_be_bytes([idx[at], idx[at + 1], idx[at + 2], idx[at + 3]]);
    let ok = idx.len() >= 16 && idx[..4] == [0, 0, 8, 3] && g.channels == 1 && be(8) == g.height as u32 && be(12) == g.width as u32;
    let body = if ok { &idx[16..] } else { &idx[..0] };
    body.chunks_exact(g.values())
}

/// The frame sets for models of geometry `g`: name and images.
pub fn frame_sets(g: Geometry) -> [(&'static str, impl Iterator<Item = &'static [u8]>); 3] {
    [("fashion", frames(FASHION, g)), ("mnist", frames(MNIST, g)), ("faults", frames(FAULTS, g))]
}
