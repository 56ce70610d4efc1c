//! The int8 engines: one per model family, over compiled model files and a caller-owned
//! arena. no_std, no allocation. The same calls as the tract engines in [`crate::onnx`]:
//! `sample(seed)`, `log_prob(image)`, VAE `bounds(image, k)`.

use crate::image::Geometry;
use crate::interpreter::{Interpreter, PrivateLayout};
use crate::kernels::Kernels;
use crate::likelihood::{self, LeF32, MAX_COMPONENTS};
use crate::model::{DType, Family, Model};
use crate::rng::Rng;
use crate::Error;

/// Largest latent a VAE or GAN engine accepts (stack buffers are sized by it).
pub const MAX_LATENT: usize = 64;

/// Likelihood bounds of one image under a VAE, in nats.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct VaeBounds {
    /// ELBO (mean of the k log importance weights), nats.
    pub elbo: f64,
    /// k-sample importance-weighted bound, nats.
    pub iwae: f64,
    /// Values (sub-pixels) of the image: the "dimensions" of bits/dim.
    pub values: usize,
}

impl VaeBounds {
    /// ELBO in bits/dim.
    pub fn elbo_bpd(&self) -> f64 {
        likelihood::bits_per_dim(self.elbo, self.values)
    }
    /// Importance-weighted bound in bits/dim (the tighter estimate).
    pub fn iwae_bpd(&self) -> f64 {
        likelihood::bits_per_dim(self.iwae, self.values)
    }
}

/// The answer of a class-conditional generative model used as a classifier ([`Vae::bayes`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BayesAnswer {
    /// argmax_y p(x|y) p(y).
    pub class: usize,
    /// Its posterior p(y|x) = p(x, y) / p(x).
    pub probability: f64,
    /// log p(x) = ln Σ_y p(x|y) p(y), nats (an importance-sampled estimate; its expectation
    /// is a lower bound): the outlier score's evidence.
    pub log_px: f64,
    /// Values (sub-pixels) of the image: the "dimensions" of bits/dim.
    pub values: usize,
}

impl BayesAnswer {
    /// −log₂ p(x) per value.
    pub fn bpd(&self) -> f64 {
        likelihood::bits_per_dim(self.log_px, self.values)
    }
}

fn check_family(model: &Model, family: Family) -> Result<(), Error> {
    if model.metadata().family != family {
        return Err(Error::WrongFamily);
    }
    Ok(())
}

/// The model's geometry, after checking its input is the int8 `[C, H, W]` image.
fn check_image_input(model: &Model) -> Result<Geometry, Error> {
    let t = model.input();
    let g = model.geometry();
    if t.dtype != DType::I8 || t.dims != g.dims() {
        return Err(Error::InvalidParameter("image models take an int8 [C, H, W] input of the model's geometry"));
    }
    Ok(g)
}

fn check_vector_input(model: &Model) -> Result<usize, Error> {
    let t = model.input();
    if t.dtype != DType::F32 || t.len() > MAX_LATENT {
        return Err(Error::InvalidParameter("latent models take an f32 vector input of at most 64 values"));
    }
    Ok(t.len())
}

/// The mixture head output of a model: its components, after checking it is f32
/// `[3K·C, H, W]` for the model's geometry.
fn mixture_output(model: &Model, which: usize) -> Result<usize, Error> {
    let t = model.tensor(model.outputs()[which] as usize);
    let k = model.metadata().components as usize;
    let g = model.geometry();
    if t.dtype != DType::F32 || k == 0 || k > MAX_COMPONENTS || t.dims != [(3 * k) as u16 * g.channels, g.height, g.width] {
        return Err(Error::InvalidParameter("expected an f32 [3K*C, H, W] mixture head output for the model's geometry"));
    }
    Ok(k)
}

/// PixelCNN on the int8 path: exact log p(x) and pixel-by-pixel sampling.
#[derive(Debug, Clone)]
pub struct PixelCnn<'m> {
    interp: Interpreter<'m>,
    components: usize,
    geometry: Geometry,
}

impl<'m> PixelCnn<'m> {
    /// An engine for a compiled PixelCNN.
    pub fn new(model: Model<'m>, kernels: Kernels) -> Result<Self, Error> {
        check_family(&model, Family::PixelCnn)?;
        let geometry = check_image_input(&model)?;
        let components = mixture_output(&model, 0)?;
        Ok(PixelCnn { interp: Interpreter::new(model, kernels), components, geometry })
    }

    /// The image geometry (from the model file).
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Arena bytes needed.
    pub fn arena_len(&self) -> usize {
        self.interp.arena_len()
    }

    /// The interpreter (for callers that run ops themselves).
    pub fn interpreter(&self) -> &Interpreter<'m> {
        &self.interp
    }

    fn head<'a>(&self, arena: &'a [u8]) -> LeF32<'a> {
        let m = self.interp.model();
        LeF32(&arena[m.tensor(m.outputs()[0] as usize).range()])
    }

    /// Exact log p(image) in nats.
    pub fn log_prob(&self, arena: &mut [u8], image: &[u8]) -> Result<f64, Error> {
        self.interp.set_input_image(arena, image)?;
        self.interp.invoke(arena)?;
        likelihood::mixture_image_log_prob(image, &self.head(arena), self.components, self.geometry.plane())
    }

    /// Exact log p(image) in nats, also writing each pixel's log p(x_i | x_<i) (nats, raster
    /// order, channel by channel) into `pixels` (one per value of the image). The total equals
    /// [`PixelCnn::log_prob`] bit for bit.
    pub fn log_prob_pixels(&self, arena: &mut [u8], image: &[u8], pixels: &mut [f32]) -> Result<f64, Error> {
        if pixels.len() != image.len() {
            return Err(Error::LengthMismatch { expected: image.len(), got: pixels.len() });
        }
        self.interp.set_input_image(arena, image)?;
        self.interp.invoke(arena)?;
        likelihood::mixture_image_log_prob_pixels(image, &self.head(arena), self.components, self.geometry.plane(), pixels)
    }

    /// The row window [`PixelCnn::sample`] evaluates in (see [`PrivateLayout::window`]), for
    /// a row-causal model.
    fn sample_layout(&self) -> Option<PrivateLayout> {
        let m = self.interp.model();
        if !self.interp.is_row_causal() {
            return None;
        }
        PrivateLayout::window(m, PrivateLayout::rows_needed(m)).ok()
    }

    /// Arena bytes [`PixelCnn::sample`] needs: a window of the last rows of every activation
    /// (as many as the tallest kernel reads, see [`PrivateLayout::window`]), or the planned
    /// arena when the model is not row-causal.
    pub fn sample_arena_len(&self) -> usize {
        self.sample_layout().map_or_else(|| self.arena_len(), |l| l.arena_len())
    }

    /// Draws an image pixel by pixel in raster order, and within a pixel channel by channel,
    /// from `Rng::new(seed)`.
    ///
    /// Without redundant work: when row y is being drawn, every row above is final, and each
    /// layer's row y depends only on input rows ≤ y (checked on the weights by
    /// [`Interpreter::is_row_causal`]), so each new value recomputes row y of every layer:
    /// `H·C` full passes' worth of MACs per image instead of `H·W·C`. And in little RAM: a
    /// layer's row y reads only the few rows above it (half its kernel's height), so each
    /// activation keeps a window of that many rows, moved down the image row by row — for
    /// the bundled 28×28 PixelCNN 4 of 28 rows. Needs [`PixelCnn::sample_arena_len`] bytes;
    /// the result is identical to [`PixelCnn::sample_full`].
    pub fn sample(&self, arena: &mut [u8], seed: u64, out: &mut [u8]) -> Result<(), Error> {
        let Some(layout) = self.sample_layout() else { return self.sample_full(arena, seed, out) };
        let g = self.geometry;
        g.check(out)?;
        let m = self.interp.model();
        let (input, head) = (m.input_index(), m.outputs()[0] as usize);
        let (plane, width, k) = (g.plane(), g.width as usize, self.components);
        let rows = layout.window_rows().unwrap_or(g.height as usize);
        // The current row's place in each window, and a window's plane.
        let (last, window) = ((rows - 1) * width, rows * width);
        let mut rng = Rng::new(seed);
        out.fill(0);
        layout.clear(m, arena)?;
        for y in 0..g.height as usize {
            if y > 0 {
                layout.advance(m, arena)?;
            }
            for x in 0..width {
                for c in 0..g.channels as usize {
                    self.interp.invoke_rows(arena, &layout, rows - 1..rows)?;
                    let at = c * window + last + x;
                    let params = LeF32(self.interp.tensor_bytes(arena, &layout, head));
                    let v = likelihood::mixture_sample_at(&params, likelihood::head_index(at, k, window), k, window, &mut rng);
                    out[c * plane + y * width + x] = v;
                    self.interp.tensor_bytes_mut(arena, &layout, input)[at] = v ^ 0x80;
                }
            }
        }
        Ok(())
    }

    /// [`PixelCnn::sample`] with a full forward pass per value (`C·H·W` passes, planned
    /// arena): the baseline, and the way to sample in [`PixelCnn::arena_len`] bytes.
    pub fn sample_full(&self, arena: &mut [u8], seed: u64, out: &mut [u8]) -> Result<(), Error> {
        let g = self.geometry;
        g.check(out)?;
        let (plane, k) = (g.plane(), self.components);
        let mut rng = Rng::new(seed);
        out.fill(0);
        for p in 0..plane {
            for c in 0..g.channels as usize {
                let i = c * plane + p;
                self.interp.set_input_image(arena, out)?;
                self.interp.invoke(arena)?;
                out[i] = likelihood::mixture_sample_at(&self.head(arena), likelihood::head_index(i, k, plane), k, plane, &mut rng);
            }
        }
        Ok(())
    }
}

/// Most classes a classifier engine takes (stack buffers are sized by it).
pub const MAX_CLASSES: usize = 64;

/// One answer of a classifier: the most probable class and its probability.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Classification {
    /// The class with the largest logit (the lowest index on ties).
    pub class: usize,
    /// Its softmax probability, computed in f64 through `libm` (host and device agree).
    pub probability: f64,
}

/// A classifier on the int8 path: image → class logits (f32, dequantized from the last
/// dense layer's accumulators).
#[derive(Debug, Clone)]
pub struct Classifier<'m> {
    interp: Interpreter<'m>,
    classes: usize,
    geometry: Geometry,
}

impl<'m> Classifier<'m> {
    /// An engine for a compiled classifier.
    pub fn new(model: Model<'m>, kernels: Kernels) -> Result<Self, Error> {
        check_family(&model, Family::Classifier)?;
        let geometry = check_image_input(&model)?;
        let out = model.outputs();
        let t = model.tensor(out[0] as usize);
        if out.len() != 1 || t.dtype != DType::F32 || !(2..=MAX_CLASSES).contains(&t.len()) {
            return Err(Error::InvalidParameter("a classifier outputs one f32 vector of 2 to 64 class logits"));
        }
        Ok(Classifier { classes: t.len(), interp: Interpreter::new(model, kernels), geometry })
    }

    /// The image geometry (from the model file).
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Arena bytes needed.
    pub fn arena_len(&self) -> usize {
        self.interp.arena_len()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The model file.
    pub fn model(&self) -> &Model<'m> {
        self.interp.model()
    }

    /// The class logits of `image`, written into the first [`Classifier::classes`] entries
    /// of `logits`.
    pub fn logits(&self, arena: &mut [u8], image: &[u8], logits: &mut [f32]) -> Result<(), Error> {
        if logits.len() < self.classes {
            return Err(Error::LengthMismatch { expected: self.classes, got: logits.len() });
        }
        self.interp.set_input_image(arena, image)?;
        self.interp.invoke(arena)?;
        self.interp.output_f32(arena, 0, &mut logits[..self.classes])
    }

    /// The most probable class of `image` and its probability.
    pub fn classify(&self, arena: &mut [u8], image: &[u8]) -> Result<Classification, Error> {
        let mut logits = [0f32; MAX_CLASSES];
        self.logits(arena, image, &mut logits)?;
        Ok(classification(&logits[..self.classes]))
    }
}

/// The argmax of `logits` (lowest index on ties) and its softmax probability.
pub fn classification(logits: &[f32]) -> Classification {
    let class = (0..logits.len()).fold(0, |best, c| if logits[c] > logits[best] { c } else { best });
    let max = logits[class] as f64;
    let total: f64 = logits.iter().map(|&l| libm::exp(l as f64 - max)).sum();
    Classification { class, probability: 1.0 / total }
}

/// A VAE on the int8 path: encoder and decoder models sharing one arena.
#[derive(Debug, Clone)]
pub struct Vae<'m> {
    encoder: Interpreter<'m>,
    decoder: Interpreter<'m>,
    latent: usize,
    components: usize,
    geometry: Geometry,
}

impl<'m> Vae<'m> {
    /// An engine for a compiled encoder and decoder.
    pub fn new(encoder: Model<'m>, decoder: Model<'m>, kernels: Kernels) -> Result<Self, Error> {
        check_family(&encoder, Family::VaeEncoder)?;
        check_family(&decoder, Family::VaeDecoder)?;
        let geometry = check_image_input(&encoder)?;
        if decoder.geometry() != geometry {
            return Err(Error::InvalidParameter("the encoder and the decoder have different image geometries"));
        }
        let latent = check_vector_input(&decoder)?;
        let components = mixture_output(&decoder, 0)?;
        if encoder.outputs().len() != 2
            || encoder
                .outputs()
                .iter()
                .any(|&o| encoder.tensor(o as usize).len() != latent || encoder.tensor(o as usize).dtype != DType::F32)
        {
            return Err(Error::InvalidParameter("the encoder must output f32 mu and logvar of the decoder's latent size"));
        }
        Ok(Vae { encoder: Interpreter::new(encoder, kernels), decoder: Interpreter::new(decoder, kernels), latent, components, geometry })
    }

    /// The image geometry (from the model files).
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Arena bytes needed (the two models run one after the other in the same arena).
    pub fn arena_len(&self) -> usize {
        self.encoder.arena_len().max(self.decoder.arena_len())
    }

    /// Latent dimensions.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Arena bytes the encoder alone needs ([`Vae::encode`]).
    pub fn encoder_arena_len(&self) -> usize {
        self.encoder.arena_len()
    }

    /// The encoder's model file.
    pub fn encoder_model(&self) -> &Model<'m> {
        self.encoder.model()
    }

    /// The decoder's model file.
    pub fn decoder_model(&self) -> &Model<'m> {
        self.decoder.model()
    }

    /// `(mu, logvar)` of q(z|x), written into the first `latent` entries of each buffer.
    pub fn encode(&self, arena: &mut [u8], image: &[u8], mu: &mut [f32], logvar: &mut [f32]) -> Result<(), Error> {
        self.encoder.set_input_image(arena, image)?;
        self.encoder.invoke(arena)?;
        self.encoder.output_f32(arena, 0, &mut mu[..self.latent])?;
        self.encoder.output_f32(arena, 1, &mut logvar[..self.latent])
    }

    /// Runs the decoder on `z`; returns its mixture head, in the arena.
    fn decode<'a>(&self, arena: &'a mut [u8], z: &[f32]) -> Result<LeF32<'a>, Error> {
        self.decoder.set_input_f32(arena, z)?;
        self.decoder.invoke(arena)?;
        let m = self.decoder.model();
        Ok(LeF32(&arena[m.tensor(m.outputs()[0] as usize).range()]))
    }

    /// log p(image | z) in nats, each value's log probability written into `pixels`
    /// (planar, same length as `image`): the decoder's reconstruction evidence at one latent.
    pub fn decode_log_prob_pixels(&self, arena: &mut [u8], z: &[f32], image: &[u8], pixels: &mut [f32]) -> Result<f64, Error> {
        likelihood::mixture_image_log_prob_pixels(image, &self.decode(arena, z)?, self.components, self.geometry.plane(), pixels)
    }

    fn decode_log_prob(&self, arena: &mut [u8], z: &[f32], image: &[u8]) -> Result<f64, Error> {
        likelihood::mixture_image_log_prob(image, &self.decode(arena, z)?, self.components, self.geometry.plane())
    }

    /// ELBO and `k`-sample importance-weighted bound of `image` (latents from `rng`).
    pub fn bounds(&self, arena: &mut [u8], image: &[u8], k: usize, rng: &mut Rng) -> Result<VaeBounds, Error> {
        if k == 0 {
            return Err(Error::InvalidParameter("k must be at least 1"));
        }
        let (mut mu, mut lv, mut z) = ([0f32; MAX_LATENT], [0f32; MAX_LATENT], [0f32; MAX_LATENT]);
        let l = self.latent;
        self.encode(arena, image, &mut mu, &mut lv)?;
        let (mut sum, mut max) = (0f64, f64::NEG_INFINITY);
        // Streaming log-sum-exp over the k weights: no buffer of k values needed.
        let mut acc = 0f64;
        for _ in 0..k {
            likelihood::reparameterize(&mu[..l], &lv[..l], rng, &mut z[..l])?;
            let lp = self.decode_log_prob(arena, &z[..l], image)?;
            let w = likelihood::importance_log_weight(lp, &z[..l], &mu[..l], &lv[..l])?;
            sum += w;
            if w > max {
                acc = acc * libm::exp(max - w) + 1.0;
                max = w;
            } else {
                acc += libm::exp(w - max);
            }
        }
        Ok(VaeBounds { elbo: sum / k as f64, iwae: max + libm::log(acc) - libm::log(k as f64), values: self.geometry.values() })
    }

    /// The VAE as a class-conditional generative model and, by Bayes' rule, a classifier:
    /// p(x|y) = ∫ p(x|z) p(z|y) dz with the class priors p(z|y) and p(y) of `classes` (one
    /// Gaussian component per class, weight p(y), over the raw latent), each log p(x, y)
    /// estimated by the same `k` importance samples from q(z|x) (`rng`):
    /// `ln 1/k Σ_i p(x|z_i) p(z_i|y) p(y) / q(z_i|x)`. Returns the most probable class, its
    /// posterior p(y|x) and log p(x) = ln Σ_y p(x, y) (nats): one encoder pass and `k`
    /// decoder passes, whatever the number of classes.
    pub fn bayes(
        &self,
        arena: &mut [u8],
        image: &[u8],
        k: usize,
        classes: &crate::guard::GuardBlock<'_>,
        rng: &mut Rng,
    ) -> Result<BayesAnswer, Error> {
        let c = classes.components();
        if k == 0 || classes.latent() != self.latent {
            return Err(Error::InvalidParameter("k must be at least 1 and the class priors must be over this VAE's latent"));
        }
        let (mut mu, mut lv, mut z) = ([0f32; MAX_LATENT], [0f32; MAX_LATENT], [0f32; MAX_LATENT]);
        let l = self.latent;
        self.encode(arena, image, &mut mu, &mut lv)?;
        let jacobian = classes.log_jacobian();
        // Per class, a streaming log-sum-exp over the k samples.
        let (mut max, mut acc) = ([f64::NEG_INFINITY; crate::guard::MAX_COMPONENTS], [0f64; crate::guard::MAX_COMPONENTS]);
        for _ in 0..k {
            likelihood::reparameterize(&mu[..l], &lv[..l], rng, &mut z[..l])?;
            let lp = self.decode_log_prob(arena, &z[..l], image)? - likelihood::diag_gaussian_log_pdf(&z[..l], &mu[..l], &lv[..l])?;
            for y in 0..c {
                let prior = classes.component_log_density(y, &z[..l]).ok_or(Error::InvalidParameter("class priors"))? + jacobian;
                let w = lp + prior;
                if w > max[y] {
                    acc[y] = acc[y] * libm::exp(max[y] - w) + 1.0;
                    max[y] = w;
                } else {
                    acc[y] += libm::exp(w - max[y]);
                }
            }
        }
        let log_k = libm::log(k as f64);
        let joint = |y: usize| max[y] + libm::log(acc[y]) - log_k;
        let class = (0..c).fold(0, |best, y| if joint(y) > joint(best) { y } else { best });
        let top = joint(class);
        let log_px = top + libm::log((0..c).map(|y| libm::exp(joint(y) - top)).sum::<f64>());
        Ok(BayesAnswer { class, probability: libm::exp(top - log_px), log_px, values: self.geometry.values() })
    }

    /// The mean image of p(x|z) (each pixel the mixture's expected value, rounded): what a
    /// latent looks like without the pixel noise of a sample (interpolation grids).
    pub fn decode_mean(&self, arena: &mut [u8], z: &[f32], out: &mut [u8]) -> Result<(), Error> {
        likelihood::mixture_mean_image(&self.decode(arena, z)?, self.components, self.geometry.plane(), out)
    }

    /// Draws an image: z ~ N(0, I) from `Rng::new(seed)`, then every pixel from p(x|z).
    pub fn sample(&self, arena: &mut [u8], seed: u64, out: &mut [u8]) -> Result<(), Error> {
        let mut rng = Rng::new(seed);
        let mut z = [0f32; MAX_LATENT];
        rng.fill_normal(&mut z[..self.latent]);
        likelihood::mixture_sample_image(&self.decode(arena, &z[..self.latent])?, self.components, self.geometry.plane(), &mut rng, out)
    }
}

/// A GAN generator on the int8 path.
#[derive(Debug, Clone)]
pub struct Gan<'m> {
    generator: Interpreter<'m>,
    latent: usize,
    classes: usize,
    geometry: Geometry,
}

/// A generator's input for seed `seed`: noise z ~ N(0, I) from `Rng::new(seed)` into
/// `input[..latent]`, then (conditional generators, `classes` > 0) the one-hot of `class`,
/// or of a class drawn uniformly from the same stream after z when `class` is `None`.
/// Returns the class (0 for an unconditional generator).
pub fn seed_input(seed: u64, latent: usize, classes: usize, class: Option<usize>, input: &mut [f32]) -> Result<usize, Error> {
    if input.len() != latent + classes {
        return Err(Error::LengthMismatch { expected: latent + classes, got: input.len() });
    }
    let mut rng = Rng::new(seed);
    rng.fill_normal(&mut input[..latent]);
    let class = match (classes, class) {
        (0, None) => return Ok(0),
        (0, Some(_)) => return Err(Error::InvalidParameter("this generator is not conditional: it takes no class")),
        (k, Some(c)) if c >= k => return Err(Error::InvalidParameter("class index beyond the generator's classes")),
        (_, Some(c)) => c,
        (k, None) => rng.below(k as u32) as usize,
    };
    input[latent..].fill(0.0);
    input[latent + class] = 1.0;
    Ok(class)
}

impl<'m> Gan<'m> {
    /// An engine for a compiled generator.
    pub fn new(generator: Model<'m>, kernels: Kernels) -> Result<Self, Error> {
        check_family(&generator, Family::GanGenerator)?;
        let input = check_vector_input(&generator)?;
        // A conditional generator's metadata names its noise dimensions, fewer than its
        // input's: the rest is the one-hot class.
        let latent = match generator.metadata().latent as usize {
            0 => input,
            l if l <= input => l,
            _ => return Err(Error::InvalidParameter("the generator's latent exceeds its input")),
        };
        let out = generator.tensor(generator.outputs()[0] as usize);
        let geometry = generator.geometry();
        if out.dtype != DType::F32 || out.dims != geometry.dims() {
            return Err(Error::InvalidParameter("the generator must output an f32 [C, H, W] image of the model's geometry"));
        }
        Ok(Gan { generator: Interpreter::new(generator, kernels), latent, classes: input - latent, geometry })
    }

    /// The image geometry (from the model file).
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Arena bytes needed.
    pub fn arena_len(&self) -> usize {
        self.generator.arena_len()
    }

    /// The generator's model file.
    pub fn model(&self) -> &Model<'m> {
        self.generator.model()
    }

    /// The latent size.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Classes of a conditional generator (0: unconditional).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The image for z ~ N(0, I) drawn from `Rng::new(seed)` (a conditional generator's
    /// class drawn uniformly from the same stream after z).
    pub fn sample(&self, arena: &mut [u8], seed: u64, out: &mut [u8]) -> Result<(), Error> {
        self.sample_class(arena, seed, None, out).map(|_| ())
    }

    /// The image for seed `seed` of class `class` (a conditional generator; `None`: the
    /// class is drawn after z); returns the class. The same seed gives the same noise for
    /// every class, so a row of classes shares its style.
    pub fn sample_class(&self, arena: &mut [u8], seed: u64, class: Option<usize>, out: &mut [u8]) -> Result<usize, Error> {
        let mut z = [0f32; MAX_LATENT];
        let n = self.latent + self.classes;
        let class = seed_input(seed, self.latent, self.classes, class, &mut z[..n])?;
        self.generate(arena, &z[..n], out)?;
        Ok(class)
    }

    /// The image for the generator's whole input `z`: the noise, then a conditional
    /// generator's one-hot class.
    pub fn generate(&self, arena: &mut [u8], z: &[f32], out: &mut [u8]) -> Result<(), Error> {
        self.geometry.check(out)?;
        self.generator.set_input_f32(arena, z)?;
        self.generator.invoke(arena)?;
        let m = self.generator.model();
        let image = LeF32(&arena[m.tensor(m.outputs()[0] as usize).range()]);
        for (i, o) in out.iter_mut().enumerate() {
            *o = crate::image::unscale_pixel(likelihood::Params::at(&image, i));
        }
        Ok(())
    }
}
