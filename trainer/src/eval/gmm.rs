//! A Gaussian mixture fitted by expectation-maximization: the structural guard's density
//! over a VAE encoder's posterior means (`edgegen calibrate --vae`), written as the model
//! file's guard block ([`edgegen_runtime::guard::GuardBlock`]).

use anyhow::{ensure, Result};
use edgegen_runtime::rng::Rng;

/// One fitted component: log weight, mean, and the lower-triangular `L = C⁻¹` of its
/// covariance's Cholesky factor `C` (so the precision is `Lᵀ·L`), row by row.
#[derive(Debug, Clone)]
pub struct Component {
    /// log of the mixing weight.
    pub log_weight: f64,
    /// Mean.
    pub mean: Vec<f64>,
    /// `C⁻¹`, lower triangle row by row.
    pub l: Vec<f64>,
}

impl Component {
    /// `log w + log det L − d/2 · log 2π`: the constant of its log density.
    pub fn constant(&self) -> f64 {
        let d = self.mean.len();
        let logdet: f64 = (0..d).map(|i| self.l[i * (i + 1) / 2 + i].ln()).sum();
        self.log_weight + logdet - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln()
    }

    /// Log density of `x` (weight included).
    pub fn log_density(&self, x: &[f64]) -> f64 {
        let d = self.mean.len();
        let mut q = 0.0;
        for i in 0..d {
            let row = &self.l[i * (i + 1) / 2..][..i + 1];
            let y: f64 = row.iter().enumerate().map(|(j, lij)| lij * (x[j] - self.mean[j])).sum();
            q += y * y;
        }
        self.constant() - 0.5 * q
    }
}

/// Lower Cholesky factor of a symmetric positive-definite `d`×`d` matrix (row-major), or
/// `None` when it is not positive definite.
fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut c = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = a[i * d + j] - (0..j).map(|k| c[i * d + k] * c[j * d + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                c[i * d + i] = s.sqrt();
            } else {
                c[i * d + j] = s / c[j * d + j];
            }
        }
    }
    Some(c)
}

/// Inverse of a lower-triangular `d`×`d` matrix (row-major), packed as its lower triangle.
fn lower_inverse_packed(c: &[f64], d: usize) -> Vec<f64> {
    let mut inv = vec![0.0; d * d];
    for i in 0..d {
        inv[i * d + i] = 1.0 / c[i * d + i];
        for j in 0..i {
            let s: f64 = (j..i).map(|k| c[i * d + k] * inv[k * d + j]).sum();
            inv[i * d + j] = -s / c[i * d + i];
        }
    }
    (0..d).flat_map(|i| (0..=i).map(move |j| (i, j))).map(|(i, j)| inv[i * d + j]).collect()
}

/// A component from its weight, mean and covariance (`reg` added to the diagonal).
pub fn component(weight: f64, mean: Vec<f64>, mut cov: Vec<f64>, reg: f64) -> Result<Component> {
    let d = mean.len();
    for i in 0..d {
        cov[i * d + i] += reg;
    }
    let c = cholesky(&cov, d).ok_or_else(|| anyhow::anyhow!("a mixture component's covariance is not positive definite"))?;
    Ok(Component { log_weight: weight.max(1e-12).ln(), mean, l: lower_inverse_packed(&c, d) })
}

/// Log density of `x` under the mixture.
pub fn log_density(components: &[Component], x: &[f64]) -> f64 {
    let logs: Vec<f64> = components.iter().map(|c| c.log_density(x)).collect();
    let m = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + logs.iter().map(|l| (l - m).exp()).sum::<f64>().ln()
}

/// Fits `k` full-covariance components to the rows of `x` (`n` rows of `d` values) by EM:
/// means started at `k` rows chosen k-means++-style from `seed`, at most `iterations`
/// rounds (stopping when the mean log-likelihood gains less than 1e-6), `reg` on every
/// covariance's diagonal.
pub fn fit(x: &[Vec<f64>], k: usize, iterations: usize, reg: f64, seed: u64) -> Result<Vec<Component>> {
    let n = x.len();
    ensure!(n >= 10 * k.max(1), "{n} frames are too few to fit {k} mixture components");
    let d = x[0].len();
    ensure!(
        d > 0 && x.iter().all(|r| r.len() == d && r.iter().all(|v| v.is_finite())),
        "the statistics must be finite rows of equal length"
    );
    let dist2 = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>();
    // k-means++ starts.
    let mut rng = Rng::new(seed);
    let mut means: Vec<Vec<f64>> = vec![x[rng.below(n as u32) as usize].clone()];
    while means.len() < k {
        let w: Vec<f64> = x.iter().map(|r| means.iter().map(|m| dist2(r, m)).fold(f64::INFINITY, f64::min)).collect();
        let total: f64 = w.iter().sum();
        let mut t = rng.uniform() as f64 * total;
        let mut pick = n - 1;
        for (i, wi) in w.iter().enumerate() {
            if t < *wi {
                pick = i;
                break;
            }
            t -= wi;
        }
        means.push(x[pick].clone());
    }
    // The data's covariance starts every component.
    let mean_all: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
    let mut cov_all = vec![0.0; d * d];
    for r in x {
        for i in 0..d {
            for j in 0..d {
                cov_all[i * d + j] += (r[i] - mean_all[i]) * (r[j] - mean_all[j]) / n as f64;
            }
        }
    }
    let mut comps: Vec<Component> = means.into_iter().map(|m| component(1.0 / k as f64, m, cov_all.clone(), reg)).collect::<Result<_>>()?;
    let mut last = f64::NEG_INFINITY;
    let mut resp = vec![vec![0.0; k]; n];
    for _ in 0..iterations {
        // E step.
        let mut ll = 0.0;
        for (r, row) in x.iter().zip(&mut resp) {
            let logs: Vec<f64> = comps.iter().map(|c| c.log_density(r)).collect();
            let m = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = logs.iter().map(|l| (l - m).exp()).sum();
            ll += m + s.ln();
            for (p, l) in row.iter_mut().zip(&logs) {
                *p = (l - m).exp() / s;
            }
        }
        ll /= n as f64;
        // M step.
        let mut next = Vec::with_capacity(k);
        for c in 0..k {
            let nk: f64 = resp.iter().map(|r| r[c]).sum::<f64>().max(1e-9);
            let mean: Vec<f64> = (0..d).map(|j| x.iter().zip(&resp).map(|(r, p)| p[c] * r[j]).sum::<f64>() / nk).collect();
            let mut cov = vec![0.0; d * d];
            for (r, p) in x.iter().zip(&resp) {
                let w = p[c] / nk;
                if w == 0.0 {
                    continue;
                }
                for i in 0..d {
                    let di = r[i] - mean[i];
                    for j in 0..=i {
                        cov[i * d + j] += w * di * (r[j] - mean[j]);
                    }
                }
            }
            for i in 0..d {
                for j in 0..i {
                    cov[j * d + i] = cov[i * d + j];
                }
            }
            next.push(component(nk / n as f64, mean, cov, reg)?);
        }
        comps = next;
        if ll - last < 1e-6 {
            break;
        }
        last = ll;
    }
    Ok(comps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two well-separated clusters: EM finds both, and the density is higher at their
    /// centres than between them and far away; the packed inverse is a true inverse.
    #[test]
    fn em_finds_two_clusters() {
        let mut rng = Rng::new(5);
        let x: Vec<Vec<f64>> = (0..2000)
            .map(|i| {
                let c = if i % 2 == 0 { -4.0 } else { 4.0 };
                vec![c + rng.normal() as f64, 0.5 * rng.normal() as f64]
            })
            .collect();
        let comps = fit(&x, 2, 200, 1e-6, 1).unwrap();
        let mut centres: Vec<f64> = comps.iter().map(|c| c.mean[0]).collect();
        centres.sort_by(f64::total_cmp);
        assert!((centres[0] + 4.0).abs() < 0.2 && (centres[1] - 4.0).abs() < 0.2, "{centres:?}");
        for c in &comps {
            assert!((c.log_weight.exp() - 0.5).abs() < 0.05);
            // Variances 1 and 0.25: L = diag(1, 2) nearly.
            assert!((c.l[0] - 1.0).abs() < 0.1 && (c.l[2] - 2.0).abs() < 0.2, "{:?}", c.l);
        }
        let at = |p: [f64; 2]| log_density(&comps, &p);
        assert!(at([4.0, 0.0]) > at([0.0, 0.0]) + 3.0);
        assert!(at([0.0, 0.0]) > at([0.0, 5.0]));
        // The packed inverse of a Cholesky factor.
        let a = [4.0, 2.0, 2.0, 3.0];
        let c = cholesky(&a, 2).unwrap();
        let l = lower_inverse_packed(&c, 2);
        // Lᵀ L = A⁻¹ = [3, −2; −2, 4] / 8.
        let (l00, l10, l11) = (l[0], l[1], l[2]);
        assert!((l00 * l00 + l10 * l10 - 3.0 / 8.0).abs() < 1e-12);
        assert!((l10 * l11 + 2.0 / 8.0).abs() < 1e-12);
        assert!((l11 * l11 - 4.0 / 8.0).abs() < 1e-12);
        assert!(fit(&x[..5], 2, 10, 1e-6, 1).is_err(), "too few frames");
    }
}
