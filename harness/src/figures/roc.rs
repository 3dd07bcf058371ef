//! ROC curves: how well a detector's score separates positives (e.g. substituted models) from
//! negatives (the genuine model re-run), across every possible threshold. One figure compares
//! several detectors or conditions; the caller puts each curve's AUC in its label.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{
    dashed, draw_legend, frame, no_data, polyline, save, series_colour, Axis, Canvas, Drawn, Figure, Frame,
    Legend, RefLine, Series, Symbol, LINE_W,
};
use crate::error::Result;

/// Write `<stem>.png` and `<stem>.svg`: false positive rate (x) against true positive rate (y),
/// both over [0, 1], one line per curve, with the dashed chance diagonal for reference.
pub fn roc(stem: impl AsRef<Path>, title: &str, curves: &[Series]) -> Result<Vec<PathBuf>> {
    save(stem.as_ref(), &Roc { title, curves })
}

/// The empirical ROC curve of a score where higher means "positive": one point per distinct
/// threshold, from (0, 0) (nothing flagged) to (1, 1) (everything flagged). Tied scores move
/// both rates at once, so a tie contributes a diagonal step (half credit in [`auc`]). NaN
/// scores are dropped; infinities and `f64::MAX` sort as the most extreme scores. With no
/// negatives or no positives the curve is undefined and the chance diagonal is returned.
pub fn roc_points(negatives: &[f64], positives: &[f64]) -> Vec<(f64, f64)> {
    let mut scored: Vec<(f64, bool)> = negatives
        .iter()
        .map(|&s| (s, false))
        .chain(positives.iter().map(|&s| (s, true)))
        .filter(|(s, _)| !s.is_nan())
        .collect();
    let n_pos = scored.iter().filter(|(_, p)| *p).count();
    let n_neg = scored.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return vec![(0.0, 0.0), (1.0, 1.0)];
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));

    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < scored.len() {
        // Everything at this score is flagged together.
        let threshold = scored[i].0;
        while i < scored.len() && scored[i].0 == threshold {
            if scored[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        points.push((fp as f64 / n_neg as f64, tp as f64 / n_pos as f64));
    }
    points
}

/// Area under a curve by the trapezoid rule, after sorting the points by x (then y, so a
/// vertical ROC step is climbed in order). Fewer than two points have no area: 0.
pub fn auc(points: &[(f64, f64)]) -> f64 {
    let mut pts: Vec<(f64, f64)> =
        points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    pts.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum()
}

struct Roc<'a> {
    title: &'a str,
    curves: &'a [Series],
}

/// The chance diagonal: mid grey, so it reads as a reference, not as a detector.
const CHANCE: RefLine = RefLine { colour: RGBColor(0x88, 0x88, 0x88), dash: 10, gap: 8 };

impl Figure for Roc<'_> {
    fn draw<DB: DrawingBackend>(&self, cv: &Canvas<'_, DB>) -> Drawn {
        // A little beyond [0, 1] so a curve along an edge is not hidden under the axis line.
        let (x, y) = (Axis::fixed(-0.015, 1.015), Axis::fixed(-0.015, 1.015));
        let curves: Vec<(&str, Vec<(f64, f64)>)> = self
            .curves
            .iter()
            .map(|s| {
                let pts = s.points.iter().copied().filter(|p| ok(*p));
                (
                    s.label.as_str(),
                    pts.map(|(a, b)| (a.clamp(0.0, 1.0), b.clamp(0.0, 1.0))).collect::<Vec<_>>(),
                )
            })
            .filter(|(_, pts)| !pts.is_empty())
            .collect();

        let mut legend = Legend::default();
        for (i, (label, pts)) in curves.iter().enumerate() {
            legend.occ.path(&x, &y, pts);
            legend.add(*label, Symbol::Line(series_colour(i)));
        }
        legend.occ.path(&x, &y, &[(0.0, 0.0), (1.0, 1.0)]);
        legend.add("chance", Symbol::Dashed(CHANCE));

        let f =
            Frame { title: self.title, x_label: "False positive rate", y_label: "True positive rate", x, y };
        let mut plot = frame(cv, &f, &legend)?;
        // The diagonal first, so the curves are drawn over it.
        dashed(&mut plot.chart, (0.0, 0.0), (1.0, 1.0), CHANCE)?;
        for (i, (_, pts)) in curves.iter().enumerate() {
            polyline(cv, &plot.chart, pts, series_colour(i), LINE_W)?;
        }
        if curves.is_empty() {
            no_data(cv, &plot)?;
        }
        draw_legend(cv, &plot, &legend)
    }
}

fn ok((x, y): (f64, f64)) -> bool {
    x.is_finite() && y.is_finite()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check_outputs;
    use super::*;

    #[test]
    fn auc_separated_is_one() {
        let p = roc_points(&[0.1, 0.2, 0.3], &[0.7, 0.8, 0.9]);
        assert_eq!(p.first(), Some(&(0.0, 0.0)));
        assert_eq!(p.last(), Some(&(1.0, 1.0)));
        assert!((auc(&p) - 1.0).abs() < 1e-12);
        // Reversed scores: perfectly wrong.
        assert!(auc(&roc_points(&[0.7, 0.8], &[0.1, 0.2])).abs() < 1e-12);
    }

    #[test]
    fn auc_identical_scores_is_half() {
        let p = roc_points(&[0.5; 10], &[0.5; 7]);
        assert_eq!(p, vec![(0.0, 0.0), (1.0, 1.0)]);
        assert!((auc(&p) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn auc_hand_example() {
        // Pairs (pos > neg): 0.8 beats both, 0.35 beats 0.1 only: 3 of 4.
        let p = roc_points(&[0.1, 0.4], &[0.35, 0.8]);
        assert_eq!(p, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert!((auc(&p) - 0.75).abs() < 1e-12);
        // With a tie (0.5 vs 0.5 counts half): (2 + 1 + 0.5) / 4.
        let t = roc_points(&[0.1, 0.5], &[0.5, 0.9]);
        assert!((auc(&t) - 0.875).abs() < 1e-12);
        // Sentinels sort as most extreme; NaN is dropped.
        let s = roc_points(&[0.1, f64::NAN], &[f64::MAX, f64::INFINITY]);
        assert!((auc(&s) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn auc_degenerate_inputs() {
        assert_eq!(roc_points(&[], &[1.0]), vec![(0.0, 0.0), (1.0, 1.0)]);
        assert_eq!(auc(&[]), 0.0);
        assert_eq!(auc(&[(0.3, 0.3)]), 0.0);
    }

    #[test]
    fn roc_writes_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("nested/roc-same-family");
        let p = roc_points(&[0.1, 0.4, 0.2], &[0.35, 0.8, 0.9]);
        let curves = [Series::new(format!("probe A (AUC {:.2})", auc(&p)), p)];
        let written = roc(&stem, "ROC same family", &curves).unwrap();
        check_outputs(&written, &stem, "ROC same family");
        // Overwriting an existing figure works (rename over it).
        let again = roc(&stem, "ROC same family", &curves).unwrap();
        check_outputs(&again, &stem, "ROC same family");
    }

    #[test]
    fn roc_empty_and_degenerate_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("roc-empty");
        check_outputs(&roc(&stem, "Empty ROC", &[]).unwrap(), &stem, "Empty ROC");
        let stem = dir.path().join("roc-odd");
        let curves = [
            Series::new("empty", vec![]),
            Series::new("one point", vec![(0.5, 0.5)]),
            Series::new("nan", vec![(f64::NAN, 0.2), (2.0, -1.0)]),
        ];
        check_outputs(&roc(&stem, "Odd ROC", &curves).unwrap(), &stem, "Odd ROC");
    }
}
