//! Evaluation: scoring frames and calibrating the guard ([`score`]), outlier-rejection
//! figures ([`ood`]), Fréchet distances ([`fd`]) and engine speed ([`bench`]).

pub mod bayes;
pub mod bench;
pub mod classify;
pub mod defects;
pub mod fd;
pub mod features;
pub mod gmm;
pub mod ood;
pub mod plot;
pub mod score;
