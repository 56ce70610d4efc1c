//! Defects drawn on held-out frames of any geometry: the anomaly sets of a texture use case
//! (a slide, a surface under inspection), as an inspection camera sees them. Each kind is a
//! deterministic function of the frame and a seeded generator; sizes scale with the frame.
//!
//! | kind | what is drawn |
//! |---|---|
//! | `scratch` | a straight line 1–2 pixels wide across the frame, lighter or darker than its surroundings |
//! | `crack` | a dark random-walk polyline from one edge, 1 pixel wide |
//! | `stain` | a soft-edged disc (a fifth to a third of the side) tinted towards a colour and darkened |
//! | `hole` | a hard-edged disc (a sixth to a quarter of the side) of near-black or near-white |
//! | `colour-cast` | a gain and offset per channel (white balance off; in gray, a brightness shift) |
//! | `blur` | defocus: three passes of a 3×3 box filter |
//! | `under-exposed` | every value scaled by 0.45 |
//! | `over-exposed` | every value scaled by 1.7, clipped |

use edgegen_runtime::image::Geometry;
use edgegen_runtime::rng::Rng;

/// The defect kinds, in report order.
pub const DEFECTS: [&str; 8] = ["scratch", "crack", "stain", "hole", "colour-cast", "blur", "under-exposed", "over-exposed"];

fn clamp(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Blends value `v` of every channel at pixel `p` towards `target[c]` by `alpha`.
fn blend(out: &mut [u8], g: Geometry, p: usize, target: &[f32; 3], alpha: f32) {
    for c in 0..g.channels as usize {
        let i = c * g.plane() + p;
        out[i] = clamp(out[i] as f32 * (1.0 - alpha) + target[c.min(2)] * alpha);
    }
}

/// Draws defect `kind` on a planar frame of geometry `g`.
pub fn draw(kind: &str, img: &[u8], g: Geometry, rng: &mut Rng) -> Vec<u8> {
    let mut out = img.to_vec();
    let (h, w, plane) = (g.height as usize, g.width as usize, g.plane());
    let side = h.min(w) as f32;
    let mean = img.iter().map(|&v| v as f32).sum::<f32>() / img.len().max(1) as f32;
    match kind {
        "scratch" => {
            // A line through a random point at a random angle.
            let (cy, cx) = (rng.uniform() * h as f32, rng.uniform() * w as f32);
            let angle = rng.uniform() * core::f32::consts::PI;
            let (dy, dx) = (angle.sin(), angle.cos());
            let width = 0.6 + rng.uniform();
            let light = rng.uniform() < 0.5;
            let target = if light { [245.0; 3] } else { [20.0; 3] };
            for y in 0..h {
                for x in 0..w {
                    let d = ((y as f32 + 0.5 - cy) * dx - (x as f32 + 0.5 - cx) * dy).abs();
                    if d < width {
                        blend(&mut out, g, y * w + x, &target, 0.85);
                    }
                }
            }
        }
        "crack" => {
            let (mut y, mut x) = (rng.uniform() * h as f32, 0.0f32);
            let mut angle = (rng.uniform() - 0.5) * 1.2;
            if rng.uniform() < 0.5 {
                (y, x) = (0.0, rng.uniform() * w as f32);
                angle += core::f32::consts::FRAC_PI_2;
            }
            for _ in 0..(3 * (h + w)) {
                let (py, px) = (y as isize, x as isize);
                if py < 0 || px < 0 || py >= h as isize || px >= w as isize {
                    break;
                }
                blend(&mut out, g, py as usize * w + px as usize, &[15.0, 10.0, 10.0], 0.9);
                angle += (rng.uniform() - 0.5) * 0.6;
                y += angle.sin() * 0.5;
                x += angle.cos() * 0.5;
            }
        }
        "stain" | "hole" => {
            let hole = kind == "hole";
            let r = side * if hole { 0.08 + 0.05 * rng.uniform() } else { 0.1 + 0.07 * rng.uniform() };
            let (cy, cx) = (r + rng.uniform() * (h as f32 - 2.0 * r), r + rng.uniform() * (w as f32 - 2.0 * r));
            let target = if hole {
                if rng.uniform() < 0.5 {
                    [8.0; 3]
                } else {
                    [250.0; 3]
                }
            } else {
                // A brownish-to-greenish stain, darker than the frame.
                let t = rng.uniform();
                [mean * 0.5 + 40.0 * t, mean * 0.45 + 30.0, mean * 0.3 + 10.0 * (1.0 - t)]
            };
            for y in 0..h {
                for x in 0..w {
                    let d = ((y as f32 + 0.5 - cy).powi(2) + (x as f32 + 0.5 - cx).powi(2)).sqrt();
                    let alpha = if hole {
                        if d <= r {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        (1.0 - (d - 0.6 * r) / (0.6 * r)).clamp(0.0, 1.0) * 0.8
                    };
                    if alpha > 0.0 {
                        blend(&mut out, g, y * w + x, &target, alpha);
                    }
                }
            }
        }
        "colour-cast" => {
            for c in 0..g.channels as usize {
                let (gain, offset) = if g.channels == 1 {
                    (1.0, if rng.uniform() < 0.5 { 45.0 } else { -45.0 })
                } else {
                    (0.75 + 0.5 * rng.uniform(), (rng.uniform() - 0.5) * 90.0)
                };
                for v in &mut out[c * plane..(c + 1) * plane] {
                    *v = clamp(*v as f32 * gain + offset);
                }
            }
        }
        "blur" => {
            for _ in 0..3 {
                let src = out.clone();
                for c in 0..g.channels as usize {
                    for y in 0..h {
                        for x in 0..w {
                            let (mut s, mut n) = (0u32, 0u32);
                            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                                    s += src[c * plane + yy * w + xx] as u32;
                                    n += 1;
                                }
                            }
                            out[c * plane + y * w + x] = ((s + n / 2) / n) as u8;
                        }
                    }
                }
            }
        }
        "under-exposed" => out.iter_mut().for_each(|v| *v = clamp(*v as f32 * 0.45)),
        "over-exposed" => out.iter_mut().for_each(|v| *v = clamp(*v as f32 * 1.7)),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind changes a textured frame, deterministically, and keeps its size; unknown
    /// kinds change nothing.
    #[test]
    fn every_defect_changes_the_frame_deterministically() {
        for g in [Geometry::new(3, 32, 32).unwrap(), Geometry::new(1, 24, 40).unwrap()] {
            let img: Vec<u8> = (0..g.values()).map(|i| (60 + (i * 37) % 120) as u8).collect();
            for (k, kind) in DEFECTS.iter().enumerate() {
                let a = draw(kind, &img, g, &mut Rng::with_stream(1, k as u64));
                let b = draw(kind, &img, g, &mut Rng::with_stream(1, k as u64));
                assert_eq!(a, b, "{kind}");
                assert_eq!(a.len(), img.len());
                let changed = a.iter().zip(&img).filter(|(x, y)| x != y).count();
                assert!(changed > 0, "{kind} on {g} changed nothing");
            }
            assert_eq!(draw("no-such-defect", &img, g, &mut Rng::new(1)), img);
        }
    }
}
