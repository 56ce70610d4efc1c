//! The tract engine (feature `onnx`): runs the exported ONNX files on a host with the same
//! calls as the device engine, and the same probability code ([`crate::likelihood`]).
//! The accuracy reference for the int8 path, and the engine of choice on a Linux edge box.

use crate::image::{scale_image, PIXELS};
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
    input_shape: Vec<usize>,
    output_shapes: Vec<Vec<usize>>,
}

impl core::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OnnxModel").field("path", &self.path).field("input", &self.input_shape).field("outputs", &self.output_shapes).finish()
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
        let typed = model.into_typed().map_err(load_err)?;
        let interface = |message: String| OnnxError::Interface { path: path.to_path_buf(), message };
        if typed.inputs.len() != 1 {
            return Err(interface(format!("expected one input, found {}", typed.inputs.len())));
        }
        let shape_of = |fact: &TypedFact| -> Result<Vec<usize>, OnnxError> {
            fact.shape
                .as_concrete()
                .map(|s| s.to_vec())
                .ok_or_else(|| interface(format!("shape {:?} is not static", fact.shape)))
        };
        let input_shape = shape_of(typed.input_fact(0).map_err(load_err)?)?;
        let output_shapes = (0..typed.outputs.len())
            .map(|i| shape_of(typed.output_fact(i).map_err(load_err)?))
            .collect::<Result<Vec<_>, _>>()?;
        let plan = typed.into_optimized().map_err(load_err)?.into_runnable().map_err(load_err)?;
        Ok(OnnxModel { plan, path: path.to_path_buf(), input_shape, output_shapes })
    }

    /// Static shape of the input.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Static shapes of the outputs.
    pub fn output_shapes(&self) -> &[Vec<usize>] {
        &self.output_shapes
    }

    /// Runs the model on `input` (row-major, `input_shape` elements); returns every output
    /// flattened.
    pub fn run(&self, input: &[f32], what: &'static str) -> Result<Vec<Vec<f32>>, OnnxError> {
        let run_err = |e: TractError| OnnxError::Run { what, message: format!("{e:#}") };
        let expected: usize = self.input_shape.iter().product();
        if input.len() != expected {
            return Err(crate::Error::LengthMismatch { expected, got: input.len() }.into());
        }
        let tensor = Tensor::from_shape(&self.input_shape, input).map_err(run_err)?;
        let outputs = self.plan.run(tvec!(tensor.into_tvalue())).map_err(run_err)?;
        outputs
            .iter()
            .map(|o| Ok(o.to_plain_array_view::<f32>().map_err(run_err)?.iter().copied().collect()))
            .collect()
    }
}

/// Likelihood bounds of one image, in nats and bits/dim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VaeBounds {
    /// ELBO (mean of the k log importance weights), nats.
    pub elbo: f64,
    /// k-sample importance-weighted bound, nats.
    pub iwae: f64,
}

impl VaeBounds {
    /// ELBO in bits/dim.
    pub fn elbo_bpd(&self) -> f64 {
        likelihood::bits_per_dim(self.elbo, PIXELS)
    }
    /// Importance-weighted bound in bits/dim (the tighter estimate).
    pub fn iwae_bpd(&self) -> f64 {
        likelihood::bits_per_dim(self.iwae, PIXELS)
    }
}

/// A VAE run through tract: `encoder.onnx` and `decoder.onnx` from one model directory.
#[derive(Debug)]
pub struct OnnxVae {
    encoder: OnnxModel,
    decoder: OnnxModel,
    latent: usize,
    components: usize,
}

impl OnnxVae {
    /// Loads `dir/encoder.onnx` and `dir/decoder.onnx` (or `*.int8.onnx` with `int8`) and
    /// checks their interfaces agree: image `[1,1,28,28]` → `mu, logvar [1,L]`;
    /// `z [1,L]` → `params [1,3K,28,28]`.
    pub fn load(dir: &Path) -> Result<Self, OnnxError> {
        Self::load_files(&dir.join("encoder.onnx"), &dir.join("decoder.onnx"))
    }

    /// Loads an explicit encoder and decoder pair.
    pub fn load_files(encoder: &Path, decoder: &Path) -> Result<Self, OnnxError> {
        let enc = OnnxModel::load(encoder)?;
        let dec = OnnxModel::load(decoder)?;
        let bad = |path: &Path, message: String| OnnxError::Interface { path: path.to_path_buf(), message };
        if enc.input_shape() != [1, 1, 28, 28] {
            return Err(bad(encoder, format!("input shape {:?}, expected [1, 1, 28, 28]", enc.input_shape())));
        }
        if enc.output_shapes().len() != 2 || enc.output_shapes()[0] != enc.output_shapes()[1] || enc.output_shapes()[0].len() != 2 {
            return Err(bad(encoder, format!("outputs {:?}, expected mu and logvar of shape [1, L]", enc.output_shapes())));
        }
        let latent = enc.output_shapes()[0][1];
        if dec.input_shape() != [1, latent] {
            return Err(bad(decoder, format!("input shape {:?}, expected [1, {latent}] to match the encoder", dec.input_shape())));
        }
        let out = &dec.output_shapes()[0];
        if out.len() != 4 || out[1] % 3 != 0 || out[1] == 0 || out[2..] != [28, 28] {
            return Err(bad(decoder, format!("output shape {out:?}, expected [1, 3K, 28, 28]")));
        }
        let components = out[1] / 3;
        if components > likelihood::MAX_COMPONENTS {
            return Err(bad(decoder, format!("{components} mixture components, at most {} supported", likelihood::MAX_COMPONENTS)));
        }
        Ok(OnnxVae { encoder: enc, decoder: dec, latent, components })
    }

    /// Latent dimensions.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Mixture components of the pixel distribution.
    pub fn components(&self) -> usize {
        self.components
    }

    /// `(mu, logvar)` of q(z|x) for an 8-bit 28×28 image.
    pub fn encode(&self, image: &[u8]) -> Result<(Vec<f32>, Vec<f32>), OnnxError> {
        let mut x = [0f32; PIXELS];
        scale_image(image, &mut x)?;
        let mut out = self.encoder.run(&x, "encoder")?;
        let logvar = out.pop().expect("two outputs checked at load");
        let mu = out.pop().expect("two outputs checked at load");
        Ok((mu, logvar))
    }

    /// The decoder's mixture head for latent `z`.
    pub fn decode(&self, z: &[f32]) -> Result<Vec<f32>, OnnxError> {
        Ok(self.decoder.run(z, "decoder")?.swap_remove(0))
    }

    /// Draws an image: z ~ N(0, I) from `Rng::new(seed)`, then every pixel from p(x|z) with
    /// the same generator.
    pub fn sample(&self, seed: u64, out: &mut [u8]) -> Result<(), OnnxError> {
        let mut rng = Rng::new(seed);
        let mut z = vec![0f32; self.latent];
        rng.fill_normal(&mut z);
        let params = self.decode(&z)?;
        likelihood::mixture_sample_image(&params, self.components, &mut rng, out)?;
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
            let lp = likelihood::mixture_image_log_prob(image, &params, self.components)?;
            log_weights.push(likelihood::importance_log_weight(lp, &z, &mu, &logvar)?);
        }
        Ok(VaeBounds { elbo: log_weights.iter().sum::<f64>() / k as f64, iwae: likelihood::iwae_bound(&log_weights)? })
    }
}
