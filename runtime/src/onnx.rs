//! The tract engine (feature `onnx`): runs the exported ONNX files on a host with the same
//! calls as the device engine, and the same probability code ([`crate::likelihood`]).
//! The accuracy reference for the int8 path, and the engine of choice on a Linux edge box.

use crate::image::{scale_image, Geometry};
use crate::likelihood;
use crate::rng::Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::prelude::*;

/// Errors of the tract engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// A model file could not be read, parsed or prepared.
    #[error("{path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The model's interface is not what this engine expects.
    #[error("{path}: {message}")]
    Interface {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// tract failed while running a model.
    #[error("running {what}: {message}")]
    Run {
        /// Which model.
        what: &'static str,
        /// tract's message.
        message: String,
    },
    /// Bad input to the runtime's maths.
    #[error(transparent)]
    Runtime(#[from] crate::Error),
}

/// A prepared tract model with static input and output shapes.
pub struct OnnxModel {
    plan: Arc<TypedRunnableModel>,
    path: PathBuf,
    input_int8: bool,
    input_shape: Vec<usize>,
    output_shapes: Vec<Vec<usize>>,
    metadata: Vec<(String, String)>,
}

impl core::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("input", &self.input_shape)
            .field("outputs", &self.output_shapes)
            .finish()
    }
}

impl OnnxModel {
    /// Loads, type-checks and optimizes an ONNX file with one f32 input of static shape.
    pub fn load(path: &Path) -> Result<Self, OnnxError> {
        let load_err = |e: TractError| OnnxError::Load { path: path.to_path_buf(), message: format!("{e:#}") };
        if !path.exists() {
            return Err(OnnxError::Load { path: path.to_path_buf(), message: "file not found".into() });
        }
        let model = tract_onnx::onnx().model_for_path(path).map_err(load_err)?;
        let metadata = model
            .properties
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("onnx.metadata_props.")?;
                Some((key.to_string(), v.as_plain_ram()?.to_scalar::<String>().ok()?.clone()))
            })
            .collect();
        let typed = model.into_typed().map_err(load_err)?;
        let interface = |message: String| OnnxError::Interface { path: path.to_path_buf(), message };
        if typed.inputs.len() != 1 {
            return Err(interface(format!("expected one input, found {}", typed.inputs.len())));
        }
        let shape_of = |fact: &TypedFact| -> Result<Vec<usize>, OnnxError> {
            fact.shape.as_concrete().map(|s| s.to_vec()).ok_or_else(|| interface(format!("shape {:?} is not static", fact.shape)))
        };
        let input_fact = typed.input_fact(0).map_err(load_err)?;
        let input_int8 = input_fact.datum_type == i8::datum_type();
        if !input_int8 && input_fact.datum_type != f32::datum_type() {
            return Err(interface(format!("input type {:?}, expected f32 or int8", input_fact.datum_type)));
        }
        let input_shape = shape_of(input_fact)?;
        let output_shapes =
            (0..typed.outputs.len()).map(|i| shape_of(typed.output_fact(i).map_err(load_err)?)).collect::<Result<Vec<_>, _>>()?;
        let plan = typed.into_optimized().map_err(load_err)?.into_runnable().map_err(load_err)?;
        Ok(OnnxModel { plan, path: path.to_path_buf(), input_int8, input_shape, output_shapes, metadata })
    }

    /// A `metadata_props` entry of the file.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Static shape of the input.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Static shapes of the outputs.
    pub fn output_shapes(&self) -> &[Vec<usize>] {
        &self.output_shapes
    }

    /// True when the input is int8 (a QDQ model taking the image as `p − 128`).
    pub fn input_is_int8(&self) -> bool {
        self.input_int8
    }

    /// Runs the model on an 8-bit image: as `p − 128` for an int8 input, as `p/127.5 − 1`
    /// for an f32 one.
    pub fn run_image(&self, pixels: &[u8], what: &'static str) -> Result<Vec<Vec<f32>>, OnnxError> {
        if self.input_int8 {
            let q: Vec<i8> = pixels.iter().map(|&p| (p ^ 0x80) as i8).collect();
            self.run_tensor(&q, what)
        } else {
            let mut x = vec![0f32; pixels.len()];
            scale_image(pixels, &mut x)?;
            self.run(&x, what)
        }
    }

    /// Runs the model on an f32 `input` (row-major, `input_shape` elements); returns every
    /// output flattened.
    pub fn run(&self, input: &[f32], what: &'static str) -> Result<Vec<Vec<f32>>, OnnxError> {
        if self.input_int8 {
            return Err(OnnxError::Interface { path: self.path.clone(), message: "this model takes an int8 image, not floats".into() });
        }
        self.run_tensor(input, what)
    }

    fn run_tensor<T: Datum + Copy>(&self, input: &[T], what: &'static str) -> Result<Vec<Vec<f32>>, OnnxError> {
        let run_err = |e: TractError| OnnxError::Run { what, message: format!("{e:#}") };
        let expected: usize = self.input_shape.iter().product();
        if input.len() != expected {
            return Err(crate::Error::LengthMismatch { expected, got: input.len() }.into());
        }
        let tensor = Tensor::from_shape(&self.input_shape, input).map_err(run_err)?;
        let outputs = self.plan.run(tvec!(tensor.into_tvalue())).map_err(run_err)?;
        outputs.iter().map(|o| Ok(o.to_plain_array_view::<f32>().map_err(run_err)?.iter().copied().collect())).collect()
    }
}

pub use crate::engine::VaeBounds;

/// A VAE run through tract: `encoder.onnx` and `decoder.onnx` from one model directory.
#[derive(Debug)]
pub struct OnnxVae {
    encoder: OnnxModel,
    decoder: OnnxModel,
    latent: usize,
    components: usize,
    geometry: Geometry,
}

impl OnnxVae {
    /// Loads `dir/encoder.onnx` and `dir/decoder.onnx` (or `*.int8.onnx` with `int8`) and
    /// checks their interfaces agree: image `[1,C,H,W]` → `mu, logvar [1,L]`;
    /// `z [1,L]` → `params [1,3K·C,H,W]`.
    pub fn load(dir: &Path) -> Result<Self, OnnxError> {
        Self::load_files(&dir.join("encoder.onnx"), &dir.join("decoder.onnx"))
    }

    /// Loads an explicit encoder and decoder pair.
    pub fn load_files(encoder: &Path, decoder: &Path) -> Result<Self, OnnxError> {
        let enc = OnnxModel::load(encoder)?;
        let dec = OnnxModel::load(decoder)?;
        let bad = |path: &Path, message: String| OnnxError::Interface { path: path.to_path_buf(), message };
        let geometry = image_geometry(encoder, enc.input_shape())?;
        if enc.output_shapes().len() != 2 || enc.output_shapes()[0] != enc.output_shapes()[1] || enc.output_shapes()[0].len() != 2 {
            return Err(bad(encoder, format!("outputs {:?}, expected mu and logvar of shape [1, L]", enc.output_shapes())));
        }
        let latent = enc.output_shapes()[0][1];
        if dec.input_shape() != [1, latent] {
            return Err(bad(decoder, format!("input shape {:?}, expected [1, {latent}] to match the encoder", dec.input_shape())));
        }
        let components = mixture_components(decoder, &dec.output_shapes()[0], geometry)?;
        Ok(OnnxVae { encoder: enc, decoder: dec, latent, components, geometry })
    }

    /// The image geometry (from the encoder's input).
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Latent dimensions.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Mixture components of the pixel distribution.
    pub fn components(&self) -> usize {
        self.components
    }

    /// `(mu, logvar)` of q(z|x) for an 8-bit image of the model's geometry.
    pub fn encode(&self, image: &[u8]) -> Result<(Vec<f32>, Vec<f32>), OnnxError> {
        self.geometry.check(image)?;
        let mut out = self.encoder.run_image(image, "encoder")?;
        let logvar = out.pop().expect("two outputs checked at load");
        let mu = out.pop().expect("two outputs checked at load");
        Ok((mu, logvar))
    }

    /// The decoder's mixture head for latent `z`.
    pub fn decode(&self, z: &[f32]) -> Result<Vec<f32>, OnnxError> {
        Ok(self.decoder.run(z, "decoder")?.swap_remove(0))
    }

    /// The mean image of p(x|z) (see `engine::Vae::decode_mean`).
    pub fn decode_mean(&self, z: &[f32], out: &mut [u8]) -> Result<(), OnnxError> {
        let params = self.decode(z)?;
        likelihood::mixture_mean_image(&params[..], self.components, self.geometry.plane(), out)?;
        Ok(())
    }

    /// Draws an image: z ~ N(0, I) from `Rng::new(seed)`, then every pixel from p(x|z) with
    /// the same generator.
    pub fn sample(&self, seed: u64, out: &mut [u8]) -> Result<(), OnnxError> {
        let mut rng = Rng::new(seed);
        let mut z = vec![0f32; self.latent];
        rng.fill_normal(&mut z);
        let params = self.decode(&z)?;
        likelihood::mixture_sample_image(&params[..], self.components, self.geometry.plane(), &mut rng, out)?;
        Ok(())
    }

    /// ELBO and `k`-sample importance-weighted bound of `image`, latents drawn from `rng`.
    pub fn bounds(&self, image: &[u8], k: usize, rng: &mut Rng) -> Result<VaeBounds, OnnxError> {
        if k == 0 {
            return Err(crate::Error::InvalidParameter("k must be at least 1").into());
        }
        let (mu, logvar) = self.encode(image)?;
        let mut z = vec![0f32; self.latent];
        let mut log_weights = Vec::with_capacity(k);
        for _ in 0..k {
            likelihood::reparameterize(&mu, &logvar, rng, &mut z)?;
            let params = self.decode(&z)?;
            let lp = likelihood::mixture_image_log_prob(image, &params[..], self.components, self.geometry.plane())?;
            log_weights.push(likelihood::importance_log_weight(lp, &z, &mu, &logvar)?);
        }
        Ok(VaeBounds { elbo: log_weights.iter().sum::<f64>() / k as f64, iwae: likelihood::iwae_bound(&log_weights)?, values: image.len() })
    }
}

/// The geometry of an image shape `[1, C, H, W]`.
fn image_geometry(path: &Path, shape: &[usize]) -> Result<Geometry, OnnxError> {
    let bad = || OnnxError::Interface {
        path: path.to_path_buf(),
        message: format!("image shape {shape:?}, expected [1, C, H, W] with C in 1..=4"),
    };
    let [1, c, h, w] = shape else { return Err(bad()) };
    let small = |v: usize| u16::try_from(v).map_err(|_| bad());
    Geometry::new(small(*c)?, small(*h)?, small(*w)?).map_err(|_| bad())
}

/// The mixture components of a head of shape `[1, 3K·C, H, W]` for geometry `g`.
fn mixture_components(path: &Path, shape: &[usize], g: Geometry) -> Result<usize, OnnxError> {
    let per_channel = 3 * g.channels as usize;
    if shape.len() != 4
        || shape[0] != 1
        || !shape[1].is_multiple_of(per_channel)
        || shape[1] == 0
        || shape[2..] != [g.height as usize, g.width as usize]
    {
        return Err(OnnxError::Interface {
            path: path.to_path_buf(),
            message: format!("output shape {shape:?}, expected [1, 3K*{}, {}, {}]", g.channels, g.height, g.width),
        });
    }
    let k = shape[1] / per_channel;
    if k > likelihood::MAX_COMPONENTS {
        return Err(OnnxError::Interface {
            path: path.to_path_buf(),
            message: format!("{k} mixture components, at most {} supported", likelihood::MAX_COMPONENTS),
        });
    }
    Ok(k)
}

/// A PixelCNN run through tract: `model.onnx` maps an image to the per-pixel mixture
/// parameters of p(x_i | x_<i).
#[derive(Debug)]
pub struct OnnxPixelCnn {
    model: OnnxModel,
    components: usize,
    geometry: Geometry,
}

impl OnnxPixelCnn {
    /// Loads `dir/model.onnx` and checks its interface: `[1,C,H,W]` → `[1,3K·C,H,W]`.
    pub fn load(dir: &Path) -> Result<Self, OnnxError> {
        Self::load_file(&dir.join("model.onnx"))
    }

    /// Loads an explicit file.
    pub fn load_file(path: &Path) -> Result<Self, OnnxError> {
        let model = OnnxModel::load(path)?;
        let geometry = image_geometry(path, model.input_shape())?;
        if model.output_shapes().len() != 1 {
            return Err(OnnxError::Interface {
                path: path.to_path_buf(),
                message: format!("{} outputs, expected one", model.output_shapes().len()),
            });
        }
        let components = mixture_components(path, &model.output_shapes()[0], geometry)?;
        Ok(OnnxPixelCnn { model, components, geometry })
    }

    /// The image geometry (from the model's input).
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Mixture components per pixel.
    pub fn components(&self) -> usize {
        self.components
    }

    /// The mixture head for an image.
    pub fn heads(&self, image: &[u8]) -> Result<Vec<f32>, OnnxError> {
        self.geometry.check(image)?;
        Ok(self.model.run_image(image, "pixelcnn")?.swap_remove(0))
    }

    /// Exact log p(image) in nats.
    pub fn log_prob(&self, image: &[u8]) -> Result<f64, OnnxError> {
        Ok(likelihood::mixture_image_log_prob(image, &self.heads(image)?[..], self.components, self.geometry.plane())?)
    }

    /// Exact log p(image) in nats, also writing each pixel's log p(x_i | x_<i) into `pixels`.
    pub fn log_prob_pixels(&self, image: &[u8], pixels: &mut [f32]) -> Result<f64, OnnxError> {
        Ok(likelihood::mixture_image_log_prob_pixels(image, &self.heads(image)?[..], self.components, self.geometry.plane(), pixels)?)
    }

    /// Draws an image pixel by pixel in raster order, channel by channel within a pixel, from
    /// `Rng::new(seed)` (`C·H·W` passes; the int8 engine avoids the redundant work).
    pub fn sample(&self, seed: u64, out: &mut [u8]) -> Result<(), OnnxError> {
        let g = self.geometry;
        g.check(out)?;
        let (plane, k) = (g.plane(), self.components);
        let mut rng = Rng::new(seed);
        out.fill(0);
        for p in 0..plane {
            for c in 0..g.channels as usize {
                let i = c * plane + p;
                let params = self.heads(out)?;
                out[i] = likelihood::mixture_sample_at(&params[..], likelihood::head_index(i, k, plane), k, plane, &mut rng);
            }
        }
        Ok(())
    }
}

/// A GAN generator run through tract: `generator.onnx` maps z `[1,L]` to an image in (-1, 1).
#[derive(Debug)]
pub struct OnnxGan {
    generator: OnnxModel,
    latent: usize,
    classes: usize,
    geometry: Geometry,
}

impl OnnxGan {
    /// Loads `dir/generator.onnx` and checks its interface: `[1,L]` → `[1,C,H,W]`.
    pub fn load(dir: &Path) -> Result<Self, OnnxError> {
        Self::load_file(&dir.join("generator.onnx"))
    }

    /// Loads an explicit file.
    pub fn load_file(path: &Path) -> Result<Self, OnnxError> {
        let generator = OnnxModel::load(path)?;
        let input = generator.input_shape().to_vec();
        if input.len() != 2 || input[0] != 1 || generator.output_shapes().len() != 1 {
            return Err(OnnxError::Interface {
                path: path.to_path_buf(),
                message: format!("input {input:?} and outputs {:?}, expected [1, L] and one [1, C, H, W]", generator.output_shapes()),
            });
        }
        let geometry = image_geometry(path, &generator.output_shapes()[0])?;
        // A conditional generator names its classes in the file's metadata (`classes`); its
        // input is the noise followed by the one-hot class.
        let classes = match generator.metadata("classes") {
            None => 0,
            Some(k) => match k.parse::<usize>() {
                Ok(k) if k > 0 && k < input[1] => k,
                _ => {
                    return Err(OnnxError::Interface {
                        path: path.to_path_buf(),
                        message: format!("metadata classes = {k:?} does not fit the generator's input of {}", input[1]),
                    })
                }
            },
        };
        Ok(OnnxGan { generator, latent: input[1] - classes, classes, geometry })
    }

    /// The image geometry (from the generator's output).
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Noise dimensions.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Classes of a conditional generator (0: unconditional).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The image for noise z ~ N(0, I) drawn from `Rng::new(seed)` (a conditional
    /// generator's class drawn from the same stream after z).
    pub fn sample(&self, seed: u64, out: &mut [u8]) -> Result<(), OnnxError> {
        self.sample_class(seed, None, out).map(|_| ())
    }

    /// [`OnnxGan::sample`] of class `class` (a conditional generator; `None`: drawn);
    /// returns the class drawn. As [`crate::engine::Gan::sample_class`].
    pub fn sample_class(&self, seed: u64, class: Option<usize>, out: &mut [u8]) -> Result<usize, OnnxError> {
        let mut z = vec![0f32; self.latent + self.classes];
        let class = crate::engine::seed_input(seed, self.latent, self.classes, class, &mut z)?;
        self.generate(&z, out)?;
        Ok(class)
    }

    /// The image for the generator's whole input `z` (noise, then a conditional generator's
    /// one-hot class).
    pub fn generate(&self, z: &[f32], out: &mut [u8]) -> Result<(), OnnxError> {
        self.geometry.check(out)?;
        let image = self.generator.run(z, "generator")?.swap_remove(0);
        for (o, v) in out.iter_mut().zip(image) {
            *o = crate::image::unscale_pixel(v);
        }
        Ok(())
    }
}

/// A normalizing flow run through tract: `density.onnx` maps an image `[1,C,H,W]` to its
/// latent `z` and `log_prob` (dequantized at the bin centre), `sampler.onnx` maps a latent
/// to dequantized values `v` in [0, 1], the pixel being `min(⌊256 v⌋, 255)`.
#[derive(Debug)]
pub struct OnnxFlow {
    density: OnnxModel,
    sampler: OnnxModel,
    latent: usize,
    geometry: Geometry,
}

impl OnnxFlow {
    /// Loads `dir/density.onnx` and `dir/sampler.onnx` and checks that they fit together.
    pub fn load(dir: &Path) -> Result<Self, OnnxError> {
        Self::load_files(&dir.join("density.onnx"), &dir.join("sampler.onnx"))
    }

    /// Loads explicit files.
    pub fn load_files(density: &Path, sampler: &Path) -> Result<Self, OnnxError> {
        let d = OnnxModel::load(density)?;
        let geometry = image_geometry(density, d.input_shape())?;
        let outs = d.output_shapes();
        let latent = match outs {
            [z, lp] if lp.iter().product::<usize>() == 1 => z.iter().product::<usize>(),
            _ => {
                return Err(OnnxError::Interface {
                    path: density.to_path_buf(),
                    message: format!("outputs {outs:?}, expected the latent z and a [1] log_prob"),
                })
            }
        };
        let s = OnnxModel::load(sampler)?;
        let fits = s.input_shape().iter().product::<usize>() == latent
            && s.output_shapes().len() == 1
            && s.output_shapes()[0].iter().product::<usize>() == geometry.values();
        if !fits {
            return Err(OnnxError::Interface {
                path: sampler.to_path_buf(),
                message: format!(
                    "input {:?} and outputs {:?}, expected the density's latent of {latent} values and one {:?} image",
                    s.input_shape(),
                    s.output_shapes(),
                    geometry.dims()
                ),
            });
        }
        Ok(OnnxFlow { density: d, sampler: s, latent, geometry })
    }

    /// The image geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Values of the latent (as many as the image's).
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// The latent `z` of an image and its log p in nats (at the bin centre).
    pub fn encode(&self, image: &[u8]) -> Result<(Vec<f32>, f64), OnnxError> {
        self.geometry.check(image)?;
        let mut out = self.density.run_image(image, "flow density")?;
        let lp = out.pop().and_then(|v| v.first().copied()).unwrap_or(f32::NAN);
        Ok((out.swap_remove(0), lp as f64))
    }

    /// log p(image) in nats: the flow's density of the image dequantized at the bin centre.
    pub fn log_prob(&self, image: &[u8]) -> Result<f64, OnnxError> {
        Ok(self.encode(image)?.1)
    }

    /// The image of latent `z`.
    pub fn decode(&self, z: &[f32], out: &mut [u8]) -> Result<(), OnnxError> {
        self.geometry.check(out)?;
        let v = self.sampler.run(z, "flow sampler")?.swap_remove(0);
        for (o, v) in out.iter_mut().zip(v) {
            *o = (v * 256.0).floor().clamp(0.0, 255.0) as u8;
        }
        Ok(())
    }

    /// The image for z ~ N(0, I) drawn from `Rng::new(seed)`: one pass of the inverse flow.
    pub fn sample(&self, seed: u64, out: &mut [u8]) -> Result<(), OnnxError> {
        let mut z = vec![0f32; self.latent];
        Rng::new(seed).fill_normal(&mut z);
        self.decode(&z, out)
    }
}

/// A classifier run through tract: `classifier.onnx` maps an image `[1,C,H,W]` to class
/// logits `[1,K]`.
#[derive(Debug)]
pub struct OnnxClassifier {
    model: OnnxModel,
    classes: usize,
    geometry: Geometry,
}

impl OnnxClassifier {
    /// Loads a classifier ONNX file (f32 or QDQ) and checks its interface.
    pub fn load_file(path: &Path) -> Result<Self, OnnxError> {
        let model = OnnxModel::load(path)?;
        let geometry = image_geometry(path, model.input_shape())?;
        let outs = model.output_shapes();
        let classes = match outs {
            [o] if o.len() == 2 && o[0] == 1 && (2..=crate::engine::MAX_CLASSES).contains(&o[1]) => o[1],
            _ => {
                return Err(OnnxError::Interface {
                    path: path.to_path_buf(),
                    message: format!("outputs {outs:?}, expected one [1, K] of 2 to 64 class logits"),
                })
            }
        };
        Ok(OnnxClassifier { model, classes, geometry })
    }

    /// The image geometry (from the input).
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The class logits of an 8-bit image.
    pub fn logits(&self, pixels: &[u8]) -> Result<Vec<f32>, OnnxError> {
        self.geometry.check(pixels)?;
        Ok(self.model.run_image(pixels, "classifier")?.swap_remove(0))
    }

    /// The most probable class and its probability.
    pub fn classify(&self, pixels: &[u8]) -> Result<crate::engine::Classification, OnnxError> {
        Ok(crate::engine::classification(&self.logits(pixels)?))
    }
}
