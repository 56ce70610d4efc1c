//! The pictures of `edgegen eval ood`, drawn with plotters into an RGB buffer: ROC curves
//! (one panel per outlier set, a curve per score, AUROC in the legend), histograms of the
//! guard's score (in-distribution against each outlier set, the threshold marked), and
//! example frames per set with the guard's verdict.
//!
//! Text needs a TrueType font: Debian's `fonts-dejavu-core`
//! (`/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf`, installed by `scripts/test.sh`), or
//! any `.ttf` named by `EDGEGEN_FONT`.

use anyhow::{anyhow, bail, Context, Result};
use edgegen_runtime::image::Geometry;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the font is looked for, in order (after `EDGEGEN_FONT`).
const FONT_PATHS: [&str; 3] =
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"];

/// Registers the font with plotters once; the error says how to get one.
fn font() -> Result<()> {
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let candidates: Vec<PathBuf> =
                std::env::var_os("EDGEGEN_FONT").map(PathBuf::from).into_iter().chain(FONT_PATHS.iter().map(PathBuf::from)).collect();
            let Some(path) = candidates.iter().find(|p| p.is_file()) else {
                return Err(format!(
                    "plots need a TrueType font and none was found (looked for {}): install Debian's fonts-dejavu-core (`sudo apt-get install fonts-dejavu-core`) or name a .ttf file in EDGEGEN_FONT",
                    FONT_PATHS[0]
                ));
            };
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read the font {}: {e}", path.display()))?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a TrueType font plotters can read", path.display()))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Colours of the curves, in order (colour-blind-safe: Okabe and Ito).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 0, 0),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(204, 121, 167),
    RGBColor(240, 228, 66),
];

/// The colour of curve `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Writes an RGB buffer as a PNG, atomically.
fn save(path: &Path, w: u32, h: u32, rgb: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(w, h, rgb).context("plot buffer size")?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    crate::data::write_atomic(path, &out.into_inner())
}

/// A panel of a grid picture.
type Area<'b> = DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>;

/// A chart with both axes in f64.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

/// Draws `n` panels of `size` pixels on white, `cols` to a row, each by `draw(area, i)`, and
/// saves the picture as a PNG (`what` names the panels in the error for none).
fn panel_grid(
    path: &Path,
    what: &str,
    n: usize,
    cols: usize,
    size: (u32, u32),
    mut draw: impl FnMut(&Area, usize) -> Result<()>,
) -> Result<()> {
    if n == 0 {
        bail!("no {what} to draw");
    }
    font()?;
    let cols = cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let (w, h) = (size.0 * cols as u32, size.1 * rows as u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        for (i, area) in root.split_evenly((rows, cols)).iter().enumerate().take(n) {
            draw(area, i)?;
        }
        root.present().map_err(err)?;
    }
    save(path, w, h, buf)
}

/// The legend box of a chart, at `position`.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(120, 120, 120))
        .draw()
        .map_err(err)
}

/// The axes of a line chart (ROC panels, the accuracy–coverage curve): descriptions
/// `(x, y)`, label counts `(x, y)`, light and bold grid lines.
fn line_axes<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, desc: (&str, &str), labels: (usize, usize)) -> Result<()> {
    chart
        .configure_mesh()
        .x_desc(desc.0)
        .y_desc(desc.1)
        .x_labels(labels.0)
        .y_labels(labels.1)
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 13))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(err)
}

/// Draws `curves` in the palette's colours, each named in the legend.
fn draw_curves<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, curves: &[Curve]) -> Result<()> {
    for (i, curve) in curves.iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(curve.points.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(&curve.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    Ok(())
}

/// One curve of a ROC panel.
pub struct Curve {
    /// The legend's text (the score's name and its AUROC).
    pub label: String,
    /// (false-positive rate, true-positive rate) points from (0, 0) to (1, 1).
    pub points: Vec<(f64, f64)>,
}

/// One ROC panel: an outlier set and a curve per score.
pub struct RocPanel {
    /// The panel's title.
    pub title: String,
    /// The curves.
    pub curves: Vec<Curve>,
}

/// Draws ROC panels in a grid of `cols` columns: x the fraction of in-distribution frames
/// rejected, y the fraction of outliers rejected, the chance diagonal dotted, a legend per
/// panel.
pub fn roc_panels(path: &Path, panels: &[RocPanel], cols: usize) -> Result<()> {
    panel_grid(path, "ROC panel", panels.len(), cols, (420, 400), |area, i| {
        let panel = &panels[i];
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(err)?;
        line_axes(&mut chart, ("in-distribution frames rejected", "outliers rejected"), (6, 6))?;
        let dotted = (0..=40).map(|i| i as f64 / 40.0).collect::<Vec<_>>();
        chart
            .draw_series(
                dotted.chunks(2).map(|c| PathElement::new(vec![(c[0], c[0]), (c[c.len() - 1], c[c.len() - 1])], RGBColor(150, 150, 150))),
            )
            .map_err(err)?;
        draw_curves(&mut chart, &panel.curves)?;
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// One histogram panel: the guard's score on in-distribution frames and on one outlier set.
pub struct HistogramPanel {
    /// The panel's title (the outlier set).
    pub title: String,
    /// Scores of the in-distribution frames.
    pub inliers: Vec<f64>,
    /// Scores of the outliers.
    pub outliers: Vec<f64>,
    /// The guard's threshold (frames above it are rejected).
    pub threshold: f64,
}

/// Draws score histograms in a grid of `cols` columns: in-distribution frames in blue,
/// outliers in orange (each as a fraction of its set), the threshold as a red line; scores
/// beyond the axis are counted in the outermost bins.
pub fn histograms(path: &Path, score: &str, panels: &[HistogramPanel], cols: usize) -> Result<()> {
    if panels.is_empty() {
        bail!("no histogram to draw");
    }
    // One x range for every panel: the inliers' spread and the threshold, widened to show
    // most outliers (clipped at both ends so one extreme frame does not squash the rest).
    let mut all: Vec<f64> = panels.iter().flat_map(|p| p.inliers.iter().chain(&p.outliers)).copied().filter(|v| v.is_finite()).collect();
    all.sort_by(f64::total_cmp);
    if all.is_empty() {
        bail!("no finite score to draw");
    }
    let q = |f: f64| all[((all.len() - 1) as f64 * f) as usize];
    let (mut lo, mut hi) = (q(0.01), q(0.99));
    lo = lo.min(panels[0].threshold);
    hi = hi.max(panels[0].threshold);
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let bins = 40usize;
    let width = (hi - lo) / bins as f64;
    let histogram = |v: &[f64]| -> Vec<f64> {
        let mut counts = vec![0f64; bins];
        for &x in v {
            let b = (((x - lo) / width).floor().max(0.0) as usize).min(bins - 1);
            counts[b] += 1.0;
        }
        counts.iter().map(|c| c / v.len().max(1) as f64).collect()
    };
    panel_grid(path, "histogram", panels.len(), cols, (420, 300), |area, i| {
        let panel = &panels[i];
        let (a, b) = (histogram(&panel.inliers), histogram(&panel.outliers));
        let top = a.iter().chain(&b).fold(0f64, |m, &v| m.max(v)) * 1.1 + 1e-9;
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(38)
            .y_label_area_size(50)
            .build_cartesian_2d(lo..hi, 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(score)
            .y_desc("fraction of frames")
            .x_labels(6)
            .y_labels(5)
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(err)?;
        for (counts, c, label) in [(&a, RGBColor(0, 114, 178), "in distribution"), (&b, RGBColor(230, 159, 0), "outliers")] {
            chart
                .draw_series(counts.iter().enumerate().map(|(i, &v)| {
                    let x0 = lo + i as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, v)], c.mix(0.55).filled())
                }))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.mix(0.55).filled()));
        }
        let t = panel.threshold;
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(t, 0.0), (t, top)], RED.stroke_width(2))))
            .map_err(err)?
            .label(format!("threshold {t:.2}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], RED.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// One row of the examples picture: a set's name and frames with the guard's verdicts.
pub struct ExampleRow {
    /// The set's name and what the guard did with it.
    pub title: String,
    /// Planar frames.
    pub frames: Vec<Vec<u8>>,
    /// Per frame: whether the guard accepted it.
    pub accepted: Vec<bool>,
}

/// Draws example frames, a row per set, each frame framed green (accepted) or red with a
/// cross (rejected), with a legend on top.
pub fn examples(path: &Path, g: Geometry, rows: &[ExampleRow]) -> Result<()> {
    font()?;
    let (fh, fw, plane) = (g.height as usize, g.width as usize, g.plane());
    let scale = (56 / fh.max(fw)).max(1);
    let per_row = rows.iter().map(|r| r.frames.len()).max().unwrap_or(0).max(1);
    let (cell_w, cell_h) = (fw * scale + 10, fh * scale + 10);
    let (left, top, row_h) = (210usize, 34usize, cell_h + 6);
    let (w, h) = ((left + per_row * cell_w + 10) as u32, (top + rows.len() * row_h + 6) as u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let style = ("sans-serif", 14).into_font().color(&BLACK);
        root.draw_text("frame: green border = accepted by the guard, red with a cross = rejected", &style, (8, 10)).map_err(err)?;
        for (r, row) in rows.iter().enumerate() {
            let y0 = (top + r * row_h) as i32;
            root.draw_text(&row.title, &("sans-serif", 13).into_font().color(&BLACK), (8, y0 + cell_h as i32 / 2 - 7)).map_err(err)?;
            for (i, (frame, &ok)) in row.frames.iter().zip(&row.accepted).enumerate() {
                let x0 = (left + i * cell_w) as i32;
                let c = if ok { RGBColor(0, 158, 115) } else { RGBColor(213, 0, 0) };
                root.draw(&Rectangle::new([(x0, y0), (x0 + cell_w as i32 - 4, y0 + cell_h as i32 - 4)], c.filled())).map_err(err)?;
                for y in 0..fh * scale {
                    for x in 0..fw * scale {
                        let p = (y / scale) * fw + x / scale;
                        let px = match g.channels {
                            3 => RGBColor(frame[p], frame[plane + p], frame[2 * plane + p]),
                            _ => RGBColor(frame[p], frame[p], frame[p]),
                        };
                        root.draw_pixel((x0 + 3 + x as i32, y0 + 3 + y as i32), &px).map_err(err)?;
                    }
                }
                if !ok {
                    let (x1, y1) = (x0 + cell_w as i32 - 4, y0 + cell_h as i32 - 4);
                    root.draw(&PathElement::new(vec![(x0, y0), (x1, y1)], c.stroke_width(2))).map_err(err)?;
                    root.draw(&PathElement::new(vec![(x1, y0), (x0, y1)], c.stroke_width(2))).map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    save(path, w, h, buf)
}

/// Draws the accuracy–coverage picture of selective classification: x the fraction of
/// in-distribution frames the guard accepts (coverage), y the classifier's accuracy on them,
/// one curve per ordering of the frames (`curves`: the guard's score, the classifier's
/// confidence, …), the operating point of the calibrated threshold marked.
pub fn accuracy_coverage(path: &Path, title: &str, curves: &[Curve], point: (f64, f64), point_label: &str) -> Result<()> {
    panel_grid(path, "accuracy-coverage curve", 1, 1, (640, 480), |area, _| {
        let lo = curves.iter().flat_map(|c| c.points.iter().map(|p| p.1)).fold(1f64, f64::min);
        let y0 = ((lo * 20.0).floor() / 20.0).clamp(0.0, 0.95);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..1f64, y0..1f64)
            .map_err(err)?;
        line_axes(&mut chart, ("coverage: in-distribution frames accepted", "accuracy on the accepted frames"), (11, 8))?;
        draw_curves(&mut chart, curves)?;
        let red = RGBColor(200, 30, 30);
        chart
            .draw_series(std::iter::once(Circle::new(point, 5, red.filled())))
            .map_err(err)?
            .label(point_label)
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, red.filled()));
        legend(&mut chart, SeriesLabelPosition::LowerLeft)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pictures are drawn (with axes, text and curves: not a blank canvas) where the
    /// machine has the font; without one, the error names the package.
    #[test]
    fn plots_draw_or_say_which_font_is_missing() {
        let dir = std::env::temp_dir().join(format!("edgegen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if let Err(e) = font() {
            assert!(e.to_string().contains("fonts-dejavu-core"), "{e}");
            return;
        }
        let panel = |t: &str| RocPanel {
            title: t.into(),
            curves: vec![
                Curve { label: "a (AUROC 0.50)".into(), points: vec![(0.0, 0.0), (1.0, 1.0)] },
                Curve { label: "b (AUROC 0.90)".into(), points: vec![(0.0, 0.0), (0.1, 0.8), (1.0, 1.0)] },
            ],
        };
        let roc = dir.join("roc.png");
        roc_panels(&roc, &[panel("one"), panel("two"), panel("three")], 2).unwrap();
        let img = image::open(&roc).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (840, 800));
        let distinct: std::collections::HashSet<_> = img.pixels().map(|p| p.0).collect();
        assert!(distinct.len() > 20, "curves, text and grid are drawn: {} colours", distinct.len());
        let hist = dir.join("hist.png");
        let h = HistogramPanel { title: "x".into(), inliers: vec![0.0, 0.1, 0.2], outliers: vec![1.0, 2.0, 9.0], threshold: 0.5 };
        histograms(&hist, "score", &[h], 3).unwrap();
        assert!(image::open(&hist).is_ok());
        let g = Geometry::new(3, 4, 4).unwrap();
        let row = ExampleRow { title: "set".into(), frames: vec![vec![200; 48], vec![10; 48]], accepted: vec![true, false] };
        examples(&dir.join("ex.png"), g, &[row]).unwrap();
        std::fs::remove_dir_all(dir).ok();
    }
}
