//! PNG plots: line plots, stacked panels sharing the x axis, and annotated heatmaps.
//!
//! Everything is drawn with [`plotters`] into an RGB buffer in memory, encoded as PNG and
//! written atomically (to `<path>.png.tmp`, then renamed), so a failed plot never leaves a
//! half-written file behind. Text uses DejaVu Sans, embedded in the binary
//! (`assets/DejaVuSans.ttf`, Bitstream Vera license, see `assets/README.md`) and rendered
//! with plotters' `ab_glyph` backend: no system font is needed.
//!
//! Long series are reduced before drawing to at most four points per pixel column (the
//! first, lowest, highest and last point of each column, in their original order), so a
//! series of a million points draws as fast as one of a few thousand and looks the same.
//! Non-finite points are skipped, and so are non-positive values on a logarithmic axis.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use localprop::error::{Error, Result};

/// The embedded font (DejaVu Sans 2.37, regular).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Default size of a [`LinePlot`], in pixels; the fonts are sized for it and scale with it.
pub const DEFAULT_SIZE: (u32, u32) = (1200, 800);

/// Smallest width or height of a plot, in pixels.
const MIN_SIDE: u32 = 200;

/// Largest width or height of a plot, in pixels.
const MAX_SIDE: u32 = 10_000;

/// Colour of the cells of a [`Heatmap`] that have no colour (non-finite values, or
/// non-positive ones on a logarithmic colour scale).
const NA_GREY: RGBColor = RGBColor(170, 170, 170);

/// The series colours: matplotlib's "tab20", strong colours first, then their light
/// variants; further series get hues spread by the golden ratio.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// Viridis, sampled at nine evenly spaced points (interpolated linearly in between).
const VIRIDIS: [(f64, f64, f64); 9] = [
    (68.0, 1.0, 84.0),
    (72.0, 40.0, 120.0),
    (62.0, 73.0, 137.0),
    (49.0, 104.0, 142.0),
    (38.0, 130.0, 142.0),
    (31.0, 158.0, 137.0),
    (53.0, 183.0, 121.0),
    (110.0, 206.0, 88.0),
    (253.0, 231.0, 37.0),
];

/// One curve of a [`LinePlot`]: `y` against `x`, point by point, joined by lines (and
/// marked with dots when it has at most 60 points to draw).
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    /// The name shown in the legend; series with an empty name get no legend entry.
    pub name: &'a str,
    /// The x coordinates (same length as `y`).
    pub x: &'a [f64],
    /// The y coordinates (same length as `x`).
    pub y: &'a [f64],
}

impl<'a> Series<'a> {
    /// A series named `name` (may be empty) of the points `(x[i], y[i])`.
    pub fn new(name: &'a str, x: &'a [f64], y: &'a [f64]) -> Self {
        Series { name, x, y }
    }
}

/// A line plot of one or more [`Series`], each in its own colour, with a legend when any
/// series has a name.
///
/// `LinePlot { title: "loss", series: vec![..], ..Default::default() }` gives linear axes
/// and the [`DEFAULT_SIZE`].
#[derive(Clone, Debug)]
pub struct LinePlot<'a> {
    /// The title above the plot (none when empty).
    pub title: &'a str,
    /// The x axis label (none when empty).
    pub x_label: &'a str,
    /// The y axis label (none when empty).
    pub y_label: &'a str,
    /// The curves; the first ten get clearly distinct strong colours, the next ten lighter
    /// variants of them.
    pub series: Vec<Series<'a>>,
    /// Logarithmic x axis (points with `x <= 0` are skipped).
    pub log_x: bool,
    /// Logarithmic y axis (points with `y <= 0` are skipped).
    pub log_y: bool,
    /// Width and height in pixels, each in `200..=10000`. In [`stacked_plots`] the height
    /// is the panel's own.
    pub size: (u32, u32),
}

impl Default for LinePlot<'_> {
    fn default() -> Self {
        LinePlot {
            title: "",
            x_label: "",
            y_label: "",
            series: Vec::new(),
            log_x: false,
            log_y: false,
            size: DEFAULT_SIZE,
        }
    }
}

/// A grid of values drawn as coloured cells, each annotated with its value.
///
/// Cell `(i, j)` holds `values[j * x_ticks.len() + i]`: column `i` is labelled
/// `x_ticks[i]` (left to right), row `j` is labelled `y_ticks[j]` (bottom to top, like a
/// y axis).
#[derive(Clone, Debug, Default)]
pub struct Heatmap<'a> {
    /// The title above the map (none when empty).
    pub title: &'a str,
    /// The x axis label (none when empty).
    pub x_label: &'a str,
    /// The y axis label (none when empty).
    pub y_label: &'a str,
    /// The label of each column, left to right.
    pub x_ticks: &'a [String],
    /// The label of each row, bottom to top.
    pub y_ticks: &'a [String],
    /// The values, row-major `[y][x]`: `y_ticks.len() * x_ticks.len()` of them.
    pub values: &'a [f64],
    /// The label of the colour bar (what the values are).
    pub value_label: &'a str,
    /// Logarithmic colour scale (non-positive values then get no colour).
    pub log_color: bool,
}

/// Draws `plot` and writes it to `path` as a PNG of `plot.size` pixels.
///
/// The file is replaced atomically: it is written to `path.with_extension("png.tmp")` and
/// renamed, so `path` never holds a half-written image.
///
/// # Errors
///
/// [`Error::Data`] (naming `path`) when the plot has no series, a series is empty or has
/// `x` and `y` of different lengths, no point at all can be drawn (every value non-finite,
/// or non-positive on a logarithmic axis), the size is outside `200..=10000` pixels per
/// side, or the drawing fails; [`Error::Io`] when the file cannot be written.
pub fn line_plot(path: &Path, plot: &LinePlot) -> Result<()> {
    let (w, h) = plot.size;
    let buf = render_line_plot(plot).map_err(|m| data_error(path, m))?;
    write_png(path, w, h, &buf)
}

/// Several panels stacked vertically sharing the x axis (e.g. output vs target; loss; L and H).
///
/// The image is as wide as the widest panel and as tall as the panels' heights together,
/// plus room for `title` (none when empty) and the shared x axis; panel heights of about
/// 300 to 400 pixels suit a 1200-pixel width. Each panel keeps its own title, y label and
/// `log_y`; the x axis covers the points of all panels and is labelled (with the bottom
/// panel's `x_label`) under the bottom panel only. The file is written atomically, as by
/// [`line_plot`].
///
/// # Errors
///
/// [`Error::Data`] (naming `path`) when there are no panels, the panels disagree on
/// `log_x`, a panel is invalid as for [`line_plot`], the total size is outside
/// `200..=10000` pixels per side, or the drawing fails; [`Error::Io`] when the file cannot
/// be written.
pub fn stacked_plots(path: &Path, title: &str, panels: &[LinePlot]) -> Result<()> {
    let (w, h, buf) = render_stacked(title, panels).map_err(|m| data_error(path, m))?;
    write_png(path, w, h, &buf)
}

/// Draws `map` and writes it to `path` as a PNG.
///
/// Cells are coloured on a viridis-like scale between the smallest and largest finite
/// value (on a log scale when `log_color`) shown by a colour bar labelled `value_label`;
/// each cell is annotated with its value to three significant digits. Non-finite values
/// are drawn grey and annotated "n/a"; on a logarithmic scale non-positive values are
/// drawn grey too but keep their number. The image is at least 1200 x 800 pixels, larger
/// when the cells and their labels need it (up to 10000 per side). The file is written
/// atomically, as by [`line_plot`].
///
/// # Errors
///
/// [`Error::Data`] (naming `path`) when there are no columns or no rows, when `values`
/// does not hold one value per cell, or when the drawing fails; [`Error::Io`] when the
/// file cannot be written.
pub fn heatmap(path: &Path, map: &Heatmap) -> Result<()> {
    let (w, h, buf) = render_heatmap(map).map_err(|m| data_error(path, m))?;
    write_png(path, w, h, &buf)
}

/// Rendering errors, as messages; the public functions add the path.
type Render<T> = std::result::Result<T, String>;

/// An [`Error::Data`] about the plot file `path`.
fn data_error(path: &Path, message: String) -> Error {
    Error::Data { path: path.display().to_string(), message }
}

/// A plotters error as a message.
fn draw_err(e: impl std::fmt::Display) -> String {
    format!("drawing the plot failed: {e}")
}

/// Registers the embedded font as plotters' `sans-serif` family (once per process).
fn ensure_font() -> Render<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err("the embedded DejaVu Sans font could not be loaded".to_string()) }
}

/// Checks that a plot side lies in `MIN_SIDE..=MAX_SIDE`.
fn check_size(w: u32, h: u32) -> Render<()> {
    let ok = |v: u32| (MIN_SIDE..=MAX_SIDE).contains(&v);
    if ok(w) && ok(h) {
        Ok(())
    } else {
        Err(format!("plot size {w} x {h} is outside {MIN_SIDE}..={MAX_SIDE} pixels per side"))
    }
}

/// Draws with `draw` on a white `w x h` RGB buffer and returns the buffer.
fn render(w: u32, h: u32, draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Render<()>) -> Render<Vec<u8>> {
    ensure_font()?;
    check_size(w, h)?;
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    Ok(buf)
}

/// Encodes the RGB buffer `rgb` (`w x h`) as PNG and writes it to `path` atomically.
fn write_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<()> {
    let png = encode_png(w, h, rgb).map_err(|e| data_error(path, format!("PNG encoding failed: {e}")))?;
    localprop::io::write_atomic(path, &png)
}

/// The PNG file of the RGB buffer `rgb` (`w x h`, 8 bits per channel).
fn encode_png(w: u32, h: u32, rgb: &[u8]) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Font sizes and line widths, scaled with the figure.
#[derive(Clone, Copy, Debug)]
struct Look {
    /// The scale: 1 at the default 1200 x 800.
    s: f64,
}

impl Look {
    /// The look of a figure whose size relative to the default is `s`.
    fn new(s: f64) -> Self {
        Look { s: s.clamp(0.5, 4.0) }
    }

    /// `v` pixels at the default size, scaled.
    fn px(self, v: f64) -> u32 {
        (v * self.s).round().max(1.0) as u32
    }

    /// The font size for `size` pixels at the default size: scaled, but at least 12 pixels.
    fn font_px(self, size: f64) -> f64 {
        (size * self.s).max(12.0)
    }

    /// The font of `size` pixels at the default size, scaled.
    fn font(self, size: f64) -> TextStyle<'static> {
        TextStyle::from(FontDesc::new(FontFamily::SansSerif, self.font_px(size), FontStyle::Normal)).color(&BLACK)
    }

    /// Approximate width in pixels of `text` at font `size` (before scaling).
    fn text_width(self, text: &str, size: f64) -> f64 {
        text.chars().count() as f64 * 0.62 * self.font_px(size)
    }
}

/// Font sizes at the default figure size.
const TITLE_FONT: f64 = 32.0;
const PANEL_TITLE_FONT: f64 = 24.0;
const DESC_FONT: f64 = 24.0;
const TICK_FONT: f64 = 20.0;
const LEGEND_FONT: f64 = 20.0;

/// One axis in axis space (the log10 of the values on a logarithmic axis), with its ticks.
#[derive(Clone, Debug)]
struct Axis {
    /// Lower end.
    lo: f64,
    /// Upper end.
    hi: f64,
    /// Logarithmic: axis space is log10 of the values.
    log: bool,
    /// Labelled ticks (with grid lines), in axis space.
    ticks: Vec<f64>,
    /// Unlabelled minor grid lines, in axis space.
    minor: Vec<f64>,
    /// Distance between linear ticks (sets the decimals of their labels).
    step: f64,
}

impl Axis {
    /// A linear axis covering `min..=max` (padded by 5% when `pad`), with about `target`
    /// ticks at round values.
    fn linear(min: f64, max: f64, pad: bool, target: usize) -> Render<Axis> {
        let (mut lo, mut hi) = (min, max);
        if hi <= lo {
            let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            lo -= d;
            hi += d;
        } else if pad {
            let d = (hi - lo) * 0.05;
            lo -= d;
            hi += d;
        }
        if !(hi - lo).is_finite() || hi <= lo {
            return Err(format!("values from {min:e} to {max:e} span too large or too small a range to plot"));
        }
        let step = nice_step((hi - lo) / target.max(2) as f64);
        let minor_step = step / 2.0;
        let ticks = multiples(lo, hi, step);
        let minor = multiples(lo, hi, minor_step)
            .into_iter()
            .filter(|v| ticks.iter().all(|t| (t - v).abs() > minor_step * 0.1))
            .collect();
        Ok(Axis { lo, hi, log: false, ticks, minor, step })
    }

    /// A logarithmic axis covering `min..=max` (already log10; padded by 5% of the span
    /// when `pad`), with about `target` labelled ticks: at powers of ten, also at 2 and 5
    /// times them over a few decades, at every digit within about a decade, and at round
    /// values when even that gives fewer than two.
    fn log(min: f64, max: f64, pad: bool, target: usize) -> Render<Axis> {
        let (mut lo, mut hi) = (min, max);
        if hi <= lo {
            lo -= 0.1;
            hi += 0.1;
        } else if pad {
            let d = (hi - lo) * 0.05;
            lo -= d;
            hi += d;
        }
        let decades = hi - lo;
        let (k0, k1) = (lo.floor() as i64, hi.ceil() as i64);
        let in_range = |v: f64| v >= lo - 1e-9 && v <= hi + 1e-9;
        let (mut ticks, mut minor) = (Vec::new(), Vec::new());
        if decades > 3.5 {
            let stride = ((decades / target.max(2) as f64).ceil() as i64).max(1);
            for k in k0..=k1 {
                let v = k as f64;
                if !in_range(v) {
                    continue;
                }
                if k.rem_euclid(stride) == 0 {
                    ticks.push(v);
                } else {
                    minor.push(v);
                }
                if stride == 1 {
                    minor.extend((2..10).map(|m| v + (m as f64).log10()).filter(|&u| in_range(u)));
                }
            }
        } else {
            let bold: &[u32] = if decades > 1.2 { &[1, 2, 5] } else { &[1, 2, 3, 4, 5, 6, 7, 8, 9] };
            for k in k0..=k1 {
                for m in 1..10u32 {
                    let v = k as f64 + f64::from(m).log10();
                    if in_range(v) {
                        if bold.contains(&m) { ticks.push(v) } else { minor.push(v) }
                    }
                }
            }
        }
        if ticks.len() < 2 {
            let linear = Axis::linear(10f64.powf(lo), 10f64.powf(hi), false, target)?;
            ticks = linear.ticks.iter().filter(|&&v| v > 0.0).map(|v| v.log10()).collect();
            minor = linear.minor.iter().filter(|&&v| v > 0.0).map(|v| v.log10()).collect();
        }
        Ok(Axis { lo, hi, log: true, ticks, minor, step: 0.0 })
    }

    /// The label of the tick at `v` (axis space).
    fn label(&self, v: f64) -> String {
        if self.log {
            return compact(10f64.powf(v));
        }
        if v.abs() < self.step * 1e-6 {
            return "0".to_string();
        }
        let mag = self.lo.abs().max(self.hi.abs());
        if !(1e-3..1e6).contains(&mag) {
            let digits = (mag.log10().floor() - self.step.log10().floor()).clamp(0.0, 12.0) as usize;
            return trim_exponent(&format!("{v:.digits$e}"));
        }
        let decimals = (-(self.step.log10() + 1e-9).floor()).clamp(0.0, 12.0) as usize;
        format!("{v:.decimals$}")
    }

    /// The longest of the tick labels, in characters.
    fn longest_label(&self) -> usize {
        self.ticks.iter().map(|&t| self.label(t).chars().count()).max().unwrap_or(0)
    }

    /// The coordinate for plotters, with the ticks as key points.
    fn coord(&self) -> AxisCoord {
        AxisCoord { lo: self.lo, hi: self.hi, bold: self.ticks.clone(), light: self.minor.clone() }
    }

    /// `v` (a value) in axis space, or `None` when it cannot be drawn on this axis.
    fn to_axis(log: bool, v: f64) -> Option<f64> {
        if !v.is_finite() {
            None
        } else if log {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    }
}

/// A linear plotters coordinate over `lo..hi` (axis space) with given key points: the
/// bold ones get grid lines and labels, the light ones fainter grid lines.
#[derive(Clone, Debug)]
struct AxisCoord {
    /// Lower end.
    lo: f64,
    /// Upper end.
    hi: f64,
    /// Labelled key points.
    bold: Vec<f64>,
    /// Unlabelled key points.
    light: Vec<f64>,
}

impl Ranged for AxisCoord {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = if self.hi > self.lo { (value - self.lo) / (self.hi - self.lo) } else { 0.5 };
        let t = if t.is_nan() { 0.0 } else { t.clamp(-10.0, 11.0) };
        limit.0 + (f64::from(limit.1 - limit.0) * t + 1e-3).floor() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { self.light.clone() } else { self.bold.clone() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The round step (1, 2 or 5 times a power of ten) nearest to `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let nice = if m < 1.5 {
        1.0
    } else if m < 3.0 {
        2.0
    } else if m < 7.0 {
        5.0
    } else {
        10.0
    };
    nice * p
}

/// The multiples of `step` in `lo..=hi`.
fn multiples(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let (k0, k1) = ((lo / step - 1e-9).ceil() as i64, (hi / step + 1e-9).floor() as i64);
    if k1 < k0 || k1 - k0 > 10_000 {
        return Vec::new();
    }
    (k0..=k1).map(|k| k as f64 * step).collect()
}

/// `x` in few characters: plain for `1e-3 <= |x| < 1e5`, otherwise like `2.5e-7`.
fn compact(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".to_string()
    } else if (1e-3..1e5).contains(&a) {
        trim_zeros(&format!("{x:.6}"))
    } else {
        trim_exponent(&format!("{x:.3e}"))
    }
}

/// `v` to three significant digits (like C's `%.3g`); "n/a" when it is not finite.
fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let r: f64 = format!("{v:.2e}").parse().unwrap_or(v);
    let e = r.abs().log10().floor();
    if (-4.0..5.0).contains(&e) {
        let decimals = (2.0 - e).max(0.0) as usize;
        trim_zeros(&format!("{r:.decimals$}"))
    } else {
        trim_exponent(&format!("{r:.2e}"))
    }
}

/// Removes trailing zeros after a decimal point (and the point itself if nothing is left).
fn trim_zeros(s: &str) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
}

/// Removes trailing zeros from the mantissa of `1.500e-7`-style text.
fn trim_exponent(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => format!("{}e{e}", trim_zeros(m)),
        None => s.to_string(),
    }
}

/// The colour of series `k`.
fn series_color(k: usize) -> RGBColor {
    if let Some(&c) = PALETTE.get(k) {
        return c;
    }
    let hue = (k as f64 * 0.618_033_988_75).fract();
    let c = HSLColor(hue, 0.7, 0.42).to_backend_color();
    RGBColor(c.rgb.0, c.rgb.1, c.rgb.2)
}

/// The viridis colour at `t` in `0..=1`.
fn viridis(t: f64) -> RGBColor {
    let x = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black or white, whichever reads better on `c`.
fn text_color_on(c: RGBColor) -> RGBColor {
    let luma = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    if luma > 140.0 { BLACK } else { WHITE }
}

/// The drawable points of `s` in axis space.
fn drawable<'s>(s: &Series<'s>, log_x: bool, log_y: bool) -> impl Iterator<Item = (f64, f64)> + use<'s> {
    let (x, y) = (s.x, s.y);
    x.iter().zip(y).filter_map(move |(&a, &b)| Some((Axis::to_axis(log_x, a)?, Axis::to_axis(log_y, b)?)))
}

/// Bounds of the drawable points of a plot, in axis space.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    /// Smallest and largest x.
    x: (f64, f64),
    /// Smallest and largest y.
    y: (f64, f64),
}

/// Checks `plot`'s series and returns the bounds of their drawable points, given the x
/// axis' scale `log_x` (the panel's own, or the shared one).
fn plot_bounds(plot: &LinePlot, log_x: bool) -> Render<Bounds> {
    let name = if plot.title.is_empty() { String::new() } else { format!("plot `{}`: ", plot.title) };
    if plot.series.is_empty() {
        return Err(format!("{name}no series to draw"));
    }
    let mut b = Bounds { x: (f64::INFINITY, f64::NEG_INFINITY), y: (f64::INFINITY, f64::NEG_INFINITY) };
    for (k, s) in plot.series.iter().enumerate() {
        let label = if s.name.is_empty() { format!("series {k}") } else { format!("series `{}`", s.name) };
        if s.x.len() != s.y.len() {
            return Err(format!("{name}{label} has {} x values but {} y values", s.x.len(), s.y.len()));
        }
        if s.x.is_empty() {
            return Err(format!("{name}{label} is empty"));
        }
        for (x, y) in drawable(s, log_x, plot.log_y) {
            b.x = (b.x.0.min(x), b.x.1.max(x));
            b.y = (b.y.0.min(y), b.y.1.max(y));
        }
    }
    if b.x.0 > b.x.1 {
        let log = if log_x || plot.log_y { " or non-positive on a logarithmic axis" } else { "" };
        return Err(format!("{name}no point can be drawn: every point has a non-finite value{log}"));
    }
    Ok(b)
}

/// The x axis over x bounds `(min, max)` (axis space) for a plot `width` pixels wide.
fn x_axis(min: f64, max: f64, log: bool, width: u32, look: Look) -> Render<Axis> {
    let target = ((f64::from(width) / (140.0 * look.s)).round() as usize).clamp(3, 12);
    if log { Axis::log(min, max, false, target) } else { Axis::linear(min, max, false, target) }
}

/// The y axis over y bounds `(min, max)` (axis space) for a plot `height` pixels tall.
fn y_axis(min: f64, max: f64, log: bool, height: u32, look: Look) -> Render<Axis> {
    let target = ((f64::from(height) / (90.0 * look.s)).round() as usize).clamp(3, 10);
    if log { Axis::log(min, max, true, target) } else { Axis::linear(min, max, true, target) }
}

/// Width of the y label area for `axis` with label `desc`.
fn y_area_width(axis: &Axis, desc: &str, look: Look) -> u32 {
    let ticks = look.text_width(&"0".repeat(axis.longest_label()), TICK_FONT);
    let desc = if desc.is_empty() { 0.0 } else { look.font_px(DESC_FONT) * 1.6 };
    (ticks + desc + 20.0 * look.s).round() as u32
}

/// How a panel is drawn.
struct PanelLayout<'x> {
    /// The (shared) x axis.
    x: &'x Axis,
    /// The panel's y axis.
    y: Axis,
    /// Width of the y label area (the same for all panels of a figure, to align them).
    y_area: u32,
    /// Height of the x label area (0 for panels without x tick labels).
    x_area: u32,
    /// Whether to write the x axis label.
    x_desc: bool,
    /// Pixel columns to reduce the series to.
    columns: usize,
    /// Font size of the panel's title (before scaling).
    caption_font: f64,
    /// Space below the plot when there is no x label area (before scaling).
    bottom_gap: f64,
    /// The look.
    look: Look,
}

/// Draws one line plot panel on `area`.
fn draw_panel(area: &DrawingArea<BitMapBackend, Shift>, plot: &LinePlot, layout: &PanelLayout) -> Render<()> {
    let PanelLayout { x, ref y, y_area, x_area, x_desc, columns, caption_font, bottom_gap, look } = *layout;
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_top(look.px(12.0))
        .margin_bottom(look.px(bottom_gap))
        .margin_left(look.px(12.0))
        .margin_right(look.px(30.0))
        .x_label_area_size(x_area)
        .y_label_area_size(y_area);
    if !plot.title.is_empty() {
        builder.caption(plot.title, look.font(caption_font));
    }
    let mut chart = builder.build_cartesian_2d(x.coord(), y.coord()).map_err(draw_err)?;

    let x_fmt = |v: &f64| x.label(*v);
    let y_fmt = |v: &f64| y.label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(look.font(TICK_FONT))
        .axis_desc_style(look.font(DESC_FONT))
        .bold_line_style(RGBColor(205, 205, 205).stroke_width(1))
        .light_line_style(RGBColor(238, 238, 238).stroke_width(1))
        .axis_style(RGBColor(60, 60, 60).stroke_width(1))
        .set_all_tick_mark_size(look.px(6.0));
    if x_desc && !plot.x_label.is_empty() {
        mesh.x_desc(plot.x_label);
    }
    if !plot.y_label.is_empty() {
        mesh.y_desc(plot.y_label);
    }
    mesh.draw().map_err(draw_err)?;

    let width = look.px(2.0);
    let mut legend = false;
    for (k, s) in plot.series.iter().enumerate() {
        let color = series_color(k);
        let points = downsample(drawable(s, x.log, y.log), x.lo, x.hi, columns);
        let style = color.stroke_width(width);
        // Segment by segment: plotters joins a wide polyline with miters, which spike far
        // out of the plot where a dense series zigzags.
        let segments = points.windows(2).map(|w| PathElement::new(vec![w[0], w[1]], style));
        let series = chart.draw_series(segments).map_err(draw_err)?;
        if !s.name.is_empty() {
            legend = true;
            let len = look.px(28.0) as i32;
            series.label(s.name).legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + len, ly)], style));
        }
        if points.len() <= 60 {
            let r = look.px(3.5);
            chart.draw_series(points.iter().map(|&p| Circle::new(p, r, color.filled()))).map_err(draw_err)?;
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .label_font(look.font(LEGEND_FONT))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .position(SeriesLabelPosition::UpperRight)
            .margin(look.px(12.0))
            .legend_area_size(look.px(40.0))
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

/// Reduces `points` to at most four per pixel column (of `columns` over `lo..hi` in x): the
/// first, lowest, highest and last point of each run of points in the same column, in their
/// original order.
fn downsample(points: impl Iterator<Item = (f64, f64)>, lo: f64, hi: f64, columns: usize) -> Vec<(f64, f64)> {
    /// The kept points of one run, as (index, point).
    struct Run {
        col: usize,
        first: (usize, (f64, f64)),
        low: (usize, (f64, f64)),
        high: (usize, (f64, f64)),
        last: (usize, (f64, f64)),
    }
    impl Run {
        fn flush(self, out: &mut Vec<(f64, f64)>) {
            let mut kept = [self.first, self.low, self.high, self.last];
            kept.sort_by_key(|&(i, _)| i);
            let mut prev = None;
            for (i, p) in kept {
                if prev != Some(i) {
                    out.push(p);
                    prev = Some(i);
                }
            }
        }
    }
    let columns = columns.max(1);
    let scale = if hi > lo { columns as f64 / (hi - lo) } else { 0.0 };
    let mut out = Vec::new();
    let mut run: Option<Run> = None;
    for (i, p) in points.enumerate() {
        let col = (((p.0 - lo) * scale).floor().max(0.0) as usize).min(columns - 1);
        match &mut run {
            Some(r) if r.col == col => {
                if p.1 < r.low.1.1 {
                    r.low = (i, p);
                }
                if p.1 > r.high.1.1 {
                    r.high = (i, p);
                }
                r.last = (i, p);
            }
            _ => {
                if let Some(r) = run.take() {
                    r.flush(&mut out);
                }
                run = Some(Run { col, first: (i, p), low: (i, p), high: (i, p), last: (i, p) });
            }
        }
    }
    if let Some(r) = run {
        r.flush(&mut out);
    }
    out
}

/// Renders a line plot into an RGB buffer of `plot.size`.
fn render_line_plot(plot: &LinePlot) -> Render<Vec<u8>> {
    let (w, h) = plot.size;
    check_size(w, h)?;
    let b = plot_bounds(plot, plot.log_x)?;
    let look = Look::new((f64::from(w) / 1200.0).min(f64::from(h) / 800.0));
    let x = x_axis(b.x.0, b.x.1, plot.log_x, w, look)?;
    let y = y_axis(b.y.0, b.y.1, plot.log_y, h, look)?;
    let layout = PanelLayout {
        x: &x,
        y_area: y_area_width(&y, plot.y_label, look).min(w / 3),
        y,
        x_area: look.px(if plot.x_label.is_empty() { 45.0 } else { 80.0 }),
        x_desc: true,
        columns: w as usize,
        caption_font: TITLE_FONT,
        bottom_gap: 8.0,
        look,
    };
    render(w, h, |root| draw_panel(root, plot, &layout))
}

/// Renders stacked panels; returns the width, height and RGB buffer.
fn render_stacked(title: &str, panels: &[LinePlot]) -> Render<(u32, u32, Vec<u8>)> {
    let Some(last) = panels.last() else {
        return Err("no panels to draw".to_string());
    };
    let log_x = panels[0].log_x;
    if panels.iter().any(|p| p.log_x != log_x) {
        return Err("the panels share the x axis but disagree on `log_x`".to_string());
    }
    let w = panels.iter().map(|p| p.size.0).max().unwrap_or(DEFAULT_SIZE.0);
    check_size(w, MIN_SIDE)?;
    let min_h = panels.iter().map(|p| p.size.1).min().unwrap_or(DEFAULT_SIZE.1);
    let look = Look::new((f64::from(w) / 1200.0).min(f64::from(min_h) / 300.0));
    let title_h = if title.is_empty() { 0 } else { look.px(56.0) };
    let x_area = look.px(if last.x_label.is_empty() { 45.0 } else { 80.0 });
    let panels_h: u64 = panels.iter().map(|p| u64::from(p.size.1)).sum();
    let h = u32::try_from(panels_h + u64::from(title_h) + u64::from(x_area)).unwrap_or(u32::MAX);
    check_size(w, h)?;

    let mut bounds = Vec::with_capacity(panels.len());
    for (k, p) in panels.iter().enumerate() {
        bounds.push(plot_bounds(p, log_x).map_err(|m| format!("panel {k}: {m}"))?);
    }
    let (x_min, x_max) =
        bounds.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, b| (a.0.min(b.x.0), a.1.max(b.x.1)));
    let x = x_axis(x_min, x_max, log_x, w, look)?;
    let mut ys = Vec::with_capacity(panels.len());
    for (p, b) in panels.iter().zip(&bounds) {
        ys.push(y_axis(b.y.0, b.y.1, p.log_y, p.size.1, look)?);
    }
    let y_area = panels.iter().zip(&ys).map(|(p, y)| y_area_width(y, p.y_label, look)).max().unwrap_or(0).min(w / 3);

    let buf = render(w, h, |root| {
        let area = if title.is_empty() {
            root.clone()
        } else {
            let (top, rest) = root.split_vertically(title_h);
            top.draw_text(
                title,
                &look.font(TITLE_FONT).pos(Pos::new(HPos::Center, VPos::Center)),
                (w as i32 / 2, title_h as i32 / 2 + look.px(4.0) as i32),
            )
            .map_err(draw_err)?;
            rest
        };
        let mut breaks = Vec::with_capacity(panels.len());
        let mut at = 0u32;
        for p in &panels[..panels.len() - 1] {
            at += p.size.1;
            breaks.push(at);
        }
        let areas = area.split_by_breakpoints(Vec::<u32>::new(), breaks);
        for (k, ((p, y), a)) in panels.iter().zip(ys).zip(&areas).enumerate() {
            let bottom = k + 1 == panels.len();
            let layout = PanelLayout {
                x: &x,
                y,
                y_area,
                x_area: if bottom { x_area } else { 0 },
                x_desc: bottom,
                columns: w as usize,
                caption_font: PANEL_TITLE_FONT,
                bottom_gap: if bottom { 8.0 } else { 24.0 },
                look,
            };
            draw_panel(a, p, &layout).map_err(|m| format!("panel {k}: {m}"))?;
        }
        Ok(())
    })?;
    Ok((w, h, buf))
}

/// Renders a heatmap; returns the width, height and RGB buffer.
fn render_heatmap(map: &Heatmap) -> Render<(u32, u32, Vec<u8>)> {
    let (nx, ny) = (map.x_ticks.len(), map.y_ticks.len());
    if nx == 0 || ny == 0 {
        return Err(format!("heatmap has {nx} columns and {ny} rows; it needs at least one of each"));
    }
    if Some(map.values.len()) != nx.checked_mul(ny) {
        return Err(format!(
            "heatmap has {} values for {nx} columns x {ny} rows = {} cells",
            map.values.len(),
            nx * ny
        ));
    }
    let look = Look::new(1.0);
    let longest = |t: &[String]| t.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let (cx, cy) = (longest(map.x_ticks), longest(map.y_ticks));

    // The colour scale, in axis space.
    let colored = |v: f64| Axis::to_axis(map.log_color, v);
    let (vmin, vmax) = map
        .values
        .iter()
        .filter_map(|&v| colored(v))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| (a.0.min(v), a.1.max(v)));
    let scale = if vmin <= vmax {
        let (lo, hi) = if vmax > vmin {
            (vmin, vmax)
        } else {
            let d = if vmin == 0.0 { 1.0 } else { vmin.abs() * 0.1 };
            (vmin - d, vmax + d)
        };
        let axis = if map.log_color { Axis::log(lo, hi, false, 6)? } else { Axis::linear(lo, hi, false, 6)? };
        Some(Axis { lo, hi, ..axis })
    } else {
        None
    };
    let has_na = map.values.iter().any(|&v| colored(v).is_none());

    // Layout.
    let margin = 20u32;
    let title_h = if map.title.is_empty() { 0 } else { 60 };
    let x_area = if map.x_label.is_empty() { 45 } else { 85 };
    let desc = |s: &str| if s.is_empty() { 0.0 } else { DESC_FONT * 1.6 };
    let y_area = (look.text_width(&"0".repeat(cy), TICK_FONT) + desc(map.y_label) + 24.0).min(3000.0).round() as u32;
    let bar_labels = scale.as_ref().map_or(0, Axis::longest_label).max(3);
    let bar_area =
        (look.text_width(&"0".repeat(bar_labels), TICK_FONT) + desc(map.value_label) + 24.0).min(1000.0).round() as u32;
    let bar_w = 36u32;
    let cbar_w = 20 + bar_w + bar_area + margin;
    let cell_w_min = look.text_width(&"0".repeat(cx.max(6)), TICK_FONT) + 16.0;
    let cell_h_min = 44.0;
    let need_w = f64::from(2 * margin + y_area + cbar_w) + nx as f64 * cell_w_min;
    let need_h = f64::from(2 * margin + title_h + x_area) + ny as f64 * cell_h_min;
    let w = (need_w.ceil() as u32).clamp(1200, MAX_SIDE);
    let h = (need_h.ceil() as u32).clamp(800, MAX_SIDE);
    let cell_w = f64::from(w.saturating_sub(2 * margin + y_area + cbar_w)) / nx as f64;
    let cell_h = f64::from(h.saturating_sub(2 * margin + title_h + x_area)) / ny as f64;
    let annot_font = (cell_h * 0.45).min(cell_w / (0.62 * 7.0)).min(22.0);

    let buf = render(w, h, |root| {
        let area = if map.title.is_empty() {
            root.clone()
        } else {
            let (top, rest) = root.split_vertically(title_h);
            top.draw_text(
                map.title,
                &look.font(TITLE_FONT).pos(Pos::new(HPos::Center, VPos::Center)),
                (w as i32 / 2, title_h as i32 / 2 + 6),
            )
            .map_err(draw_err)?;
            rest
        };
        let (left, right) = area.split_horizontally(w - cbar_w);

        let x_centers: Vec<f64> = (0..nx).map(|i| i as f64 + 0.5).collect();
        let y_centers: Vec<f64> = (0..ny).map(|j| j as f64 + 0.5).collect();
        let mut chart = ChartBuilder::on(&left)
            .margin(margin)
            .margin_right(0)
            .x_label_area_size(x_area)
            .y_label_area_size(y_area)
            .build_cartesian_2d(
                AxisCoord { lo: 0.0, hi: nx as f64, bold: x_centers, light: Vec::new() },
                AxisCoord { lo: 0.0, hi: ny as f64, bold: y_centers, light: Vec::new() },
            )
            .map_err(draw_err)?;
        let tick = |ticks: &[String], v: f64| ticks.get(v.max(0.0) as usize).cloned().unwrap_or_default();
        let x_fmt = |v: &f64| tick(map.x_ticks, *v);
        let y_fmt = |v: &f64| tick(map.y_ticks, *v);
        let mut mesh = chart.configure_mesh();
        mesh.disable_mesh()
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style(look.font(TICK_FONT))
            .axis_desc_style(look.font(DESC_FONT))
            .axis_style(RGBColor(60, 60, 60).stroke_width(1))
            .set_all_tick_mark_size(6);
        if !map.x_label.is_empty() {
            mesh.x_desc(map.x_label);
        }
        if !map.y_label.is_empty() {
            mesh.y_desc(map.y_label);
        }
        mesh.draw().map_err(draw_err)?;

        let cell_color = |v: f64| match (&scale, colored(v)) {
            (Some(s), Some(a)) => viridis((a - s.lo) / (s.hi - s.lo)),
            _ => NA_GREY,
        };
        let cells = (0..ny).flat_map(|j| (0..nx).map(move |i| (i, j)));
        chart
            .draw_series(cells.clone().map(|(i, j)| {
                let (x0, y0) = (i as f64, j as f64);
                Rectangle::new([(x0, y0), (x0 + 1.0, y0 + 1.0)], cell_color(map.values[j * nx + i]).filled())
            }))
            .map_err(draw_err)?;
        chart
            .draw_series(cells.clone().map(|(i, j)| {
                let (x0, y0) = (i as f64, j as f64);
                Rectangle::new([(x0, y0), (x0 + 1.0, y0 + 1.0)], WHITE.stroke_width(1))
            }))
            .map_err(draw_err)?;
        if annot_font >= 9.0 {
            chart
                .draw_series(cells.map(|(i, j)| {
                    let v = map.values[j * nx + i];
                    let style = TextStyle {
                        font: FontDesc::new(FontFamily::SansSerif, annot_font, FontStyle::Normal),
                        color: text_color_on(cell_color(v)).to_backend_color(),
                        pos: Pos::new(HPos::Center, VPos::Center),
                    };
                    Text::new(sig3(v), (i as f64 + 0.5, j as f64 + 0.5), style)
                }))
                .map_err(draw_err)?;
        }

        // The colour bar, aligned with the cells.
        let bar_top = margin as i32;
        let bar_bottom = (right.dim_in_pixel().1 - margin - x_area) as i32;
        if let Some(s) = &scale {
            let mut bar = ChartBuilder::on(&right)
                .margin_top(margin)
                .margin_bottom(margin)
                .margin_left(20)
                .margin_right(margin)
                .x_label_area_size(x_area)
                .right_y_label_area_size(bar_area)
                .build_cartesian_2d(AxisCoord { lo: 0.0, hi: 1.0, bold: Vec::new(), light: Vec::new() }, s.coord())
                .map_err(draw_err)?;
            let fmt = |v: &f64| s.label(*v);
            let mut mesh = bar.configure_mesh();
            mesh.disable_mesh()
                .disable_x_axis()
                .y_label_formatter(&fmt)
                .label_style(look.font(TICK_FONT))
                .axis_desc_style(look.font(DESC_FONT))
                .axis_style(RGBColor(60, 60, 60).stroke_width(1))
                .set_all_tick_mark_size(6);
            if !map.value_label.is_empty() {
                mesh.y_desc(map.value_label);
            }
            mesh.draw().map_err(draw_err)?;
            let steps = 256;
            bar.draw_series((0..steps).map(|k| {
                let f0 = k as f64 / steps as f64;
                let f1 = (k + 1) as f64 / steps as f64;
                let (y0, y1) = (s.lo + (s.hi - s.lo) * f0, s.lo + (s.hi - s.lo) * f1);
                Rectangle::new([(0.0, y0), (1.0, y1)], viridis((f0 + f1) / 2.0).filled())
            }))
            .map_err(draw_err)?;
            bar.draw_series(std::iter::once(Rectangle::new(
                [(0.0, s.lo), (1.0, s.hi)],
                RGBColor(60, 60, 60).stroke_width(1),
            )))
            .map_err(draw_err)?;
        }
        if has_na {
            let (x0, y0) = (20i32, if scale.is_some() { bar_bottom + 28 } else { bar_top });
            right
                .draw(&Rectangle::new([(x0, y0), (x0 + bar_w as i32, y0 + 24)], NA_GREY.filled()))
                .map_err(draw_err)?;
            right
                .draw(&Rectangle::new([(x0, y0), (x0 + bar_w as i32, y0 + 24)], RGBColor(60, 60, 60).stroke_width(1)))
                .map_err(draw_err)?;
            right
                .draw_text(
                    "n/a",
                    &look.font(TICK_FONT).pos(Pos::new(HPos::Left, VPos::Center)),
                    (x0 + bar_w as i32 + 10, y0 + 12),
                )
                .map_err(draw_err)?;
        }
        Ok(())
    })?;
    Ok((w, h, buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh path in the temp dir for a PNG named after `stem`.
    fn temp_png(stem: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("localprop-plot-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        dir.join(format!("{stem}-{n}.png"))
    }

    /// Checks that `path` is a PNG of `w x h` and returns its RGB pixels.
    fn check_png(path: &Path, w: u32, h: u32) -> Vec<u8> {
        let bytes = std::fs::read(path).expect("the PNG exists");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((width, height), (w, h), "size in the IHDR chunk");
        assert!(!path.with_extension("png.tmp").exists(), "no temporary file left behind");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
        let info = reader.next_frame(&mut buf).expect("PNG data");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        buf
    }

    /// Pixels that are not white in rows `rows` of an RGB image `w` wide.
    fn ink(rgb: &[u8], w: u32, rows: std::ops::Range<u32>) -> usize {
        let row = w as usize * 3;
        rgb[rows.start as usize * row..rows.end as usize * row]
            .chunks_exact(3)
            .filter(|p| p.iter().any(|&c| c < 200))
            .count()
    }

    fn sine(n: usize) -> (Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.01).collect();
        let y = x.iter().map(|t| t.sin()).collect();
        (x, y)
    }

    #[test]
    fn the_embedded_font_renders_text() {
        ensure_font().unwrap();
        let buf =
            render(300, 200, |root| root.draw_text("Hg 0.5", &Look::new(1.0).font(40.0), (20, 60)).map_err(draw_err))
                .unwrap();
        assert!(ink(&buf, 300, 0..200) > 200, "glyphs were drawn");
    }

    #[test]
    fn line_plot_writes_a_png_of_the_requested_size() {
        let (x, y) = sine(2000);
        let y2: Vec<f64> = y.iter().map(|v| 0.5 * v + 0.2).collect();
        let plot = LinePlot {
            title: "Output vs target",
            x_label: "time t",
            y_label: "x_o",
            series: vec![Series::new("output", &x, &y), Series::new("target", &x, &y2)],
            size: (900, 600),
            ..Default::default()
        };
        let path = temp_png("line");
        line_plot(&path, &plot).unwrap();
        let rgb = check_png(&path, 900, 600);
        assert_eq!(rgb, render_line_plot(&plot).unwrap(), "the file holds the rendered image");
        // Both series colours are present.
        for c in [PALETTE[0], PALETTE[1]] {
            assert!(rgb.chunks_exact(3).any(|p| p == [c.0, c.1, c.2]), "colour {c:?} drawn");
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn labels_are_drawn_as_text() {
        let (x, y) = sine(500);
        let plot =
            |x_label, title| LinePlot { title, x_label, series: vec![Series::new("", &x, &y)], ..Default::default() };
        let (w, h) = DEFAULT_SIZE;
        // Same layout (a blank label takes the same room), with and without the x axis
        // label's text: only the label area differs.
        let with = render_line_plot(&plot("time (s)", "")).unwrap();
        let without = render_line_plot(&plot(" ", "")).unwrap();
        assert_eq!(with.len(), without.len());
        let split = (h as usize - 60) * w as usize * 3;
        assert_eq!(with[..split], without[..split], "the plot above the label is the same");
        let label_rows = h - 40..h;
        assert!(ink(&with, w, label_rows.clone()) > ink(&without, w, label_rows) + 100, "x label drawn");
        // A title puts ink in the top rows, which are blank without one.
        let titled = render_line_plot(&plot("", "A title")).unwrap();
        assert_eq!(ink(&without, w, 0..12), 0);
        assert!(ink(&titled, w, 0..40) > 100, "title drawn");
    }

    #[test]
    fn log_axes_skip_non_positive_and_non_finite_points() {
        let x: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let y: Vec<f64> = x
            .iter()
            .map(|&t| match t as usize % 7 {
                0 => f64::NAN,
                1 => -1.0,
                2 => f64::INFINITY,
                _ => (-t / 100.0).exp(),
            })
            .collect();
        let plot = LinePlot {
            title: "loss",
            x_label: "step",
            y_label: "loss",
            series: vec![Series::new("loss", &x, &y)],
            log_x: true,
            log_y: true,
            ..Default::default()
        };
        let path = temp_png("log");
        line_plot(&path, &plot).unwrap();
        check_png(&path, 1200, 800);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_million_points_are_downsampled() {
        let n = 1_000_000;
        let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|t| (t * 1e-4).sin() + ((t * 7.3).sin() * 0.1)).collect();
        let kept = downsample(x.iter().copied().zip(y.iter().copied()), 0.0, n as f64, 1200);
        assert!(kept.len() <= 4 * 1200, "{} points kept", kept.len());
        let (lo, hi) = y.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, &v| (a.0.min(v), a.1.max(v)));
        let (klo, khi) = kept.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| (a.0.min(p.1), a.1.max(p.1)));
        assert_eq!((lo, hi), (klo, khi), "extremes kept");
        assert!(kept.windows(2).all(|w| w[0].0 <= w[1].0), "order kept");

        let start = std::time::Instant::now();
        let plot = LinePlot { series: vec![Series::new("big", &x, &y)], ..Default::default() };
        let path = temp_png("million");
        line_plot(&path, &plot).unwrap();
        check_png(&path, 1200, 800);
        assert!(start.elapsed().as_secs_f64() < 20.0, "took {:?}", start.elapsed());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn many_series_get_distinct_colours() {
        let colors: Vec<RGBColor> = (0..30).map(series_color).collect();
        for (i, a) in colors.iter().enumerate() {
            for b in &colors[..i] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn stacked_plots_write_one_png() {
        let (x, y) = sine(3000);
        let z: Vec<f64> = y.iter().map(|v| v * 0.9).collect();
        let loss: Vec<f64> = x.iter().map(|t| (-t).exp() + 1e-4).collect();
        let l: Vec<f64> = x.iter().map(|t| t.cos()).collect();
        let panels = [
            LinePlot {
                title: "output vs target",
                y_label: "x",
                series: vec![Series::new("output", &x, &y), Series::new("target", &x, &z)],
                size: (1200, 350),
                ..Default::default()
            },
            LinePlot {
                title: "loss",
                y_label: "loss",
                series: vec![Series::new("", &x, &loss)],
                log_y: true,
                size: (1200, 300),
                ..Default::default()
            },
            LinePlot {
                title: "energies",
                x_label: "time",
                y_label: "energy",
                series: vec![Series::new("L", &x, &l), Series::new("H", &x, &y)],
                size: (1200, 300),
                ..Default::default()
            },
        ];
        let path = temp_png("stacked");
        stacked_plots(&path, "A run", &panels).unwrap();
        let (w, h, _) = render_stacked("A run", &panels).unwrap();
        assert_eq!(w, 1200);
        assert!(h > 950);
        check_png(&path, w, h);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn heatmap_writes_an_annotated_png() {
        let x_ticks: Vec<String> = ["0.1", "0.2", "0.5", "1"].iter().map(|s| s.to_string()).collect();
        let y_ticks: Vec<String> = ["1e-3", "1e-2", "1e-1"].iter().map(|s| s.to_string()).collect();
        let values = [0.012, 0.5, 3.25, f64::NAN, 1e-5, 0.333, 12.0, 250.0, 0.0, f64::INFINITY, 7.77, 0.09];
        let map = Heatmap {
            title: "NMSE",
            x_label: "c tau",
            y_label: "theta",
            x_ticks: &x_ticks,
            y_ticks: &y_ticks,
            values: &values,
            value_label: "NMSE",
            log_color: true,
        };
        let path = temp_png("heatmap");
        heatmap(&path, &map).unwrap();
        let rgb = check_png(&path, 1200, 800);
        assert!(rgb.chunks_exact(3).any(|p| p == [NA_GREY.0, NA_GREY.1, NA_GREY.2]), "n/a cells are grey");
        // A linear colour scale (with the non-finite cells still grey) colours differently.
        let linear = Heatmap { log_color: false, ..map.clone() };
        heatmap(&path, &linear).unwrap();
        assert_ne!(check_png(&path, 1200, 800), rgb);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn heatmaps_grow_with_their_cells() {
        let x_ticks: Vec<String> = (0..40).map(|i| format!("x{i}")).collect();
        let y_ticks: Vec<String> = (0..25).map(|j| format!("y{j}")).collect();
        let values: Vec<f64> = (0..40 * 25).map(|k| k as f64).collect();
        let map = Heatmap { x_ticks: &x_ticks, y_ticks: &y_ticks, values: &values, ..Default::default() };
        let (w, h, _) = render_heatmap(&map).unwrap();
        assert!(w > 1200 && h > 800, "{w} x {h}");
        let constant = [1.0; 6];
        let map = Heatmap { x_ticks: &x_ticks[..3], y_ticks: &y_ticks[..2], values: &constant, ..Default::default() };
        render_heatmap(&map).unwrap();
        let nan = [f64::NAN; 6];
        let map = Heatmap { values: &nan, ..map };
        render_heatmap(&map).unwrap();
    }

    #[test]
    fn bad_plots_are_data_errors() {
        let path = temp_png("bad");
        let is_data = |r: Result<()>, want: &str| match r {
            Err(Error::Data { message, path: p }) => {
                assert!(message.contains(want), "`{message}` should mention `{want}`");
                assert!(p.ends_with(".png"));
            }
            other => panic!("expected a data error about `{want}`, got {other:?}"),
        };
        let (x, y) = sine(10);
        let nan = [f64::NAN; 10];
        let neg = [-1.0; 10];
        let plot = |series: Vec<Series<'static>>| LinePlot { series, ..Default::default() };
        is_data(line_plot(&path, &LinePlot::default()), "no series");
        is_data(line_plot(&path, &plot(vec![Series::new("e", &[], &[])])), "series `e` is empty");
        is_data(
            line_plot(&path, &LinePlot { series: vec![Series::new("m", &x, &y[..5])], ..Default::default() }),
            "10 x values but 5 y",
        );
        is_data(
            line_plot(&path, &LinePlot { series: vec![Series::new("n", &x, &nan)], ..Default::default() }),
            "no point can be drawn",
        );
        let log = LinePlot { series: vec![Series::new("n", &x, &neg)], log_y: true, ..Default::default() };
        is_data(line_plot(&path, &log), "non-positive");
        let tiny = LinePlot { series: vec![Series::new("s", &x, &y)], size: (10, 800), ..Default::default() };
        is_data(line_plot(&path, &tiny), "outside");
        is_data(stacked_plots(&path, "t", &[]), "no panels");
        let a = LinePlot { series: vec![Series::new("s", &x, &y)], size: (1200, 300), ..Default::default() };
        let b = LinePlot { log_x: true, ..a.clone() };
        is_data(stacked_plots(&path, "t", &[a.clone(), b]), "log_x");
        is_data(stacked_plots(&path, "t", &[a, LinePlot::default()]), "panel 1: no series");
        let ticks = ["a".to_string(), "b".to_string()];
        is_data(
            heatmap(&path, &Heatmap { x_ticks: &ticks, y_ticks: &ticks, values: &[1.0; 3], ..Default::default() }),
            "3 values",
        );
        is_data(heatmap(&path, &Heatmap { x_ticks: &ticks, ..Default::default() }), "0 rows");
        assert!(!path.exists(), "nothing written");
        assert!(!path.with_extension("png.tmp").exists());
    }

    #[test]
    fn unwritable_paths_are_io_errors() {
        let (x, y) = sine(10);
        let plot = LinePlot { series: vec![Series::new("s", &x, &y)], ..Default::default() };
        let path = std::env::temp_dir().join("localprop-no-such-dir-7f3a").join("p.png");
        match line_plot(&path, &plot) {
            Err(Error::Io { path, .. }) => assert!(path.contains("localprop-no-such-dir-7f3a")),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    #[test]
    fn small_plots_do_not_panic() {
        let (x, y) = sine(100);
        let plot = LinePlot {
            title: "a rather long title for a small plot",
            x_label: "x",
            y_label: "y",
            series: vec![Series::new("a", &x, &y)],
            size: (200, 200),
            ..Default::default()
        };
        render_line_plot(&plot).unwrap();
        let single = LinePlot { series: vec![Series::new("one", &[2.0], &[3.0])], ..plot.clone() };
        render_line_plot(&single).unwrap();
        let huge = [1e300, -1e300];
        let wide = LinePlot { series: vec![Series::new("w", &[0.0, 1.0], &huge)], ..plot };
        let _ = render_line_plot(&wide);
        let long = ["x".repeat(2000)];
        let map = Heatmap { x_ticks: &long, y_ticks: &long, values: &[1.0], ..Default::default() };
        render_heatmap(&map).unwrap();
    }

    #[test]
    fn numbers_are_formatted_compactly() {
        assert_eq!(sig3(0.0), "0");
        assert_eq!(sig3(f64::NAN), "n/a");
        assert_eq!(sig3(f64::NEG_INFINITY), "n/a");
        assert_eq!(sig3(1.23456), "1.23");
        assert_eq!(sig3(9.996), "10");
        assert_eq!(sig3(0.5), "0.5");
        assert_eq!(sig3(-0.012345), "-0.0123");
        assert_eq!(sig3(12345.0), "12300");
        assert_eq!(sig3(1.5e-7), "1.5e-7");
        assert_eq!(sig3(2.5e8), "2.5e8");
        assert_eq!(compact(1e-4), "1e-4");
        assert_eq!(compact(0.001), "0.001");
        assert_eq!(compact(100.0), "100");
        assert_eq!(compact(2.0000000000000004e-3), "0.002");
        let a = Axis::linear(0.0, 1.0, false, 6).unwrap();
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let a = Axis::linear(-3e-6, 3e-6, false, 6).unwrap();
        assert!(a.ticks.iter().all(|&t| a.label(t).len() <= 6), "{:?}", a.ticks);
        let a = Axis::log(-4.2, 0.3, false, 8).unwrap();
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["1e-4", "0.001", "0.01", "0.1", "1"]);
        let a = Axis::log(0.2f64.log10(), 0.5f64.log10(), true, 6).unwrap();
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["0.2", "0.3", "0.4", "0.5"]);
        let a = Axis::log(1e-6f64.log10(), 1.05e-6f64.log10(), false, 6).unwrap();
        assert!(a.ticks.len() >= 3, "round ticks within a narrow log range: {:?}", a.ticks);
    }
}

#[cfg(test)]
mod samples {
    //! `cargo test -p localprop-cli --lib plot::samples -- --ignored` writes sample plots to
    //! `$TMPDIR/localprop-plot-samples/` for a look.
    use super::*;

    #[test]
    #[ignore = "writes sample images for review"]
    fn write_samples() {
        let dir = std::env::temp_dir().join("localprop-plot-samples");
        std::fs::create_dir_all(&dir).unwrap();
        let n = 200_000;
        let t: Vec<f64> = (0..n).map(|i| i as f64 * 1e-3).collect();
        let z: Vec<f64> = t.iter().map(|t| (t * 0.5).sin() * 0.8).collect();
        let x: Vec<f64> =
            t.iter().map(|t| (t * 0.5).sin() * 0.8 * (1.0 - (-t / 30.0).exp()) + 0.05 * (t * 37.0).sin()).collect();
        let loss: Vec<f64> = x.iter().zip(&z).map(|(a, b)| 0.5 * (a - b).powi(2)).collect();
        let l: Vec<f64> = t.iter().map(|t| 2.0 + (t * 0.1).cos() + 0.2 * (t * 3.0).sin()).collect();
        let h: Vec<f64> = t.iter().map(|t| 1.5 - 0.4 * (t * 0.05).sin()).collect();
        line_plot(
            &dir.join("line.png"),
            &LinePlot {
                title: "Output vs target (replica 0)",
                x_label: "time t",
                y_label: "output x_o",
                series: vec![Series::new("output", &t, &x), Series::new("target", &t, &z)],
                ..Default::default()
            },
        )
        .unwrap();
        line_plot(
            &dir.join("loss_log.png"),
            &LinePlot {
                title: "Loss",
                x_label: "time t",
                y_label: "loss",
                series: vec![Series::new("loss", &t, &loss)],
                log_y: true,
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<String> = (0..12).map(|k| format!("replica {k}")).collect();
        let ys: Vec<Vec<f64>> = (0..12)
            .map(|k| t[..5000].iter().map(|t| (t + k as f64 * 0.3).sin() * (1.0 + k as f64 * 0.1)).collect())
            .collect();
        line_plot(
            &dir.join("many.png"),
            &LinePlot {
                title: "Twelve series",
                x_label: "t",
                y_label: "y",
                series: names.iter().zip(&ys).map(|(n, y)| Series::new(n, &t[..5000], y)).collect(),
                ..Default::default()
            },
        )
        .unwrap();
        let panels = [
            LinePlot {
                title: "output vs target",
                y_label: "x_o",
                series: vec![Series::new("output", &t, &x), Series::new("target", &t, &z)],
                size: (1200, 350),
                ..Default::default()
            },
            LinePlot {
                title: "loss",
                y_label: "loss",
                series: vec![Series::new("", &t, &loss)],
                log_y: true,
                size: (1200, 300),
                ..Default::default()
            },
            LinePlot {
                title: "energies",
                x_label: "time t",
                y_label: "energy / phi",
                series: vec![Series::new("L", &t, &l), Series::new("H", &t, &h)],
                size: (1200, 300),
                ..Default::default()
            },
        ];
        stacked_plots(&dir.join("stacked.png"), "Run hsf-sine (replica 0)", &panels).unwrap();
        let xt: Vec<String> = ["0.05", "0.1", "0.2", "0.5", "1"].iter().map(|s| s.to_string()).collect();
        let yt: Vec<String> = ["1e-4", "1e-3", "0.01", "0.1"].iter().map(|s| s.to_string()).collect();
        let values: Vec<f64> = (0..20)
            .map(|k| match k {
                3 => f64::NAN,
                11 => f64::INFINITY,
                _ => 10f64.powf(-(k as f64) / 5.0) * 3.7,
            })
            .collect();
        heatmap(
            &dir.join("heatmap_log.png"),
            &Heatmap {
                title: "Final NMSE",
                x_label: "c tau",
                y_label: "theta",
                x_ticks: &xt,
                y_ticks: &yt,
                values: &values,
                value_label: "NMSE",
                log_color: true,
            },
        )
        .unwrap();
        let nan = [f64::NAN; 6];
        heatmap(
            &dir.join("heatmap_nan.png"),
            &Heatmap { x_ticks: &xt[..3], y_ticks: &yt[..2], values: &nan, value_label: "v", ..Default::default() },
        )
        .unwrap();
        line_plot(
            &dir.join("small.png"),
            &LinePlot {
                title: "Small 400x300",
                x_label: "x",
                y_label: "y",
                series: vec![Series::new("pt", &[1.0], &[2.0]), Series::new("few", &[0.0, 1.0, 2.0], &[1.0, 3.0, 2.0])],
                size: (400, 300),
                ..Default::default()
            },
        )
        .unwrap();
        let tiny_t: Vec<f64> = (0..50).map(|i| 1e-6 * (1.0 + i as f64 * 1e-3)).collect();
        let tiny_y: Vec<f64> = (0..50).map(|i| 1e6 + i as f64 * 0.5).collect();
        line_plot(
            &dir.join("extreme.png"),
            &LinePlot {
                title: "Tiny x, huge y",
                x_label: "x",
                y_label: "y",
                series: vec![Series::new("", &tiny_t, &tiny_y)],
                log_x: true,
                ..Default::default()
            },
        )
        .unwrap();
        let big_x: Vec<String> = (0..30).map(|i| format!("{:.2}", i as f64 * 0.05)).collect();
        let big_y: Vec<String> = (0..20).map(|j| format!("r{j}")).collect();
        let big: Vec<f64> = (0..600).map(|k| ((k % 30) as f64 * 0.2).sin() * ((k / 30) as f64) - 3.0).collect();
        heatmap(
            &dir.join("heatmap_big.png"),
            &Heatmap {
                title: "A larger map",
                x_label: "x",
                y_label: "y",
                x_ticks: &big_x,
                y_ticks: &big_y,
                values: &big,
                value_label: "value",
                log_color: false,
            },
        )
        .unwrap();
    }
}
