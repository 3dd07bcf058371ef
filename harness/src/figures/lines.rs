//! Line charts over an ordered x: a detector score over a session with the true compaction
//! event and the detector's alarm marked as vertical lines and the alarm threshold as a
//! horizontal one; detection rate vs severity (sensitivity curves); power vs probe tokens on a
//! log x axis. Every series has both a colour and a marker shape, so curves stay apart in
//! greyscale.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{
    dashed, draw_legend, frame, markers, no_data, polyline, ref_line, save, series_colour, Axis, Canvas,
    Drawn, Figure, Frame, Legend, RefLine, Scale, Series, Symbol, LINE_W, MARKERS,
};
use crate::error::Result;

/// More markers than this on one line turn it into a thick smear; longer series get a marker
/// on every k-th point only.
const MAX_MARKERS: usize = 30;
const MARKER_PX: i32 = 6;

/// The horizontal threshold line: grey long dashes, so it is not mistaken for a black event
/// line.
const HLINE: RefLine = RefLine { colour: RGBColor(0x55, 0x55, 0x55), dash: 18, gap: 6 };

/// Write `<stem>.png` and `<stem>.svg`: one line with point markers per series, dashed vertical
/// lines at each `vlines` x (e.g. "compaction event", "detector alarm") and an optional dashed
/// horizontal line (e.g. the alarm threshold), all listed in the legend. Points a log axis
/// cannot show (≤ 0) or that are not finite are skipped.
#[allow(clippy::too_many_arguments)]
pub fn lines(
    stem: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    x_scale: Scale,
    y_scale: Scale,
    vlines: &[(String, f64)],
    hline: Option<(String, f64)>,
) -> Result<Vec<PathBuf>> {
    save(
        stem.as_ref(),
        &Lines { title, x_label, y_label, series, x_scale, y_scale, vlines, hline: hline.as_ref() },
    )
}

struct Lines<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [Series],
    x_scale: Scale,
    y_scale: Scale,
    vlines: &'a [(String, f64)],
    hline: Option<&'a (String, f64)>,
}

impl Figure for Lines<'_> {
    fn draw<DB: DrawingBackend>(&self, cv: &Canvas<'_, DB>) -> Drawn {
        let pts = || self.series.iter().flat_map(|s| s.points.iter().copied());
        let x = Axis::fit(self.x_scale, pts().map(|p| p.0).chain(self.vlines.iter().map(|v| v.1)), 0.04);
        let y = Axis::fit(self.y_scale, pts().map(|p| p.1).chain(self.hline.map(|h| h.1)), 0.06);

        let shown: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| s.points.iter().copied().filter(|p| x.usable(p.0) && y.usable(p.1)).collect())
            .collect();
        let mut legend = Legend::default();
        for (i, (s, pts)) in self.series.iter().zip(&shown).enumerate() {
            legend.occ.path(&x, &y, pts);
            legend.add(
                s.label.clone(),
                Symbol::LineMarker(series_colour(i), MARKERS[i % MARKERS.len()], MARKER_PX),
            );
        }
        let mut vlines = Vec::new();
        for (name, v) in self.vlines {
            if x.usable(*v) {
                let style = ref_line(vlines.len());
                legend.occ.vertical(x.unit(*v));
                legend.add(name.clone(), Symbol::Dashed(style));
                vlines.push((*v, style));
            } else {
                // Say it exists: a reference line missing without comment reads as an omission.
                legend.add(format!("{name} (off-scale)"), Symbol::Nothing);
            }
        }
        let mut hline = None;
        if let Some((name, v)) = self.hline {
            if y.usable(*v) {
                legend.occ.horizontal(y.unit(*v));
                legend.add(name.clone(), Symbol::Dashed(HLINE));
                hline = Some(*v);
            } else {
                legend.add(format!("{name} (off-scale)"), Symbol::Nothing);
            }
        }

        let f = Frame { title: self.title, x_label: self.x_label, y_label: self.y_label, x, y };
        let mut plot = frame(cv, &f, &legend)?;
        // Reference lines first, so the data is drawn over them.
        let (x0, x1, y0, y1) = (x.at(0.0), x.at(1.0), y.at(0.0), y.at(1.0));
        for (v, style) in vlines {
            dashed(&mut plot.chart, (v, y0), (v, y1), style)?;
        }
        if let Some(v) = hline {
            dashed(&mut plot.chart, (x0, v), (x1, v), HLINE)?;
        }
        for (i, pts) in shown.iter().enumerate() {
            let colour = series_colour(i);
            polyline(cv, &plot.chart, pts, colour, LINE_W)?;
            let every = pts.len().div_ceil(MAX_MARKERS).max(1);
            let sparse: Vec<(f64, f64)> = pts.iter().copied().step_by(every).collect();
            markers(cv, &plot.chart, &sparse, MARKERS[i % MARKERS.len()], MARKER_PX, colour)?;
        }
        if shown.iter().all(|p| p.is_empty()) {
            no_data(cv, &plot)?;
        }
        draw_legend(cv, &plot, &legend)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check_outputs;
    use super::*;

    #[test]
    fn lines_writes_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("session");
        let s = Series::new("drift", (0..100).map(|t| (t as f64, (t as f64 / 10.0).sin())).collect());
        let written = lines(
            &stem,
            "Drift over session",
            "Turn",
            "Score (nats)",
            &[s],
            Scale::Linear,
            Scale::Linear,
            &[("compaction".into(), 40.0), ("alarm".into(), 45.0)],
            Some(("threshold".into(), 0.5)),
        )
        .unwrap();
        check_outputs(&written, &stem, "Drift over session");
        let svg = std::fs::read_to_string(&written[1]).unwrap();
        for label in ["drift", "compaction", "alarm", "threshold"] {
            assert!(svg.contains(label), "legend lacks {label}");
        }
    }

    #[test]
    fn lines_log_axes_and_degenerate() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<Series>, Scale, Scale)> = vec![
            ("empty", vec![], Scale::Log, Scale::Log),
            ("empty-series", vec![Series::new("a", vec![])], Scale::Linear, Scale::Linear),
            ("one-point", vec![Series::new("a", vec![(3.0, 0.5)])], Scale::Log, Scale::Linear),
            (
                "flat",
                vec![Series::new("a", vec![(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)])],
                Scale::Linear,
                Scale::Linear,
            ),
            (
                "log-zeros",
                vec![Series::new("a", vec![(0.0, 0.0), (10.0, 0.0), (100.0, 1e-3), (1000.0, 1e-2)])],
                Scale::Log,
                Scale::Log,
            ),
            ("all-zero-log", vec![Series::new("a", vec![(0.0, 0.0), (0.0, -1.0)])], Scale::Log, Scale::Log),
            (
                "huge",
                vec![Series::new("a", vec![(1.0, f64::MAX), (2.0, 1e9), (3.0, 2e9)])],
                Scale::Linear,
                Scale::Log,
            ),
        ];
        for (name, series, xs, ys) in cases {
            let stem = dir.path().join(name);
            let title = format!("Lines {name}");
            let written = lines(
                &stem,
                &title,
                "Probe tokens",
                "Detection rate",
                &series,
                xs,
                ys,
                &[("event".into(), 0.0)],
                Some(("h".into(), 0.0)),
            )
            .unwrap();
            check_outputs(&written, &stem, &title);
        }
    }
}
