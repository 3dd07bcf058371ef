//! Overlaid histograms: the distribution of one quantity (typically a fingerprint distance) for
//! several groups on shared bins, e.g. "same model" vs "substitutes", with the calibrated
//! threshold τ as a vertical line so the reader sees how much of each group falls on each side.
//! Outlines over light fills keep every group visible where they overlap.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{
    dashed, draw_legend, frame, no_data, polyline, ref_line, save, series_colour, usable, Axis, Canvas,
    Drawn, Fig, Figure, Frame, Legend, Scale, Symbol, LINE_W,
};
use crate::error::Result;

/// Bins across the shared range: enough to show shape, few enough that a few hundred values
/// per group do not turn into noise.
const BINS: usize = 40;

/// Write `<stem>.png` and `<stem>.svg`: one outlined, lightly filled step histogram per group
/// (label, values) on shared bins — log-spaced when `x_scale` is [`Scale::Log`] — with count
/// on y, and a dashed vertical line per `vlines` entry (label, x), listed in the legend.
///
/// Values that cannot be placed (NaN, ±∞, `f64::MAX` for a broken model scored maximally
/// distant, or ≤ 0 on a log axis) are left out of the bins and counted in that group's legend
/// label, e.g. "substitutes (3 off-scale)", so they are reported rather than silently lost.
pub fn histogram(
    stem: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    groups: &[(String, Vec<f64>)],
    x_scale: Scale,
    vlines: &[(String, f64)],
) -> Result<Vec<PathBuf>> {
    save(stem.as_ref(), &Histogram { title, x_label, groups, x_scale, vlines })
}

struct Histogram<'a> {
    title: &'a str,
    x_label: &'a str,
    groups: &'a [(String, Vec<f64>)],
    x_scale: Scale,
    vlines: &'a [(String, f64)],
}

/// Shared bin edges plus per-group counts, computed once for both output formats.
struct Binned {
    edges: Vec<f64>,
    /// Per group: counts per bin, and how many values were off-scale.
    counts: Vec<(Vec<usize>, usize)>,
}

fn bin(groups: &[(String, Vec<f64>)], scale: Scale) -> Binned {
    let values = || groups.iter().flat_map(|(_, v)| v.iter().copied()).filter(|&v| usable(scale, v));
    let (lo, hi) = values().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let range = if lo > hi {
        Axis::fit(scale, [], 0.0)
    } else if lo == hi {
        // One distinct value: bins around it rather than a zero-width range, shifted half a
        // bin so the value sits in the middle of one instead of on an edge.
        let around = Axis::fit(scale, [lo], 0.0);
        let half = 0.5 / BINS as f64;
        Axis { scale, lo: around.at(-half), hi: around.at(1.0 - half), integer: false }
    } else {
        Axis { scale, lo, hi, integer: false }
    };
    let edges: Vec<f64> = (0..=BINS).map(|i| range.at(i as f64 / BINS as f64)).collect();
    let counts = groups
        .iter()
        .map(|(_, vals)| {
            let mut c = vec![0usize; BINS];
            let mut off = 0;
            for &v in vals {
                if usable(scale, v) {
                    // The maximum lands exactly on t = 1: keep it in the last bin.
                    let k = ((range.unit(v) * BINS as f64).floor().max(0.0) as usize).min(BINS - 1);
                    c[k] += 1;
                } else {
                    off += 1;
                }
            }
            (c, off)
        })
        .collect();
    Binned { edges, counts }
}

impl Figure for Histogram<'_> {
    fn draw<DB: DrawingBackend>(&self, cv: &Canvas<'_, DB>) -> Drawn {
        let b = bin(self.groups, self.x_scale);
        let placeable = self.vlines.iter().map(|(_, v)| *v).filter(|&v| usable(self.x_scale, v));
        let x = Axis::fit(self.x_scale, [b.edges[0], b.edges[BINS]].into_iter().chain(placeable), 0.03);
        let max = b.counts.iter().flat_map(|(c, _)| c.iter().copied()).max().unwrap_or(0);
        // Headroom above the tallest bar gives the legend somewhere to sit.
        let y = Axis::counts(max as f64 * 1.15);

        let mut legend = Legend::default();
        let mut outlines = Vec::new();
        for (i, ((name, _), (counts, off))) in self.groups.iter().zip(&b.counts).enumerate() {
            let label = if *off > 0 { format!("{name} ({off} off-scale)") } else { name.clone() };
            legend.add(label, Symbol::Patch(series_colour(i)));
            for (k, &c) in counts.iter().enumerate().filter(|(_, &c)| c > 0) {
                // Bars are solid regions: sample them top to bottom.
                let mid = x.at((x.unit(b.edges[k]) + x.unit(b.edges[k + 1])) / 2.0);
                let steps = (c * 40 / max.max(1)).max(1);
                for s in 0..=steps {
                    legend.occ.point(&x, &y, (mid, c as f64 * s as f64 / steps as f64));
                }
            }
            outlines.push(runs(&b.edges, counts));
        }
        let mut lines = Vec::new();
        for (name, v) in self.vlines {
            if usable(self.x_scale, *v) {
                let style = ref_line(lines.len());
                legend.occ.vertical(x.unit(*v));
                legend.add(name.clone(), Symbol::Dashed(style));
                lines.push((*v, style));
            } else {
                // Still say it exists: a threshold missing without comment reads as an omission.
                legend.add(format!("{name} (off-scale)"), Symbol::Nothing);
            }
        }

        let f = Frame { title: self.title, x_label: self.x_label, y_label: "Count", x, y };
        let mut plot = frame(cv, &f, &legend)?;
        for (i, group) in outlines.iter().enumerate() {
            let colour = series_colour(i);
            for run in group {
                plot.chart
                    .draw_series(AreaSeries::new(run.iter().copied(), 0.0, colour.mix(0.22).filled()))
                    .fig()?;
                polyline(cv, &plot.chart, run, colour, LINE_W)?;
            }
        }
        for (v, style) in lines {
            dashed(&mut plot.chart, (v, y.lo), (v, y.hi), style)?;
        }
        if max == 0 {
            no_data(cv, &plot)?;
        }
        draw_legend(cv, &plot, &legend)
    }
}

/// Step outlines of each run of non-empty bins, from the baseline up and back down, so empty
/// stretches do not draw a coloured line along the axis.
fn runs(edges: &[f64], counts: &[usize]) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for (k, &c) in counts.iter().enumerate() {
        if c == 0 {
            if !run.is_empty() {
                run.push((edges[k], 0.0));
                out.push(std::mem::take(&mut run));
            }
            continue;
        }
        if run.is_empty() {
            run.push((edges[k], 0.0));
        }
        run.push((edges[k], c as f64));
        run.push((edges[k + 1], c as f64));
    }
    if !run.is_empty() {
        run.push((edges[counts.len()], 0.0));
        out.push(run);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check_outputs;
    use super::*;

    #[test]
    fn binning_counts_and_off_scale() {
        let groups =
            vec![("a".to_string(), vec![1.0, 2.0, 3.0, 4.0, f64::MAX, f64::NAN, f64::INFINITY, -1.0])];
        let lin = bin(&groups, Scale::Linear);
        assert_eq!(lin.counts[0].0.iter().sum::<usize>(), 5);
        assert_eq!(lin.counts[0].1, 3);
        assert_eq!(lin.edges.len(), BINS + 1);
        // The maximum lands in the last bin, the minimum in the first.
        assert_eq!(lin.counts[0].0[BINS - 1], 1);
        assert_eq!(lin.counts[0].0[0], 1);
        let log = bin(&groups, Scale::Log);
        assert_eq!(log.counts[0].0.iter().sum::<usize>(), 4);
        assert_eq!(log.counts[0].1, 4);
        // Outlines: one closed run per stretch of non-empty bins.
        let r = runs(&[0.0, 1.0, 2.0, 3.0, 4.0], &[2, 0, 1, 1]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], vec![(0.0, 0.0), (0.0, 2.0), (1.0, 2.0), (1.0, 0.0)]);
        assert_eq!(r[1].last(), Some(&(4.0, 0.0)));
        // Log bins are evenly spaced in log space.
        let r0 = log.edges[1] / log.edges[0];
        let r1 = log.edges[BINS] / log.edges[BINS - 1];
        assert!((r0 - r1).abs() < 1e-9);
    }

    #[test]
    fn histogram_writes_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("dist");
        let groups = vec![
            ("same model".to_string(), (1..200).map(|i| 1e-4 * (1.0 + (i % 17) as f64)).collect()),
            (
                "substitutes".to_string(),
                (1..200).map(|i| 1e-2 * (1.0 + (i % 23) as f64)).chain([f64::MAX]).collect(),
            ),
        ];
        let written = histogram(
            &stem,
            "Distance histogram",
            "Distance (nats)",
            &groups,
            Scale::Log,
            &[("threshold".to_string(), 2e-3)],
        )
        .unwrap();
        check_outputs(&written, &stem, "Distance histogram");
        let svg = std::fs::read_to_string(&written[1]).unwrap();
        assert!(svg.contains("substitutes (1 off-scale)"));
    }

    #[test]
    fn histogram_degenerate_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        type Case = (&'static str, Vec<(String, Vec<f64>)>, Scale, Vec<(String, f64)>);
        let cases: Vec<Case> = vec![
            ("empty", vec![], Scale::Linear, vec![]),
            (
                "empty-groups",
                vec![("a".into(), vec![]), ("b".into(), vec![])],
                Scale::Log,
                vec![("t".into(), 1.0)],
            ),
            ("equal", vec![("a".into(), vec![3.0; 10])], Scale::Linear, vec![("t".into(), 3.0)]),
            ("one", vec![("a".into(), vec![0.25])], Scale::Log, vec![]),
            ("zeros-log", vec![("a".into(), vec![0.0, 0.0, 1e-3])], Scale::Log, vec![("t".into(), 0.0)]),
            (
                "all-off",
                vec![("a".into(), vec![f64::MAX, f64::NAN])],
                Scale::Linear,
                vec![("t".into(), f64::NAN)],
            ),
        ];
        for (name, groups, scale, vlines) in cases {
            let stem = dir.path().join(name);
            let title = format!("Histogram {name}");
            let written = histogram(&stem, &title, "Distance (nats)", &groups, scale, &vlines).unwrap();
            check_outputs(&written, &stem, &title);
        }
    }
}
