//! The one typeface every figure uses, compiled into the binary, and its metrics.
//!
//! plotters' `ab_glyph` backend has no access to system fonts, and a paper build machine may
//! have none installed; embedding DejaVu Sans (licence in `harness/assets/fonts/`) makes every
//! PNG render identically everywhere. SVG text names the family as `DejaVu Sans, sans-serif`,
//! so a viewer uses the same face when it has it and a plain sans-serif otherwise.
//!
//! The metrics (advance widths, side bearings, kerning) are read from the font here because
//! plotters 0.3.7 draws each glyph of a string at the pen position without its left side
//! bearing, which leaves visible gaps ("agen t", "fami ly"). The bitmap path therefore places
//! glyphs one by one at positions computed from these metrics; the same metrics size every
//! label area and legend box, so layout does not depend on the backend.

use std::collections::HashMap;
use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};

/// The family every text element asks for. It doubles as the SVG `font-family` value, hence
/// the CSS fallback list; plotters only uses it as a key into its font table.
pub(crate) const FAMILY: &str = "DejaVu Sans, sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Register the embedded font once per process, under [`FAMILY`] and under plotters' generic
/// `sans-serif` (so any text plotters styles by default finds it too). Only the regular face
/// is registered: plotters falls back to `Normal` for other styles, and the figures use none.
pub(crate) fn ensure() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        [FAMILY, "sans-serif"].iter().all(|name| register_font(name, FontStyle::Normal, DEJAVU_SANS).is_ok())
            && Metrics::parse(DEJAVU_SANS).is_some()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::run("figures: the embedded DejaVu Sans font did not parse"))
    }
}

/// Horizontal metrics of the embedded font, in font units.
pub(crate) struct Metrics {
    ascender: f64,
    descender: f64,
    units_per_em: f64,
    advance: Vec<u16>,
    lsb: Vec<i16>,
    kern: HashMap<(u16, u16), i16>,
    cmap: Cmap,
}

/// A format-4 (Unicode BMP) character map, kept as raw segments.
struct Cmap {
    end: Vec<u16>,
    start: Vec<u16>,
    delta: Vec<u16>,
    /// (offset value, absolute byte position of that offset) per segment.
    range_offset: Vec<(u16, usize)>,
}

/// One placed glyph: the character and where its ink starts, in pixels from the text origin.
pub(crate) struct Placed {
    pub c: char,
    pub x: f64,
}

/// The metrics of the embedded font (parsed on first use; [`ensure`] has checked they parse).
pub(crate) fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS
        .get_or_init(|| Metrics::parse(DEJAVU_SANS).expect("embedded font checked by figures::font::ensure"))
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*d.get(at)?, *d.get(at + 1)?, *d.get(at + 2)?, *d.get(at + 3)?]))
}

impl Metrics {
    fn parse(d: &[u8]) -> Option<Metrics> {
        let n_tables = u16_at(d, 4)? as usize;
        let mut tables = HashMap::new();
        for i in 0..n_tables {
            let rec = 12 + 16 * i;
            let tag = d.get(rec..rec + 4)?;
            tables.insert(tag.to_vec(), u32_at(d, rec + 8)? as usize);
        }
        let table = |t: &[u8]| tables.get(t).copied();
        let head = table(b"head")?;
        let hhea = table(b"hhea")?;
        let hmtx = table(b"hmtx")?;
        let maxp = table(b"maxp")?;
        let units_per_em = f64::from(u16_at(d, head + 18)?);
        let mut ascender = f64::from(u16_at(d, hhea + 4)? as i16);
        let mut descender = f64::from(u16_at(d, hhea + 6)? as i16);
        // ttf-parser (behind ab_glyph) prefers the typographic metrics when the font asks.
        if let Some(os2) = table(b"OS/2") {
            if u16_at(d, os2 + 62)? & (1 << 7) != 0 {
                ascender = f64::from(u16_at(d, os2 + 68)? as i16);
                descender = f64::from(u16_at(d, os2 + 70)? as i16);
            }
        }
        let n_hmetrics = u16_at(d, hhea + 34)? as usize;
        let n_glyphs = u16_at(d, maxp + 4)? as usize;
        let mut advance = Vec::with_capacity(n_glyphs);
        let mut lsb = Vec::with_capacity(n_glyphs);
        for g in 0..n_glyphs {
            if g < n_hmetrics {
                advance.push(u16_at(d, hmtx + 4 * g)?);
                lsb.push(u16_at(d, hmtx + 4 * g + 2)? as i16);
            } else {
                advance.push(*advance.last()?);
                lsb.push(u16_at(d, hmtx + 4 * n_hmetrics + 2 * (g - n_hmetrics))? as i16);
            }
        }
        let kern = table(b"kern").map(|k| parse_kern(d, k)).unwrap_or_default();
        let cmap = parse_cmap(d, table(b"cmap")?)?;
        Some(Metrics { ascender, descender, units_per_em, advance, lsb, kern, cmap })
    }

    /// Pixels per font unit at plotters font size `px` (ab_glyph scales ascent−descent to px).
    fn scale(&self, px: f64) -> f64 {
        px / (self.ascender - self.descender)
    }

    /// Height of capital letters above the baseline, in pixels.
    pub fn cap_height(&self, px: f64) -> f64 {
        // DejaVu Sans caps are 0.729 em; reading OS/2 sCapHeight would add a table for nothing.
        0.729 * self.units_per_em * self.scale(px)
    }

    pub fn ascent(&self, px: f64) -> f64 {
        self.ascender * self.scale(px)
    }

    pub fn descent(&self, px: f64) -> f64 {
        -self.descender * self.scale(px)
    }

    fn glyph(&self, c: char) -> u16 {
        let c = c as u32;
        if c > 0xFFFF {
            return 0;
        }
        let c = c as u16;
        let m = &self.cmap;
        let Some(i) = m.end.iter().position(|&e| e >= c) else { return 0 };
        if m.start[i] > c {
            return 0;
        }
        let (offset, at) = m.range_offset[i];
        if offset == 0 {
            return c.wrapping_add(m.delta[i]);
        }
        let addr = at + offset as usize + 2 * (c - m.start[i]) as usize;
        match u16_at(DEJAVU_SANS, addr) {
            Some(0) | None => 0,
            Some(g) => g.wrapping_add(m.delta[i]),
        }
    }

    /// Lay out `text` at size `px`: for each character, where its ink should start.
    /// Returns the glyphs and the advance width of the whole string.
    pub fn layout(&self, text: &str, px: f64) -> (Vec<Placed>, f64) {
        let s = self.scale(px);
        let mut pen = 0.0;
        let mut prev = None;
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            let g = self.glyph(c) as usize;
            if let Some(p) = prev {
                pen += f64::from(*self.kern.get(&(p, g as u16)).unwrap_or(&0)) * s;
            }
            let lsb = f64::from(*self.lsb.get(g).unwrap_or(&0)) * s;
            out.push(Placed { c, x: pen + lsb });
            pen += f64::from(*self.advance.get(g).unwrap_or(&0)) * s;
            prev = Some(g as u16);
        }
        (out, pen)
    }

    pub fn width(&self, text: &str, px: f64) -> f64 {
        self.layout(text, px).1
    }
}

fn parse_kern(d: &[u8], at: usize) -> HashMap<(u16, u16), i16> {
    let mut pairs = HashMap::new();
    let (Some(0), Some(n)) = (u16_at(d, at), u16_at(d, at + 2)) else { return pairs };
    let mut sub = at + 4;
    for _ in 0..n {
        let (Some(len), Some(coverage)) = (u16_at(d, sub + 2), u16_at(d, sub + 4)) else { break };
        // Format 0, horizontal, not cross-stream or minimum values.
        if coverage >> 8 == 0 && coverage & 0b111 == 1 {
            let n_pairs = u16_at(d, sub + 6).unwrap_or(0) as usize;
            for p in 0..n_pairs {
                let r = sub + 14 + 6 * p;
                if let (Some(l), Some(rt), Some(v)) = (u16_at(d, r), u16_at(d, r + 2), u16_at(d, r + 4)) {
                    pairs.insert((l, rt), v as i16);
                }
            }
        }
        sub += len as usize;
    }
    pairs
}

fn parse_cmap(d: &[u8], at: usize) -> Option<Cmap> {
    let n = u16_at(d, at + 2)? as usize;
    let sub = (0..n).find_map(|i| {
        let rec = at + 4 + 8 * i;
        let (platform, encoding) = (u16_at(d, rec)?, u16_at(d, rec + 2)?);
        let off = at + u32_at(d, rec + 4)? as usize;
        let unicode_bmp = (platform == 3 && encoding == 1) || platform == 0;
        (unicode_bmp && u16_at(d, off)? == 4).then_some(off)
    })?;
    let seg = u16_at(d, sub + 6)? as usize / 2;
    let ends = sub + 14;
    let starts = ends + 2 * seg + 2;
    let deltas = starts + 2 * seg;
    let offsets = deltas + 2 * seg;
    let read = |base: usize| (0..seg).map(|i| u16_at(d, base + 2 * i)).collect::<Option<Vec<u16>>>();
    let range_offset =
        (0..seg).map(|i| Some((u16_at(d, offsets + 2 * i)?, offsets + 2 * i))).collect::<Option<Vec<_>>>()?;
    Some(Cmap { end: read(ends)?, start: read(starts)?, delta: read(deltas)?, range_offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn font_registers_and_is_idempotent() {
        ensure().unwrap();
        ensure().unwrap();
        assert!(DEJAVU_SANS.len() > 100_000, "font file looks truncated");
    }

    #[test]
    fn metrics_match_plotters_layout() {
        use plotters::prelude::*;
        ensure().unwrap();
        let m = metrics();
        assert_ne!(m.glyph('a'), 0);
        assert_ne!(m.glyph('τ'), 0);
        assert_ne!(m.glyph('−'), 0);
        // plotters' own estimate (ab_glyph advances and kerning, truncated to whole pixels)
        // must agree with ours, or label areas and legends would be sized wrong.
        let mut buf = vec![0u8; 3 * 64 * 64];
        let root = BitMapBackend::with_buffer(&mut buf, (64, 64)).into_drawing_area();
        for (text, px) in [("Drift score (nats)", 28.0), ("AVATAR Tokyo", 36.0), ("0.001 1e−4", 24.0)] {
            let style = (FAMILY, px).into_font().color(&BLACK);
            let (w, _) = root.estimate_text_size(text, &style).unwrap();
            let ours = m.width(text, px);
            assert!((ours - f64::from(w)).abs() <= 1.0, "{text}: ours {ours}, plotters {w}");
        }
        // Kerning is applied: "AV" is narrower than "A" + "V".
        assert!(m.width("AV", 30.0) < m.width("A", 30.0) + m.width("V", 30.0));
    }
}
