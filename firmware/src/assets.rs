//! What the firmware embeds: the compiled models and the sensor frames, straight from
//! `models/` (the same files the host tests read).

/// PixelCNN (guard and pixel-by-pixel generation).
pub static PIXELCNN: &[u8] = include_bytes!("../../models/pixelcnn-fmnist/model.egm");
/// VAE encoder.
pub static VAE_ENCODER: &[u8] = include_bytes!("../../models/vae-fmnist/encoder.egm");
/// VAE decoder.
pub static VAE_DECODER: &[u8] = include_bytes!("../../models/vae-fmnist/decoder.egm");
/// GAN generator.
pub static GAN_GENERATOR: &[u8] = include_bytes!("../../models/gan-fmnist/generator.egm");
/// Bytes of all embedded models.
pub const MODELS_BYTES: usize = include_bytes!("../../models/pixelcnn-fmnist/model.egm").len()
    + include_bytes!("../../models/vae-fmnist/encoder.egm").len()
    + include_bytes!("../../models/vae-fmnist/decoder.egm").len()
    + include_bytes!("../../models/gan-fmnist/generator.egm").len();

/// Golden vectors of every embedded model (written by the trainer, checked on the device).
pub static GOLDEN: [(&str, &[u8]); 4] = [
    ("pixelcnn", include_bytes!("../../models/pixelcnn-fmnist/golden/int8/model.bin")),
    ("vae-encoder", include_bytes!("../../models/vae-fmnist/golden/int8/encoder.bin")),
    ("vae-decoder", include_bytes!("../../models/vae-fmnist/golden/int8/decoder.bin")),
    ("gan-generator", include_bytes!("../../models/gan-fmnist/golden/int8/generator.bin")),
];

static FASHION: &[u8] = include_bytes!("../../models/frames/fashion-mnist-test.idx");
static MNIST: &[u8] = include_bytes!("../../models/frames/mnist-digits.idx");

/// The 28×28 images of an IDX image file (validated by the host when it wrote them; an
/// inconsistent file yields no images rather than a panic).
fn frames(idx: &'static [u8]) -> impl Iterator<Item = &'static [u8]> {
    let ok = idx.len() >= 16 && idx[..4] == [0, 0, 8, 3] && idx[8..16] == [0, 0, 0, 28, 0, 0, 0, 28];
    let body = if ok { &idx[16..] } else { &idx[..0] };
    body.chunks_exact(784)
}

/// The frame sets: name and images.
pub fn frame_sets() -> [(&'static str, impl Iterator<Item = &'static [u8]>); 2] {
    [("fashion", frames(FASHION)), ("mnist", frames(MNIST))]
}
