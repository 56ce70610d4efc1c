//! `card.json`, the measured figures next to every published model, as serde types: the
//! family's publish writes it, `quantize` / `compile` add the int8 figures and the compiled
//! files, `calibrate` adds the guard. Interface descriptions (tensor names, shapes and what
//! they mean) stay free-form JSON; every figure is a typed field. Written with sorted keys.

use crate::families::ModelFamily;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Rounds a figure to 4 decimals for the card.
pub fn r4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// A model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// Model name.
    pub name: String,
    /// The family and its own figures (`family` names it in the JSON).
    #[serde(flatten)]
    pub family: FamilyCard,
    /// What it was trained on.
    pub dataset: String,
    /// Parameters (as exported).
    pub params: u64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// The published files.
    pub files: BTreeMap<String, Value>,
    /// The ONNX inputs (per part, for multi-part models).
    pub inputs: Value,
    /// The ONNX outputs.
    pub outputs: Value,
    /// How it was trained.
    #[serde(flatten)]
    pub run: RunRecord,
    /// What this model is for, when it is not the obvious (a background model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// What `quantize`, `compile` and `calibrate` add.
    #[serde(flatten)]
    pub device: DeviceRecord,
    /// Where its images come from when not Fashion-MNIST: `quantize`, `calibrate` and
    /// `eval` read the same images and split from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::data::Source>,
    /// The frames it takes or makes (absent in cards written before geometry was recorded:
    /// 28×28×1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<GeometryCard>,
}

/// A model's frame geometry, as its card states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeometryCard {
    /// Channels (1 = gray, 3 = RGB).
    pub channels: u16,
    /// Rows.
    pub height: u16,
    /// Columns.
    pub width: u16,
}

impl GeometryCard {
    /// The card form of a geometry.
    pub fn of(g: edgegen_runtime::image::Geometry) -> Self {
        GeometryCard { channels: g.channels, height: g.height, width: g.width }
    }
}

impl Card {
    /// The frames the model takes or makes.
    pub fn frame_geometry(&self) -> edgegen_runtime::image::Geometry {
        match self.geometry {
            Some(g) => edgegen_runtime::image::Geometry { channels: g.channels, height: g.height, width: g.width },
            None => crate::data::FASHION_MNIST,
        }
    }

    /// Where the model's images come from.
    pub fn source(&self) -> crate::data::Source {
        crate::data::Source::of_card(self.data.as_ref())
    }
}

/// The training run behind a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Epochs trained.
    pub epochs: usize,
    /// Per-epoch figures.
    pub history: Vec<HistoryRow>,
    /// Seed of the run.
    pub seed: u64,
    /// The command that reproduces it (derived from `train_config`).
    pub train_command: String,
    /// The run's arguments (`config.json` of its run directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_config: Option<Value>,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Where it was trained.
    pub machine: String,
}

impl RunRecord {
    /// The record of a finished run: its state, the names of its two per-epoch figures, the
    /// command that reproduces it and its arguments.
    pub fn of(state: &crate::families::checkpoint::TrainState, figures: [&str; 2], command: &str, config: Option<Value>) -> RunRecord {
        // Where it ran: this machine's cores and the run's --device (the CPU's flex backend
        // when the arguments do not say).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let device = config.as_ref().and_then(|c| c["device"].as_str()).unwrap_or("cpu");
        let on = if device == "cpu" { "the CPU (flex backend)".to_string() } else { format!("device {device}") };
        RunRecord {
            epochs: state.epoch,
            history: history(state, figures[0], figures[1]),
            seed: state.seed,
            train_command: command.to_string(),
            train_config: config,
            train_seconds: state.elapsed_seconds.round(),
            machine: format!("{cores} cores; burn 0.22.1 on {on}"),
        }
    }
}

/// The device side of a card: empty until `quantize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The int8 scheme (after `quantize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
    /// The compiled files, per part (after `quantize` or `compile`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_file: BTreeMap<String, CompiledPart>,
    /// The calibrated guard (after `calibrate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardCard>,
}

/// One epoch of a run: its number and the family's two figures (losses, bits/dim).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Epoch, from 1.
    pub epoch: usize,
    /// The figures by name (`train_bpd`, `val_bpd`, `d_loss`, …).
    #[serde(flatten)]
    pub figures: BTreeMap<String, f64>,
}

/// The family-specific part of a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum FamilyCard {
    /// VAE.
    Vae(VaeCard),
    /// PixelCNN.
    Pixelcnn(PixelCnnCard),
    /// DCGAN.
    Gan(GanCard),
    /// Classifier.
    Classifier(ClassifierCard),
    /// Normalizing flow (RealNVP).
    Flow(FlowCard),
}

/// A normalizing flow's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowCard {
    /// Couplings and widths.
    pub architecture: Value,
    /// Test bits/dim (uniform dequantization bound).
    pub test_bpd: f64,
    /// MNIST bits/dim (Fashion-MNIST models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnist_bpd: Option<f64>,
    /// Test images the test figure was measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_images: Option<usize>,
    /// MNIST digits the MNIST figure was measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnist_images: Option<usize>,
    /// How the figures were measured.
    pub eval_note: String,
    /// The int8 flow file and its figures (after `quantize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8: Option<FlowInt8Card>,
}

/// A flow on the int8 engine (`quantize`): the flow file and bits/dim against f32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowInt8Card {
    /// The flow file.
    pub file: String,
    /// Its bytes.
    pub bytes: u64,
    /// Coupling networks in it.
    pub couplings: usize,
    /// Arena bytes (the largest coupling's; they run one after another).
    pub arena_bytes: u64,
    /// f32 scratch bytes of the coupling arithmetic.
    pub scratch_bytes: u64,
    /// Weight and constant bytes of the networks.
    pub weights_bytes: u64,
    /// Test images the figures are over.
    pub test_images: usize,
    /// Bits/dim at the bin centre, f32 (tract on density.onnx).
    pub test_bpd_centre_f32: f64,
    /// Bits/dim at the bin centre, the int8 flow.
    pub test_bpd_centre_int8: f64,
    /// The same without the bias correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_bpd_centre_int8_without_bias_correction: Option<f64>,
    /// Bits/dim at the bin centre of the int8 flow on the validation split: the figure a
    /// range method is chosen by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_bpd_centre_int8: Option<f64>,
    /// What runs in which precision.
    pub precision: String,
    /// The calibration record.
    pub calibration: String,
}

/// A classifier's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierCard {
    /// Class names, by index.
    pub classes: Vec<String>,
    /// Units of the dense feature layer.
    pub features: usize,
    /// Accuracy of the float model on the test images.
    pub test_accuracy: f64,
    /// Test images the accuracies were measured on.
    pub test_images: usize,
    /// Accuracy of the int8 engine on the same images (after `quantize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy_int8: Option<f64>,
}

/// A VAE's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeCard {
    /// Encoder parameters.
    pub params_encoder: u64,
    /// Decoder parameters.
    pub params_decoder: u64,
    /// Encoder MACs.
    pub macs_encoder: u64,
    /// Decoder MACs.
    pub macs_decoder: u64,
    /// Latent dimensions.
    pub latent_dim: usize,
    /// The pixel distribution p(x|z).
    pub pixel_distribution: PixelDistribution,
    /// Test ELBO, bits/dim.
    pub test_elbo_bpd: f64,
    /// Test importance-weighted bound, bits/dim.
    pub test_iwae_bpd: f64,
    /// MNIST ELBO, bits/dim (Fashion-MNIST models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnist_elbo_bpd: Option<f64>,
    /// MNIST importance-weighted bound, bits/dim (Fashion-MNIST models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnist_iwae_bpd: Option<f64>,
    /// Importance samples of the reported bound.
    pub iwae_k: usize,
    /// Test images the test figures were measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_images: Option<usize>,
    /// MNIST digits the MNIST figures were measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnist_images: Option<usize>,
    /// How the figures were measured.
    pub eval_note: String,
    /// Test ELBO on the int8 engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_elbo_bpd_int8: Option<f64>,
    /// Test importance-weighted bound on the int8 engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_iwae_bpd_int8: Option<f64>,
    /// Importance samples of the int8 bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8_iwae_k: Option<usize>,
}

/// A PixelCNN's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PixelCnnCard {
    /// Widths and layers.
    pub architecture: Value,
    /// The pixel distribution p(x_i | x_<i).
    pub pixel_distribution: PixelDistribution,
    /// Test bits/dim (exact).
    pub test_bpd: f64,
    /// MNIST bits/dim (Fashion-MNIST models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnist_bpd: Option<f64>,
    /// Test images the test figure was measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_images: Option<usize>,
    /// MNIST digits the MNIST figure was measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnist_images: Option<usize>,
    /// How the figures were measured.
    pub eval_note: String,
    /// Test bits/dim on the int8 engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_bpd_int8: Option<f64>,
    /// Validation bits/dim on the int8 engine: what a range method is chosen by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_bpd_int8: Option<f64>,
}

/// A DCGAN's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanCard {
    /// Noise dimensions.
    pub latent_dim: usize,
    /// Discriminator parameters (not shipped).
    pub params_discriminator: u64,
    /// What `params` counts.
    pub params_note: String,
    /// Fréchet distance of the published generator (Fashion-MNIST models: FD needs its classifier's features).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<f64>,
    /// The test set's own FD against training images (Fashion-MNIST models: FD needs its classifier's features).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_floor: Option<f64>,
    /// `fd / fd_floor` (Fashion-MNIST models: FD needs its classifier's features).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_ratio: Option<f64>,
    /// The VAE's samples' FD (Fashion-MNIST models: FD needs its classifier's features).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae_fd: Option<f64>,
    /// Generated samples (and training images of the floor) FD was measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_samples: Option<usize>,
    /// How FD was measured.
    pub fd_note: String,
    /// The last iterate's FD, when the average ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_last_iterate: Option<f64>,
    /// Which weights ship.
    pub generator_weights: String,
    /// FD of the int8 engine's samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_int8: Option<f64>,
    /// A conditional generator's class names, by index (absent: unconditional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Share of samples drawn for a class that the FD classifier puts in that class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_agreement: Option<f64>,
    /// The same share for the int8 engine's samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_agreement_int8: Option<f64>,
    /// FD of each class's samples against that class's test images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_per_class: Option<Vec<f64>>,
    /// FD of each class's training images against its test images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_floor_per_class: Option<Vec<f64>>,
}

/// A discretized logistic mixture per pixel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PixelDistribution {
    /// `discretized_logistic_mixture`.
    pub kind: String,
    /// Mixture components.
    pub components: usize,
    /// Where each parameter sits in the output.
    pub layout: String,
    /// The network's pixel scale.
    pub pixel_scale: String,
}

/// The int8 scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// Weights, activations, biases, requantization.
    pub scheme: String,
    /// Which edges stay f32.
    pub edges_in_f32: String,
    /// The calibration record.
    pub calibration: String,
}

/// One compiled part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledPart {
    /// The `.egm` file.
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// The planned arena.
    pub arena_bytes: u64,
    /// The sum of all activations (what the plan saves against).
    pub activations_sum_bytes: u64,
    /// Weights, biases and requantization constants.
    pub weights_bytes: u64,
    /// Ops.
    pub ops: u64,
    /// The f32 ONNX file's size.
    pub f32_onnx_bytes: u64,
    /// The QDQ ONNX file.
    pub int8_onnx: String,
    /// Its size.
    pub int8_onnx_bytes: u64,
    /// The int8 golden vectors.
    pub golden: String,
}

/// The calibrated guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardCard {
    /// Score kind (`guard::ScoreKind::name`).
    pub score: String,
    /// The combined score's normalization constants.
    pub params: Option<CombinedParams>,
    /// The background model's directory name, for scores that need it.
    pub background_model: Option<String>,
    /// The structural score's VAE: its directory name beside this one, whose encoder's
    /// posterior the guard block's mixture was fitted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae_model: Option<String>,
    /// The structural score's latent density.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent: Option<LatentCard>,
    /// The evidence score's terms: name, median and spread on the validation split (the
    /// peak level's spread is the 99th percentile of its distance to the median).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<Vec<(String, f64, f64)>>,
    /// The engine that scored the calibration images.
    pub engine: String,
    /// The threshold.
    pub threshold: f64,
    /// The false-reject rate it was calibrated for.
    pub false_reject_target: f64,
    /// The images it was calibrated on.
    pub calibrated_on: String,
    /// The false-reject rate it gives on the test set.
    pub test_false_reject: f64,
    /// Where the device reads it.
    pub stored_in: String,
    /// The command that calibrated it.
    pub command: String,
}

/// The structural score's latent density (stored in the model file's guard block).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentCard {
    /// Mixture components.
    pub components: usize,
    /// Latent dimensions.
    pub latent: usize,
    /// Median of the latent score on the validation split.
    pub median: f64,
    /// Its 99th percentile minus the median.
    pub spread: f64,
    /// How it was fitted.
    pub fitted: String,
}

/// The combined score's constants (median and spread of each part on the validation split).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CombinedParams {
    /// Median of the complexity-corrected bits.
    pub cc_median: f64,
    /// Its 99th percentile minus the median.
    pub cc_spread: f64,
    /// Median of the line ratio.
    pub line_median: f64,
    /// Its 99th percentile minus the median.
    pub line_spread: f64,
}

impl Card {
    /// Reads `dir/card.json`.
    pub fn read(dir: &Path) -> Result<Card> {
        let path = dir.join("card.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {} (is {} a model directory?)", path.display(), dir.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a model card", path.display()))
    }

    /// Writes `dir/card.json` atomically, keys sorted.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let sorted = serde_json::to_value(self)?;
        crate::data::write_atomic(&dir.join("card.json"), serde_json::to_string_pretty(&sorted)?.as_bytes())
    }

    /// The family.
    pub fn model_family(&self) -> ModelFamily {
        match self.family {
            FamilyCard::Vae(_) => ModelFamily::Vae,
            FamilyCard::Pixelcnn(_) => ModelFamily::Pixelcnn,
            FamilyCard::Gan(_) => ModelFamily::Gan,
            FamilyCard::Classifier(_) => ModelFamily::Classifier,
            FamilyCard::Flow(_) => ModelFamily::Flow,
        }
    }

    /// Mixture components of the pixel distribution (0 for the GAN).
    pub fn components(&self) -> usize {
        match &self.family {
            FamilyCard::Vae(v) => v.pixel_distribution.components,
            FamilyCard::Pixelcnn(p) => p.pixel_distribution.components,
            FamilyCard::Gan(_) | FamilyCard::Classifier(_) | FamilyCard::Flow(_) => 0,
        }
    }

    /// Latent dimensions (0 for the PixelCNN).
    pub fn latent(&self) -> usize {
        match &self.family {
            FamilyCard::Vae(v) => v.latent_dim,
            FamilyCard::Gan(g) => g.latent_dim,
            FamilyCard::Pixelcnn(_) | FamilyCard::Classifier(_) | FamilyCard::Flow(_) => 0,
        }
    }
}

/// The per-epoch history of a run as card rows: `epoch`, then the run's two figures under
/// `train_key` and `val_key`.
pub fn history(state: &crate::families::checkpoint::TrainState, train_key: &str, val_key: &str) -> Vec<HistoryRow> {
    state
        .history
        .iter()
        .map(|&(epoch, t, v)| HistoryRow { epoch, figures: BTreeMap::from([(train_key.to_string(), r4(t)), (val_key.to_string(), r4(v))]) })
        .collect()
}

/// A card's name: its directory's name (`fallback` for a path without one).
pub fn card_name(dir: &Path, fallback: &str) -> String {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string());
    match name(dir) {
        // `runs/<name>/model`, the default output of a run: the run's name.
        Some(n) if n == "model" => dir.parent().and_then(name).unwrap_or(n),
        Some(n) => n,
        None => fallback.to_string(),
    }
}

/// `{"path": name, "bytes": size}` for a file in `dir`.
pub fn file_entry(dir: &Path, name: &str) -> Value {
    serde_json::json!({"path": name, "bytes": std::fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0)})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bundled card reads into the typed card and writes back to the same JSON.
    #[test]
    fn bundled_cards_round_trip_through_the_typed_card() {
        let models = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
            .join("../models");
        let mut seen = 0;
        for entry in std::fs::read_dir(&models).unwrap() {
            let dir = entry.unwrap().path();
            let Ok(text) = std::fs::read_to_string(dir.join("card.json")) else { continue };
            let original: Value = serde_json::from_str(&text).unwrap();
            let card = Card::read(&dir).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
            assert_eq!(serde_json::to_value(&card).unwrap(), original, "{}", dir.display());
            assert_eq!(card.model_family().name(), original["family"].as_str().unwrap());
            seen += 1;
        }
        assert!(seen >= 4, "bundled cards: {seen}");
    }
}
