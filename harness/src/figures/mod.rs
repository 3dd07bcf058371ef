//! Paper figures from plain data: each function takes numbers and labels, and writes one figure
//! as both `<stem>.png` (1200×800, for drafts, slides and pdfLaTeX) and `<stem>.svg` (same
//! layout, for vector workflows).
//!
//! The chart kinds, one file each:
//! - [`roc()`]: detector ROC curves (false vs true positive rate), with [`roc_points`] and
//!   [`auc`] to compute them from raw scores;
//! - [`histogram()`]: overlaid distance distributions of groups (e.g. same model vs substitutes)
//!   with the calibrated threshold τ as a vertical line;
//! - [`scatter()`]: 2-D embeddings such as PCA of fingerprints, one colour and marker per group;
//! - [`lines()`]: anything over an ordered x — a score over a session with the compaction event
//!   and the alarm marked, detection rate vs severity, power vs probe tokens.
//!
//! Everything shared lives here: the style constants, the Okabe–Ito palette (safe for the
//! common colour-vision deficiencies, and paired with marker shapes so greyscale prints work
//! too), the `Axis` type that handles linear and log scales with readable ticks, the frame (title,
//! ticks, axis labels), the legend (placed where it hides no data, outside the plot if need
//! be), and the atomic two-format save. All text is drawn here rather than by plotters, whose
//! bitmap text rendering mis-spaces glyphs (see `font.rs`). Degenerate input never panics and
//! never errors: ranges are padded and an empty figure says "no data", because a report run
//! should not die on one empty experiment.

mod font;
mod histogram;
mod lines;
mod roc;
mod scatter;

pub use histogram::histogram;
pub use lines::lines;
pub use roc::{auc, roc, roc_points};
pub use scatter::scatter;

use std::fmt::Display;
use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use crate::error::{Error, Result};

/// One named curve: a line in [`roc()`] or [`lines()`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series { label: label.into(), points }
    }
}

/// How an axis maps values to positions. On a log axis, values ≤ 0 cannot be placed and are
/// left out of the drawing (histograms count them as off-scale in the legend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scale {
    #[default]
    Linear,
    Log,
}

/// Okabe & Ito (2008), "Color Universal Design": black, orange, sky blue, bluish green, yellow,
/// blue, vermillion, reddish purple.
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xF0, 0xE4, 0x42),
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
];

/// The order data series take colours in. Black is held back for reference lines (τ, events)
/// and yellow comes last because it is faint on white.
const SERIES_ORDER: [usize; 8] = [5, 6, 3, 1, 7, 2, 0, 4];

/// Colour of the `i`-th data series (cycles after eight).
pub fn series_colour(i: usize) -> RGBColor {
    OKABE_ITO[SERIES_ORDER[i % SERIES_ORDER.len()]]
}

/// Output size in pixels. The SVG uses the same logical size so both formats share one layout.
pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 800;

// Font sizes are plotters sizes: ab_glyph scales ascent+descent to this many pixels, so the em
// is 0.86 of it and capitals 0.63. These give ems of 31, 24, 21 and 19 px — above the
// 28/22/18 px floor for a figure that is shrunk to one column.
const TITLE_PX: u32 = 36;
const MIN_TITLE_PX: u32 = 33;
const AXIS_PX: u32 = 28;
const TICK_PX: u32 = 24;
const LEGEND_PX: u32 = 22;
const NOTE_PX: u32 = 30;
/// plotters-svg writes `font-size` as size/1.24; this makes the SVG em equal the PNG em.
const SVG_SCALE: f64 = 1.24 * 2048.0 / 2384.0;

/// Width of data lines; reference lines are slightly thinner so data stays in front.
const LINE_W: u32 = 3;
const REF_W: u32 = 2;
/// Major ticks wanted per axis at most; the axis picks the nearest "nice" spacing.
const TICKS: usize = 8;

// Layout, in pixels.
const PAD: i32 = 16;
const TICK_LEN: i32 = 7;
const LABEL_GAP: i32 = 8;
const DESC_GAP: i32 = 16;
const TITLE_GAP: i32 = 18;
const LEGEND_INSET: i32 = 12;
const LEGEND_PAD: i32 = 12;
const LEGEND_SYMBOL: i32 = 44;
const LEGEND_LINE: i32 = (LEGEND_PX as i32 * 27) / 20;

/// Marker shapes, used in this order when colours alone run out (and to help greyscale prints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

pub(crate) const MARKERS: [Marker; 4] = [Marker::Circle, Marker::Triangle, Marker::Square, Marker::Cross];

/// Styles of the reference lines (vertical events or thresholds), in the order they are used:
/// all dark and dashed so they never read as data, told apart by dash pattern.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefLine {
    pub colour: RGBColor,
    pub dash: u32,
    pub gap: u32,
}

pub(crate) const REF_LINES: [RefLine; 4] = [
    RefLine { colour: RGBColor(0, 0, 0), dash: 14, gap: 8 },
    RefLine { colour: RGBColor(0, 0, 0), dash: 4, gap: 5 },
    RefLine { colour: RGBColor(0x66, 0x66, 0x66), dash: 24, gap: 6 },
    RefLine { colour: RGBColor(0x66, 0x66, 0x66), dash: 6, gap: 6 },
];

pub(crate) fn ref_line(i: usize) -> RefLine {
    REF_LINES[i % REF_LINES.len()]
}

/// Plotters errors carry the backend's error type; figures only need the message.
pub(crate) type Drawn<T = ()> = std::result::Result<T, String>;

pub(crate) trait Fig<T> {
    fn fig(self) -> Drawn<T>;
}

impl<T, E: Display> Fig<T> for std::result::Result<T, E> {
    fn fig(self) -> Drawn<T> {
        self.map_err(|e| e.to_string())
    }
}

/// A chart kind: draws itself onto any backend, so the PNG and the SVG come from one code path.
pub(crate) trait Figure {
    fn draw<DB: DrawingBackend>(&self, canvas: &Canvas<'_, DB>) -> Drawn;
}

/// The drawing surface plus how its text must be drawn.
pub(crate) struct Canvas<'r, DB: DrawingBackend> {
    pub root: &'r DrawingArea<DB, Shift>,
    /// Bitmap output: place glyphs one by one (plotters spaces them wrongly). SVG output keeps
    /// whole strings, so the text stays selectable and searchable.
    pub bitmap: bool,
}

impl<DB: DrawingBackend> Canvas<'_, DB> {
    /// Draw `s` with its baseline through `at`, aligned to `at` by `h`; `vertical` text runs
    /// bottom to top (its baseline is then the vertical line x = `at.0`).
    pub fn text(&self, s: &str, px: u32, colour: RGBColor, at: (i32, i32), h: HPos, vertical: bool) -> Drawn {
        if s.is_empty() {
            return Ok(());
        }
        let transform = if vertical { FontTransform::Rotate270 } else { FontTransform::None };
        if self.bitmap {
            let (glyphs, width) = font::metrics().layout(s, f64::from(px));
            let start = match h {
                HPos::Left => 0.0,
                HPos::Center => -width / 2.0,
                HPos::Right => -width,
            };
            let style = (font::FAMILY, f64::from(px))
                .into_font()
                .color(&colour)
                .transform(transform)
                .pos(Pos::new(HPos::Left, VPos::Top));
            // plotters' ab_glyph path puts the baseline half the font size below a top anchor.
            let drop = px as i32 / 2;
            for g in glyphs.iter().filter(|g| !g.c.is_whitespace()) {
                let along = (start + g.x).round() as i32;
                let pos = if vertical { (at.0 - drop, at.1 - along) } else { (at.0 + along, at.1 - drop) };
                self.root.draw(&Text::new(g.c.to_string(), pos, style.clone())).fig()?;
            }
        } else {
            let size = f64::from(px) * SVG_SCALE;
            let style = (font::FAMILY, size)
                .into_font()
                .color(&colour)
                .transform(transform)
                .pos(Pos::new(h, VPos::Top));
            // plotters-svg shifts a top-anchored line down by 0.76 em (em = size/1.24).
            let drop = (0.76 * size / 1.24).round() as i32;
            let pos = if vertical { (at.0 - drop, at.1) } else { (at.0, at.1 - drop) };
            self.root.draw(&Text::new(s.to_string(), pos, style)).fig()?;
        }
        Ok(())
    }
}

fn text_width(s: &str, px: u32) -> i32 {
    font::metrics().width(s, f64::from(px)).ceil() as i32
}

fn cap(px: u32) -> i32 {
    font::metrics().cap_height(f64::from(px)).round() as i32
}

// ---------------------------------------------------------------------------------------------
// Axis
// ---------------------------------------------------------------------------------------------

/// A plotters coordinate that owns its scale and tick choice, so linear and log axes are one
/// type (plotters' own log axis is a different type and formats ticks as `0.0001`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Axis {
    pub scale: Scale,
    pub lo: f64,
    pub hi: f64,
    /// Ticks only at whole numbers (counts).
    pub integer: bool,
}

/// Beyond this magnitude a value is treated as a sentinel (e.g. `f64::MAX` for "maximally
/// distant"), not as data: padding such a range would overflow.
const HUGE: f64 = 1e300;

struct Ticks {
    major: Vec<f64>,
    minor: Vec<f64>,
    /// Spacing of evenly spaced majors (for decimal places); `None` for 1-2-5 log ticks.
    step: Option<f64>,
}

impl Axis {
    /// A linear axis over exactly `lo..hi`.
    pub fn fixed(lo: f64, hi: f64) -> Self {
        Axis { scale: Scale::Linear, lo, hi, integer: false }.sane()
    }

    /// A linear count axis from zero, with headroom so the tallest bar does not touch the top.
    pub fn counts(max: f64) -> Self {
        let hi = if max.is_finite() && max > 0.0 { max * 1.12 } else { 1.0 };
        Axis { scale: Scale::Linear, lo: 0.0, hi: hi.max(1.0), integer: true }
    }

    /// An axis spanning `values` with `pad` (fraction of the span) on each side. Values the
    /// scale cannot show are ignored; nothing left gives a unit range; a single value gets a
    /// range around it.
    pub fn fit(scale: Scale, values: impl IntoIterator<Item = f64>, pad: f64) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            if usable(scale, v) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        match scale {
            Scale::Linear => {
                if lo > hi {
                    return Axis::fixed(0.0, 1.0);
                }
                let span = hi - lo;
                if span <= 1e-9 * lo.abs().max(hi.abs()) || span == 0.0 {
                    let half = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 1.0 };
                    Axis::fixed(lo - half, hi + half)
                } else {
                    Axis::fixed(lo - span * pad, hi + span * pad)
                }
            }
            Scale::Log => {
                if lo > hi {
                    return Axis { scale, lo: 1.0, hi: 10.0, integer: false };
                }
                let (l0, l1) = (lo.log10(), hi.log10());
                let span = l1 - l0;
                let (l0, l1) =
                    if span < 1e-9 { (l0 - 0.5, l1 + 0.5) } else { (l0 - span * pad, l1 + span * pad) };
                Axis { scale, lo: 10f64.powf(l0), hi: 10f64.powf(l1), integer: false }.sane()
            }
        }
    }

    /// Guard against hand-made ranges that are empty, reversed or not finite.
    fn sane(self) -> Self {
        let ok = self.lo.is_finite()
            && self.hi.is_finite()
            && self.lo < self.hi
            && (self.scale == Scale::Linear || self.lo > 0.0);
        if ok {
            self
        } else if self.scale == Scale::Log {
            Axis { lo: 1.0, hi: 10.0, ..self }
        } else {
            Axis { lo: 0.0, hi: 1.0, ..self }
        }
    }

    /// Whether `v` can be placed on this axis at all.
    pub fn usable(&self, v: f64) -> bool {
        usable(self.scale, v)
    }

    /// Position of `v` as a fraction of the axis (0 at `lo`, 1 at `hi`).
    pub fn unit(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => {
                let v = if v > 0.0 { v } else { self.lo * 1e-3 };
                (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
            }
        }
    }

    /// The value at fraction `t` of the axis.
    pub fn at(&self, t: f64) -> f64 {
        match self.scale {
            Scale::Linear => self.lo + t * (self.hi - self.lo),
            Scale::Log => 10f64.powf(self.lo.log10() + t * (self.hi.log10() - self.lo.log10())),
        }
    }

    fn ticks(&self) -> Ticks {
        if self.scale == Scale::Log {
            if let Some(t) = self.log_ticks() {
                return t;
            }
        }
        let step = nice_step((self.hi - self.lo) / TICKS as f64, self.integer);
        let major = multiples(self.lo, self.hi, step);
        // A log axis narrower than 1-2-5 spacing gets even ticks; minor lines would only clutter.
        Ticks { major, minor: Vec::new(), step: Some(step) }
    }

    /// Decades when at least three fall on the axis, else 1-2-5 ticks (two labelled decades
    /// leave the reader guessing); `None` when even those give fewer than two ticks.
    fn log_ticks(&self) -> Option<Ticks> {
        let eps = 1e-9;
        let (e0, e1) = ((self.lo.log10() - eps).ceil() as i32, (self.hi.log10() + eps).floor() as i32);
        let inside = |v: f64| v >= self.lo * (1.0 - eps) && v <= self.hi * (1.0 + eps);
        let decades = e1 - e0 + 1;
        if decades >= 3 {
            let stride = ((decades as f64) / TICKS as f64).ceil().max(1.0) as i32;
            let mut major = Vec::new();
            let mut minor = Vec::new();
            for e in (e0 - 1)..=(e1 + 1) {
                let p = 10f64.powi(e);
                if e.rem_euclid(stride) == 0 {
                    if inside(p) {
                        major.push(p);
                    }
                } else if inside(p) {
                    minor.push(p);
                }
                if stride == 1 {
                    minor.extend((2..=9).map(|m| m as f64 * p).filter(|&v| inside(v)));
                }
            }
            return Some(Ticks { major, minor, step: None });
        }
        let mut major = Vec::new();
        let mut minor = Vec::new();
        for e in (e0 - 1)..=(e1 + 1) {
            let p = 10f64.powi(e);
            for m in 1..=9 {
                let v = m as f64 * p;
                if inside(v) {
                    if matches!(m, 1 | 2 | 5) {
                        major.push(v);
                    } else {
                        minor.push(v);
                    }
                }
            }
        }
        (major.len() >= 2).then_some(Ticks { major, minor, step: None })
    }

    /// The tick label for `v`: plain decimals where they are short, `2.5e−5` style otherwise,
    /// with a true minus sign (U+2212) as typeset mathematics uses.
    pub fn label(&self, v: f64) -> String {
        let plain = match self.ticks().step {
            Some(step) => {
                let big = self.lo.abs().max(self.hi.abs());
                if big >= 1e6 || step < 1e-4 {
                    sci(v)
                } else {
                    let mut s = format!("{:.*}", decimals(step), v);
                    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
                        s.remove(0);
                    }
                    s
                }
            }
            None => log_label(v),
        };
        plain.replace('-', "\u{2212}")
    }
}

fn usable(scale: Scale, v: f64) -> bool {
    v.is_finite() && v.abs() < HUGE && (scale == Scale::Linear || v > 0.0)
}

/// The smallest 1-2-2.5-5 × 10^k at or above `raw` (at least 1 for integer axes).
fn nice_step(raw: f64, integer: bool) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * p);
    if integer {
        step.max(1.0).round()
    } else {
        step
    }
}

/// Multiples of `step` within `lo..=hi`, computed from integers so they print cleanly.
fn multiples(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let k0 = (lo / step - 1e-9).ceil() as i64;
    let k1 = (hi / step + 1e-9).floor() as i64;
    if k1 < k0 || k1 - k0 > 1000 {
        return Vec::new();
    }
    (k0..=k1).map(|k| if k == 0 { 0.0 } else { k as f64 * step }).collect()
}

/// Decimal places that show every multiple of `step` exactly.
fn decimals(step: f64) -> usize {
    (0..=10)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(10)
}

/// `2.5e-5`: three significant digits at most, trailing zeros dropped (ASCII minus; [`Axis::label`]
/// typesets it).
fn sci(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let s = format!("{v:.2e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let mantissa = if mantissa.contains('.') {
                mantissa.trim_end_matches('0').trim_end_matches('.')
            } else {
                mantissa
            };
            format!("{mantissa}e{exp}")
        }
        None => s,
    }
}

/// Log-axis ticks are m × 10^e with m in 1..9: decimals for 0.001 … 10000, `1e-4` beyond.
fn log_label(v: f64) -> String {
    let e = v.log10().floor() as i32;
    // Guard against 0.99999 × 10^e from floating point.
    let e = if (v / 10f64.powi(e + 1) - 1.0).abs() < 1e-9 { e + 1 } else { e };
    if (-3..=4).contains(&e) {
        format!("{:.*}", (-e).max(0) as usize, v)
    } else {
        let m = (v / 10f64.powi(e)).round() as i64;
        format!("{m}e{e}")
    }
}

impl ValueFormatter<f64> for Axis {
    /// Only reached without an axis at hand; the mesh uses `format_ext`.
    fn format(value: &f64) -> String {
        sci(*value)
    }

    fn format_ext(&self, value: &f64) -> String {
        self.label(*value)
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        // Clamp so a stray value far off-axis cannot overflow the pixel arithmetic.
        let t = self.unit(*value).clamp(-1.0, 2.0);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let ticks = self.ticks();
        match hint.weight() {
            KeyPointWeight::Bold => ticks.major,
            KeyPointWeight::Any => ticks.minor,
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

// ---------------------------------------------------------------------------------------------
// Frame and legend
// ---------------------------------------------------------------------------------------------

pub(crate) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Axis, Axis>>;

/// What every chart has: a title, two labelled axes.
pub(crate) struct Frame<'s> {
    pub title: &'s str,
    pub x_label: &'s str,
    pub y_label: &'s str,
    pub x: Axis,
    pub y: Axis,
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Symbol {
    Line(RGBColor),
    LineMarker(RGBColor, Marker, i32),
    Marker(RGBColor, Marker, i32),
    Dashed(RefLine),
    /// A filled box with an outline (histogram groups).
    Patch(RGBColor),
    /// Text only ("+3 more", an off-scale note).
    Nothing,
}

/// Legend entries, and where the data is so the legend can avoid it.
#[derive(Default)]
pub(crate) struct Legend {
    entries: Vec<(String, Symbol)>,
    pub occ: Occupancy,
}

impl Legend {
    pub fn add(&mut self, label: impl Into<String>, symbol: Symbol) {
        self.entries.push((label.into(), symbol));
    }

    fn size(&self) -> (i32, i32) {
        let text = self.entries.iter().map(|(l, _)| text_width(l, LEGEND_PX)).max().unwrap_or(0);
        (2 * LEGEND_PAD + LEGEND_SYMBOL + 10 + text, 2 * LEGEND_PAD + LEGEND_LINE * self.entries.len() as i32)
    }
}

/// Where the data is, as fractions of the plot (0..1 on both axes, y up), so the legend can go
/// where it hides nothing.
#[derive(Default)]
pub(crate) struct Occupancy {
    points: Vec<(f64, f64)>,
}

impl Occupancy {
    pub fn point(&mut self, x: &Axis, y: &Axis, p: (f64, f64)) {
        if x.usable(p.0) && y.usable(p.1) {
            self.points.push((x.unit(p.0), y.unit(p.1)));
        }
    }

    /// A polyline, sampled densely enough that a line crossing a corner counts there.
    pub fn path(&mut self, x: &Axis, y: &Axis, pts: &[(f64, f64)]) {
        let u: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| x.usable(p.0) && y.usable(p.1))
            .map(|p| (x.unit(p.0), y.unit(p.1)))
            .collect();
        if let [only] = u[..] {
            self.points.push(only);
        }
        for w in u.windows(2) {
            let (a, b) = (w[0], w[1]);
            let n = (((b.0 - a.0).hypot(b.1 - a.1) / 0.005).ceil() as usize).clamp(1, 1000);
            self.points.extend((0..=n).map(|i| {
                let t = i as f64 / n as f64;
                (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))
            }));
        }
    }

    /// A vertical line at fraction `t` across the whole plot.
    pub fn vertical(&mut self, t: f64) {
        self.points.extend((0..=100).map(|i| (t, i as f64 / 100.0)));
    }

    pub fn horizontal(&mut self, t: f64) {
        self.points.extend((0..=100).map(|i| (i as f64 / 100.0, t)));
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Samples inside a box given in plot fractions.
    fn count(&self, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> usize {
        self.points.iter().filter(|&&(x, y)| x >= x0 && x <= x1 && y >= y0 && y <= y1).count()
    }
}

/// Legend positions inside the plot as (x, y) fractions of the free room, y up; the order
/// breaks ties, corners first.
const CORNERS: [(f64, f64); 8] =
    [(1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (0.5, 1.0), (1.0, 0.5), (0.0, 0.5), (0.5, 0.0)];

/// The legend's top-left pixel at `corner` of a plot with top-left `origin` and size `plot`.
fn corner_origin(corner: (f64, f64), origin: (i32, i32), plot: (i32, i32), legend: (i32, i32)) -> (i32, i32) {
    let room = ((plot.0 - 2 * LEGEND_INSET - legend.0).max(0), (plot.1 - 2 * LEGEND_INSET - legend.1).max(0));
    (
        origin.0 + LEGEND_INSET + (corner.0 * f64::from(room.0)).round() as i32,
        origin.1 + LEGEND_INSET + ((1.0 - corner.1) * f64::from(room.1)).round() as i32,
    )
}

/// The inside position covering the fewest data samples, and how many it covers.
fn best_corner(occ: &Occupancy, plot: (i32, i32), legend: (i32, i32)) -> ((f64, f64), usize) {
    let (pw, ph) = (f64::from(plot.0.max(1)), f64::from(plot.1.max(1)));
    let mut best = (CORNERS[0], usize::MAX);
    for corner in CORNERS {
        let (x, y) = corner_origin(corner, (0, 0), plot, legend);
        // A few pixels of clearance so a line grazing the box still counts.
        let xs = (f64::from(x - 4) / pw, f64::from(x + legend.0 + 4) / pw);
        let ys = (1.0 - f64::from(y + legend.1 + 4) / ph, 1.0 - f64::from(y - 4) / ph);
        let n = occ.count(xs, ys);
        if n < best.1 {
            best = (corner, n);
        }
    }
    best
}

/// A chart with its frame drawn, and where its legend goes.
pub(crate) struct Plot<'r, DB: DrawingBackend> {
    pub chart: Chart<'r, DB>,
    legend_at: Option<(i32, i32)>,
}

/// Fit the title on the canvas: shrink it a little, then wrap it onto two lines.
fn title_lines(title: &str, room: i32) -> (u32, Vec<String>) {
    for px in (MIN_TITLE_PX..=TITLE_PX).rev() {
        if text_width(title, px) <= room {
            return (px, vec![title.to_string()]);
        }
    }
    let mid = title.len() / 2;
    let split =
        title.char_indices().filter(|&(_, c)| c == ' ').map(|(i, _)| i).min_by_key(|&i| i.abs_diff(mid));
    match split {
        Some(i) => (MIN_TITLE_PX, vec![title[..i].to_string(), title[i + 1..].to_string()]),
        None => (MIN_TITLE_PX, vec![title.to_string()]),
    }
}

/// Draw title, axes, ticks, tick labels and axis labels, sizing every margin from the text
/// it has to hold so nothing is clipped whatever the value range; and decide where the legend
/// goes: in the emptiest spot inside the plot, or beside it when every spot would hide data.
pub(crate) fn frame<'r, DB: DrawingBackend>(
    cv: &Canvas<'r, DB>,
    f: &Frame<'_>,
    legend: &Legend,
) -> Drawn<Plot<'r, DB>> {
    let m = font::metrics();
    let (w, h) = (WIDTH as i32, HEIGHT as i32);
    let (x_ticks, y_ticks) = (f.x.ticks().major, f.y.ticks().major);
    let y_tick_w = y_ticks.iter().map(|&v| text_width(&f.y.label(v), TICK_PX)).max().unwrap_or(0);
    let x_tick_half = x_ticks.last().map(|&v| text_width(&f.x.label(v), TICK_PX) / 2 + 1).unwrap_or(0);

    let (title_px, lines) = title_lines(f.title, w - 2 * PAD);
    let title_step = (f64::from(title_px) * 1.2).round() as i32;
    let first_baseline = PAD + m.ascent(f64::from(title_px)).round() as i32;
    let title_bottom = first_baseline
        + title_step * (lines.len() as i32 - 1)
        + m.descent(f64::from(title_px)).round() as i32;
    let top = title_bottom + TITLE_GAP;
    let (axis_asc, axis_desc) =
        (m.ascent(f64::from(AXIS_PX)).ceil() as i32, m.descent(f64::from(AXIS_PX)).ceil() as i32);
    let x_area = TICK_LEN + LABEL_GAP + TICK_PX as i32 + DESC_GAP + axis_asc + axis_desc;
    let y_area = TICK_LEN + LABEL_GAP + y_tick_w + DESC_GAP + axis_asc + axis_desc;
    let right_inside = x_tick_half.max(8) + PAD;

    let (lw, lh) = legend.size();
    let plot_w = |right: i32| w - right - PAD - y_area;
    let plot_h = h - top - PAD - x_area;
    // Inside at `corner`, or beside the plot (None); no entries, no legend.
    let placement = if legend.entries.is_empty() {
        None
    } else {
        let (corner, covered) = best_corner(&legend.occ, (plot_w(right_inside), plot_h), (lw, lh));
        let outside = lw + 2 * PAD;
        // Beside the plot only when that leaves the plot most of the width.
        let fits_outside = plot_w(outside.max(right_inside)) >= w * 55 / 100 && lh <= plot_h;
        Some(if covered == 0 || !fits_outside { Some(corner) } else { None })
    };
    let right = match placement {
        Some(None) => (lw + 2 * PAD).max(right_inside),
        _ => right_inside,
    };

    let mut chart = ChartBuilder::on(cv.root)
        .margin_top(top)
        .margin_left(PAD)
        .margin_bottom(PAD)
        .margin_right(right)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(f.x, f.y)
        .fig()?;
    // plotters draws only the grid; axes, ticks and all text are drawn below, because plotters
    // would emit an empty SVG <text> for every unlabelled tick.
    chart
        .configure_mesh()
        .x_labels(TICKS)
        .y_labels(TICKS)
        .disable_axes()
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.05))
        .draw()
        .fig()?;

    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let widest = lines.iter().map(|l| text_width(l, title_px)).max().unwrap_or(0);
    let title_x =
        ((xr.start + xr.end) / 2).clamp(PAD + widest / 2, (w - PAD - widest / 2).max(PAD + widest / 2));
    for (i, line) in lines.iter().enumerate() {
        cv.text(
            line,
            title_px,
            BLACK,
            (title_x, first_baseline + title_step * i as i32),
            HPos::Center,
            false,
        )?;
    }
    let (left, bottom) = chart.backend_coord(&(f.x.lo, f.y.lo));
    let (right, top_px) = chart.backend_coord(&(f.x.hi, f.y.hi));
    let axis = ShapeStyle::from(&BLACK.mix(0.8)).stroke_width(2);
    cv.root.draw(&PathElement::new(vec![(left, top_px), (left, bottom), (right, bottom)], axis)).fig()?;
    for &v in &x_ticks {
        let x = chart.backend_coord(&(v, f.y.lo)).0;
        cv.root.draw(&PathElement::new(vec![(x, bottom), (x, bottom + TICK_LEN)], axis)).fig()?;
        let baseline = yr.end + TICK_LEN + LABEL_GAP + cap(TICK_PX);
        cv.text(&f.x.label(v), TICK_PX, BLACK, (x, baseline), HPos::Center, false)?;
    }
    for &v in &y_ticks {
        let y = chart.backend_coord(&(f.x.lo, v)).1;
        cv.root.draw(&PathElement::new(vec![(left - TICK_LEN, y), (left, y)], axis)).fig()?;
        cv.text(
            &f.y.label(v),
            TICK_PX,
            BLACK,
            (xr.start - TICK_LEN - LABEL_GAP, y + cap(TICK_PX) / 2),
            HPos::Right,
            false,
        )?;
    }
    cv.text(f.x_label, AXIS_PX, BLACK, ((xr.start + xr.end) / 2, h - PAD - axis_desc), HPos::Center, false)?;
    cv.text(f.y_label, AXIS_PX, BLACK, (PAD + axis_asc, (yr.start + yr.end) / 2), HPos::Center, true)?;

    let plot = (xr.end - xr.start, yr.end - yr.start);
    let legend_at = placement.map(|inside| match inside {
        Some(corner) => corner_origin(corner, (xr.start, yr.start), plot, (lw, lh)),
        None => (xr.end + PAD, yr.start),
    });
    Ok(Plot { chart, legend_at })
}

/// Draw the legend where [`frame`] placed it: a white, slightly transparent box with a thin
/// border, so anything it does overlap stays visible.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    cv: &Canvas<'_, DB>,
    plot: &Plot<'_, DB>,
    legend: &Legend,
) -> Drawn {
    let Some((x, y)) = plot.legend_at else { return Ok(()) };
    let (lw, lh) = legend.size();
    cv.root.draw(&Rectangle::new([(x, y), (x + lw, y + lh)], WHITE.mix(0.88).filled())).fig()?;
    cv.root
        .draw(&Rectangle::new([(x, y), (x + lw, y + lh)], ShapeStyle::from(&BLACK.mix(0.5)).stroke_width(1)))
        .fig()?;
    for (i, (label, symbol)) in legend.entries.iter().enumerate() {
        let cy = y + LEGEND_PAD + LEGEND_LINE * i as i32 + LEGEND_LINE / 2;
        let (x0, x1) = (x + LEGEND_PAD, x + LEGEND_PAD + LEGEND_SYMBOL);
        let mid = (x0 + x1) / 2;
        match *symbol {
            Symbol::Line(c) => cv
                .root
                .draw(&PathElement::new(vec![(x0, cy), (x1, cy)], ShapeStyle::from(&c).stroke_width(LINE_W)))
                .fig()?,
            Symbol::LineMarker(c, shape, size) => {
                cv.root
                    .draw(&PathElement::new(
                        vec![(x0, cy), (x1, cy)],
                        ShapeStyle::from(&c).stroke_width(LINE_W),
                    ))
                    .fig()?;
                markers_px(cv.root, &[(mid, cy)], shape, size, c)?;
            }
            Symbol::Marker(c, shape, size) => markers_px(cv.root, &[(mid, cy)], shape, size, c)?,
            Symbol::Dashed(r) => {
                let stroke = ShapeStyle::from(&r.colour).stroke_width(REF_W);
                cv.root
                    .draw(&DashedPathElement::new(
                        vec![(x0, cy), (x1, cy)],
                        r.dash as i32,
                        r.gap as i32,
                        stroke,
                    ))
                    .fig()?
            }
            Symbol::Patch(c) => {
                let corners = [(x0, cy - 9), (x1, cy + 9)];
                cv.root.draw(&Rectangle::new(corners, c.mix(0.22).filled())).fig()?;
                cv.root.draw(&Rectangle::new(corners, ShapeStyle::from(&c).stroke_width(LINE_W))).fig()?;
            }
            Symbol::Nothing => {}
        }
        cv.text(label, LEGEND_PX, BLACK, (x1 + 10, cy + cap(LEGEND_PX) / 2), HPos::Left, false)?;
    }
    Ok(())
}

/// Markers of `shape` centred on pixel positions, filled with `colour` and outlined so light
/// colours (yellow, sky blue) stay visible on white.
pub(crate) fn markers_px<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pts: &[(i32, i32)],
    shape: Marker,
    size: i32,
    colour: RGBColor,
) -> Drawn {
    let fill = colour.mix(0.85).filled();
    let edge = ShapeStyle::from(&BLACK.mix(0.55)).stroke_width(1);
    let s = size;
    // A triangle looks smaller than a circle of the same radius; enlarge it a little.
    let (t, b) = (s + 2, (s + 2) * 3 / 4);
    let q = s * 9 / 10;
    let stroke = ShapeStyle::from(&colour).stroke_width(3);
    for &p in pts {
        let at = EmptyElement::at(p);
        match shape {
            Marker::Circle => root.draw(&(at + Circle::new((0, 0), s, fill) + Circle::new((0, 0), s, edge))),
            Marker::Triangle => root.draw(
                &(at + Polygon::new(vec![(0, -t), (t, b), (-t, b)], fill)
                    + PathElement::new(vec![(0, -t), (t, b), (-t, b), (0, -t)], edge)),
            ),
            Marker::Square => root.draw(
                &(at + Rectangle::new([(-q, -q), (q, q)], fill) + Rectangle::new([(-q, -q), (q, q)], edge)),
            ),
            Marker::Cross => root.draw(
                &(at + PathElement::new(vec![(-s, -s), (s, s)], stroke)
                    + PathElement::new(vec![(-s, s), (s, -s)], stroke)),
            ),
        }
        .fig()?;
    }
    Ok(())
}

/// Markers at data points.
pub(crate) fn markers<DB: DrawingBackend>(
    cv: &Canvas<'_, DB>,
    chart: &Chart<'_, DB>,
    pts: &[(f64, f64)],
    shape: Marker,
    size: i32,
    colour: RGBColor,
) -> Drawn {
    let px: Vec<(i32, i32)> = pts.iter().map(|p| chart.backend_coord(p)).collect();
    markers_px(cv.root, &px, shape, size, colour)
}

/// A data line. The bitmap backend mitres every joint of a thick polyline, which throws spikes
/// at the sharp turns of a ROC staircase or a histogram outline; there, segments are drawn one
/// by one with round dots at the joints instead. SVG viewers join lines properly.
pub(crate) fn polyline<DB: DrawingBackend>(
    cv: &Canvas<'_, DB>,
    chart: &Chart<'_, DB>,
    pts: &[(f64, f64)],
    colour: RGBColor,
    width: u32,
) -> Drawn {
    let mut px: Vec<(i32, i32)> = pts.iter().map(|p| chart.backend_coord(p)).collect();
    px.dedup();
    let style = ShapeStyle::from(&colour).stroke_width(width);
    if !cv.bitmap {
        return cv.root.draw(&PathElement::new(px, style)).fig();
    }
    for w in px.windows(2) {
        cv.root.draw(&PathElement::new(vec![w[0], w[1]], style)).fig()?;
    }
    let dot = ShapeStyle::from(&colour).filled();
    for &p in &px {
        cv.root.draw(&Circle::new(p, (width / 2) as i32, dot)).fig()?;
    }
    Ok(())
}

/// A dashed reference line between two data points.
pub(crate) fn dashed<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    from: (f64, f64),
    to: (f64, f64),
    style: RefLine,
) -> Drawn {
    let stroke = ShapeStyle::from(&style.colour).stroke_width(REF_W);
    chart
        .draw_series(DashedLineSeries::new(vec![from, to], style.dash as i32, style.gap as i32, stroke))
        .fig()?;
    Ok(())
}

/// A grey note across the middle of an empty plot, so an empty experiment is visibly empty
/// rather than looking like a rendering failure.
pub(crate) fn no_data<DB: DrawingBackend>(cv: &Canvas<'_, DB>, plot: &Plot<'_, DB>) -> Drawn {
    let (xr, yr) = plot.chart.plotting_area().get_pixel_range();
    let (cx, cy) = ((xr.start + xr.end) / 2, (yr.start + yr.end) / 2);
    // On a white patch: a reference line (the ROC diagonal) may run through the middle.
    let (half_w, half_h) = (text_width("no data", NOTE_PX) / 2 + 12, NOTE_PX as i32 / 2 + 8);
    cv.root
        .draw(&Rectangle::new([(cx - half_w, cy - half_h), (cx + half_w, cy + half_h)], WHITE.filled()))
        .fig()?;
    cv.text("no data", NOTE_PX, RGBColor(0x77, 0x77, 0x77), (cx, cy + cap(NOTE_PX) / 2), HPos::Center, false)
}

// ---------------------------------------------------------------------------------------------
// Saving
// ---------------------------------------------------------------------------------------------

/// Render `fig` to `<stem>.png` and `<stem>.svg`. Each file is written to a temporary name in
/// the target directory and renamed into place, so a crash or a concurrent reader never sees
/// a half-written figure, and a LaTeX build never picks up a truncated PNG.
pub(crate) fn save(stem: &Path, fig: &impl Figure) -> Result<Vec<PathBuf>> {
    font::ensure()?;
    let name = stem.file_name().ok_or_else(|| {
        Error::input("figure path", format!("`{}` does not end in a file name", stem.display()))
    })?;
    let dir = match stem.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    // Append rather than `with_extension`, which would eat a dot in the stem ("auc-0.9").
    let named = |ext: &str| {
        let mut n = name.to_os_string();
        n.push(ext);
        dir.join(n)
    };
    let (png, svg) = (named(".png"), named(".svg"));
    let fail = |e: String| Error::run(format!("figure {}: {e}", stem.display()));

    // The bitmap backend encodes by file extension, so the temporary file must end in .png.
    let tmp =
        tempfile::Builder::new().prefix(".fig-").suffix(".png").tempfile_in(&dir).map_err(Error::io(&dir))?;
    {
        let root = BitMapBackend::new(tmp.path(), (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).fig().map_err(fail)?;
        fig.draw(&Canvas { root: &root, bitmap: true }).map_err(fail)?;
        root.present().fig().map_err(fail)?;
    }
    publish(tmp, &png)?;

    let mut svg_text = String::new();
    {
        let root = SVGBackend::with_string(&mut svg_text, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).fig().map_err(fail)?;
        fig.draw(&Canvas { root: &root, bitmap: false }).map_err(fail)?;
        root.present().fig().map_err(fail)?;
    }
    let mut tmp =
        tempfile::Builder::new().prefix(".fig-").suffix(".svg").tempfile_in(&dir).map_err(Error::io(&dir))?;
    tmp.write_all(svg_text.as_bytes()).map_err(Error::io(tmp.path()))?;
    tmp.flush().map_err(Error::io(tmp.path()))?;
    publish(tmp, &svg)?;

    Ok(vec![png, svg])
}

/// Rename a finished temporary file into place, readable by others like any output file
/// (temporary files are created owner-only).
fn publish(tmp: tempfile::NamedTempFile, to: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).map_err(Error::io(tmp.path()))?;
    }
    tmp.persist(to).map_err(|e| Error::io(to)(e.error))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};

    /// Both files exist; the PNG has the signature and a 1200×800 IHDR; the SVG is text with
    /// the title in it; no temporary files are left behind.
    pub fn check_outputs(written: &[PathBuf], stem: &Path, title: &str) {
        let name = stem.file_name().unwrap().to_string_lossy();
        let png = stem.with_file_name(format!("{name}.png"));
        let svg = stem.with_file_name(format!("{name}.svg"));
        assert_eq!(written, &[png.clone(), svg.clone()]);
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((w, h), (super::WIDTH, super::HEIGHT));
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("<svg"), "not an SVG");
        assert!(text.contains(title), "SVG lacks the title {title:?}");
        let leftovers: Vec<_> = std::fs::read_dir(png.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".fig-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_nice() {
        let a = Axis::fixed(-0.02, 1.02);
        assert_eq!(a.ticks().major, vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(a.label(0.6000000000000001), "0.6");
        let c = Axis::counts(3.0);
        assert!(c.ticks().major.iter().all(|v| v.fract() == 0.0));
        assert_eq!(c.label(2.0), "2");
    }

    #[test]
    fn log_ticks_and_labels() {
        let a = Axis::fit(Scale::Log, [1e-5, 3e-2], 0.05);
        let t = a.ticks();
        assert!(t.major.contains(&1e-4) && t.major.contains(&1e-3));
        assert_eq!(a.label(1e-5), "1e\u{2212}5");
        assert_eq!(a.label(1e-3), "0.001");
        assert_eq!(a.label(1e-2), "0.01");
        assert_eq!(log_label(1e5), "1e5");
        assert_eq!(log_label(2e-6), "2e-6");
        assert_eq!(log_label(1000.0), "1000");
        // Under two decades: 1-2-5 ticks.
        let b = Axis::fit(Scale::Log, [0.3, 4.0], 0.0);
        assert_eq!(b.ticks().major, vec![0.5, 1.0, 2.0]);
        // Narrower still: even ticks.
        let n = Axis::fit(Scale::Log, [3.0, 3.4], 0.0);
        assert!(n.ticks().major.len() >= 2);
    }

    #[test]
    fn degenerate_ranges_are_padded() {
        let a = Axis::fit(Scale::Linear, [5.0, 5.0], 0.05);
        assert!(a.lo < 5.0 && a.hi > 5.0);
        let z = Axis::fit(Scale::Linear, [0.0], 0.05);
        assert!(z.lo < 0.0 && z.hi > 0.0);
        let e = Axis::fit(Scale::Linear, [], 0.05);
        assert_eq!((e.lo, e.hi), (0.0, 1.0));
        let l = Axis::fit(Scale::Log, [0.0, -1.0, f64::NAN, f64::MAX], 0.05);
        assert_eq!((l.lo, l.hi), (1.0, 10.0));
        let one = Axis::fit(Scale::Log, [0.0, 7.0], 0.05);
        assert!(one.lo < 7.0 && one.hi > 7.0 && one.lo > 0.0);
        assert!(!one.ticks().major.is_empty());
        // Labels of tiny and huge linear ranges use exponents.
        assert_eq!(Axis::fixed(0.0, 1e-6).label(5e-7), "5e\u{2212}7");
        assert_eq!(Axis::fixed(-2.0, 2.0).label(-1.0), "\u{2212}1.0");
        assert_eq!(Axis::fixed(0.0, 4e7).label(2e7), "2e7");
    }

    #[test]
    fn sci_trims() {
        assert_eq!(sci(2.5e-5), "2.5e-5");
        assert_eq!(sci(1e-4), "1e-4");
        assert_eq!(sci(0.0), "0");
    }

    /// Realistic demo figures for eyeballing: `cargo test --release --lib figures -- --ignored`.
    #[test]
    #[ignore]
    fn demo_figures() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, LogNormal, Normal};
        let dir = Path::new("/tmp/fig-demo");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);

        // Distances of the same model re-run (small) vs substitutes (larger), log-normal.
        let same: Vec<f64> = LogNormal::new(-7.0, 0.6).unwrap().sample_iter(&mut rng).take(400).collect();
        let mut subs: Vec<f64> = LogNormal::new(-3.5, 1.0).unwrap().sample_iter(&mut rng).take(300).collect();
        subs.extend([f64::MAX, f64::MAX, f64::INFINITY]);
        let quant: Vec<f64> = LogNormal::new(-5.2, 0.5).unwrap().sample_iter(&mut rng).take(200).collect();
        let tau = 3.2e-3;
        histogram(
            dir.join("histogram"),
            "Fingerprint distance to the reference model",
            "Distance (mean KL divergence, nats)",
            &[
                ("same model".into(), same.clone()),
                ("quantised".into(), quant.clone()),
                ("substitutes".into(), subs.clone()),
            ],
            Scale::Log,
            &[("calibrated threshold τ".into(), tau)],
        )
        .unwrap();

        let neg: Vec<f64> = same.clone();
        let curves = vec![
            {
                let p = roc_points(&neg, &subs);
                Series::new(format!("substitutes (AUC {:.3})", auc(&p)), p)
            },
            {
                let p = roc_points(&neg, &quant);
                Series::new(format!("quantised (AUC {:.3})", auc(&p)), p)
            },
            {
                let n: Vec<f64> = Normal::new(0.0, 1.0).unwrap().sample_iter(&mut rng).take(200).collect();
                let q: Vec<f64> = Normal::new(0.8, 1.0).unwrap().sample_iter(&mut rng).take(200).collect();
                let p = roc_points(&n, &q);
                Series::new(format!("same family, fine-tuned (AUC {:.3})", auc(&p)), p)
            },
        ];
        roc(dir.join("roc"), "Detecting model substitution (same family)", &curves).unwrap();

        // PCA of fingerprints: 5 model identities in clusters.
        let mut pts = Vec::new();
        let names = ["llama-3.2-1b", "qwen2.5-0.5b", "qwen2.5-1.5b", "smollm2-360m", "phi-3.5-mini"];
        for (i, name) in names.iter().enumerate() {
            let cx = (i as f64 * 1.3).cos() * 4.0;
            let cy = (i as f64 * 1.3).sin() * 3.0;
            let n = Normal::new(0.0, 0.7).unwrap();
            for _ in 0..40 {
                pts.push((cx + n.sample(&mut rng), cy + n.sample(&mut rng), name.to_string()));
            }
        }
        scatter(
            dir.join("scatter"),
            "PCA of output fingerprints",
            "PC 1 (34% of variance)",
            "PC 2 (21% of variance)",
            &pts,
        )
        .unwrap();
        // Many groups: exercises shape cycling and the "+N more" legend.
        let mut many = Vec::new();
        for g in 0..15 {
            let n = Normal::new(0.0, 0.35).unwrap();
            for _ in 0..12 {
                let a = g as f64 / 15.0 * std::f64::consts::TAU;
                many.push((
                    a.cos() * 3.0 + n.sample(&mut rng),
                    a.sin() * 3.0 + n.sample(&mut rng),
                    format!("model-{g:02}"),
                ));
            }
        }
        scatter(dir.join("scatter-many"), "PCA of fingerprints, 15 identities", "PC 1", "PC 2", &many)
            .unwrap();

        // Score over a session with a compaction event and an alarm.
        let noise = Normal::new(0.0, 0.02).unwrap();
        let score: Vec<(f64, f64)> = (0..120)
            .map(|t| {
                let base = if t < 64 { 0.12 } else { 0.12 + 0.5 * (1.0 - (-(t as f64 - 64.0) / 6.0).exp()) };
                (t as f64, base + noise.sample(&mut rng))
            })
            .collect();
        lines(
            dir.join("lines-session"),
            "Drift score over a session",
            "Turn (agent steps)",
            "Drift score (nats)",
            &[Series::new("drift score", score)],
            Scale::Linear,
            Scale::Linear,
            &[("compaction event".into(), 64.0), ("detector alarm".into(), 69.0)],
            Some(("alarm threshold".into(), 0.35)),
        )
        .unwrap();

        // Power vs probe tokens on a log x axis.
        let tokens = [16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0];
        let power =
            |k: f64| -> Vec<(f64, f64)> { tokens.iter().map(|&t| (t, 1.0 - (-(t / k)).exp())).collect() };
        lines(
            dir.join("lines-power"),
            "Detection power vs probe budget",
            "Probe tokens (log scale)",
            "Detection rate (fraction of substitutions)",
            &[
                Series::new("different family", power(20.0)),
                Series::new("same family", power(150.0)),
                Series::new("quantised (int4)", power(900.0)),
            ],
            Scale::Log,
            Scale::Linear,
            &[],
            Some(("target power 0.8".into(), 0.8)),
        )
        .unwrap();

        // Log-log with a tiny range and a dotted stem.
        lines(
            dir.join("lines-loglog"),
            "False alarm rate vs calibration set size",
            "Calibration prompts",
            "False alarm rate (per session)",
            &[Series::new(
                "measured",
                vec![(10.0, 0.08), (30.0, 0.02), (100.0, 4e-3), (300.0, 9e-4), (1000.0, 2e-4)],
            )],
            Scale::Log,
            Scale::Log,
            &[],
            Some(("budget 1e-3".into(), 1e-3)),
        )
        .unwrap();

        // Degenerate and empty versions, to look at too.
        histogram(dir.join("histogram-empty"), "Empty histogram", "Distance (nats)", &[], Scale::Log, &[])
            .unwrap();
        histogram(
            dir.join("histogram-equal"),
            "All values equal",
            "Distance (nats)",
            &[("same".into(), vec![0.5; 20])],
            Scale::Linear,
            &[("τ".into(), 0.5)],
        )
        .unwrap();
        roc(dir.join("roc-empty"), "ROC with no curves", &[]).unwrap();
    }
}
