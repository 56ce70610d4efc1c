//! `edgegen train <family>`: the arguments of each family live with the family (they are the
//! run's saved config); this picks one.

use anyhow::Result;
use edgegen_trainer::families::{classifier, flow, gan, pixelcnn, vae};

/// Which family to train.
#[derive(clap::Subcommand, Debug)]
pub enum Family {
    /// Variational autoencoder (encoder.onnx + decoder.onnx).
    Vae(Box<vae::run::VaeArgs>),
    /// PixelCNN with exact log-likelihood (model.onnx).
    Pixelcnn(Box<pixelcnn::run::PixelCnnArgs>),
    /// DCGAN (generator.onnx + discriminator.onnx), measured by Frechet distance.
    Gan(Box<gan::run::GanArgs>),
    /// Classifier p(y|x) for the device (classifier.onnx): `edgegen classify` answers only
    /// for frames the guard accepts.
    Classifier(Box<classifier::run::ClassifierArgs>),
    /// Normalizing flow (RealNVP: density.onnx + sampler.onnx): exact log p(x) and one-pass
    /// sampling; runs through tract (f32).
    Flow(Box<flow::run::FlowArgs>),
}

/// Runs `edgegen train`.
pub fn run(family: Family) -> Result<()> {
    match family {
        Family::Vae(a) => vae::run::run(*a),
        Family::Pixelcnn(a) => pixelcnn::run::run(*a),
        Family::Gan(a) => gan::run::run(*a),
        Family::Classifier(a) => classifier::run::run(*a),
        Family::Flow(a) => flow::run::run(*a),
    }
}
