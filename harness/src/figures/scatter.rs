//! Scatter plots of 2-D embeddings, e.g. PCA of output fingerprints coloured by model identity
//! or by family: the reader should see whether identities form separate clusters. Each group
//! gets its own colour and marker shape, so groups stay distinguishable in greyscale and for
//! colour-blind readers.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{
    draw_legend, frame, markers, no_data, save, series_colour, Axis, Canvas, Drawn, Figure, Frame, Legend,
    Marker, Scale, Symbol, MARKERS, OKABE_ITO,
};
use crate::error::Result;

/// A legend longer than this covers too much of the plot; the rest is summarised as "+N more".
const MAX_LEGEND: usize = 12;
const MARKER_PX: i32 = 7;

/// Write `<stem>.png` and `<stem>.svg`: one marker per (x, y, group) point, one colour and
/// shape per distinct group in order of first appearance. Colours cycle through the eight
/// Okabe–Ito colours and shapes shift every eight groups (32 distinct styles); the legend lists
/// at most twelve groups and notes how many more there are.
pub fn scatter(
    stem: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64, String)],
) -> Result<Vec<PathBuf>> {
    save(stem.as_ref(), &Scatter { title, x_label, y_label, points })
}

struct Scatter<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    points: &'a [(f64, f64, String)],
}

/// Groups in order of first appearance, with their points.
fn groups(points: &[(f64, f64, String)]) -> Vec<(&str, Vec<(f64, f64)>)> {
    let mut out: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    for (x, y, g) in points {
        match out.iter_mut().find(|(name, _)| *name == g.as_str()) {
            Some((_, pts)) => pts.push((*x, *y)),
            None => out.push((g.as_str(), vec![(*x, *y)])),
        }
    }
    out
}

/// Style of the `i`-th group: colour cycles every 8, and the shape offset grows by one each
/// full colour cycle, so colour+shape pairs do not repeat before 32 groups.
fn style(i: usize) -> (RGBColor, Marker) {
    let colour = series_colour(i);
    let shape = MARKERS[(i % MARKERS.len() + i / OKABE_ITO.len()) % MARKERS.len()];
    (colour, shape)
}

impl Figure for Scatter<'_> {
    fn draw<DB: DrawingBackend>(&self, cv: &Canvas<'_, DB>) -> Drawn {
        let finite = |p: &&(f64, f64, String)| p.0.is_finite() && p.1.is_finite();
        let x = Axis::fit(Scale::Linear, self.points.iter().filter(finite).map(|p| p.0), 0.06);
        let y = Axis::fit(Scale::Linear, self.points.iter().filter(finite).map(|p| p.1), 0.06);

        let groups: Vec<(&str, Vec<(f64, f64)>)> = groups(self.points)
            .into_iter()
            .map(|(name, pts)| (name, pts.into_iter().filter(|p| x.usable(p.0) && y.usable(p.1)).collect()))
            .collect();
        let mut legend = Legend::default();
        for (i, (name, pts)) in groups.iter().enumerate() {
            for &p in pts {
                legend.occ.point(&x, &y, p);
            }
            if i < MAX_LEGEND {
                let (colour, shape) = style(i);
                legend.add(*name, Symbol::Marker(colour, shape, MARKER_PX));
            }
        }
        if groups.len() > MAX_LEGEND {
            legend.add(format!("+{} more", groups.len() - MAX_LEGEND), Symbol::Nothing);
        }

        let f = Frame { title: self.title, x_label: self.x_label, y_label: self.y_label, x, y };
        let plot = frame(cv, &f, &legend)?;
        for (i, (_, pts)) in groups.iter().enumerate() {
            let (colour, shape) = style(i);
            markers(cv, &plot.chart, pts, shape, MARKER_PX, colour)?;
        }
        if legend.occ.is_empty() {
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
    fn styles_are_distinct_for_32_groups() {
        let styles: Vec<_> = (0..32).map(style).collect();
        for i in 0..32 {
            for j in 0..i {
                assert_ne!(styles[i], styles[j], "groups {i} and {j} look the same");
            }
        }
    }

    #[test]
    fn scatter_writes_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("pca");
        let pts: Vec<(f64, f64, String)> = (0..60)
            .map(|i| ((i as f64).sin() * 3.0, (i as f64 * 0.7).cos(), format!("model {}", i % 3)))
            .collect();
        let written = scatter(&stem, "PCA scatter", "PC 1", "PC 2", &pts).unwrap();
        check_outputs(&written, &stem, "PCA scatter");
    }

    #[test]
    fn scatter_many_groups_and_degenerate() {
        let dir = tempfile::tempdir().unwrap();
        let many: Vec<(f64, f64, String)> =
            (0..40).map(|i| (i as f64, (i * i) as f64, format!("g{i}"))).collect();
        let stem = dir.path().join("many");
        let written = scatter(&stem, "Many groups", "PC 1", "PC 2", &many).unwrap();
        check_outputs(&written, &stem, "Many groups");
        let svg = std::fs::read_to_string(&written[1]).unwrap();
        assert!(svg.contains("+28 more"));

        for (name, pts) in [
            ("empty", vec![]),
            ("one", vec![(1.0, 2.0, "a".to_string())]),
            ("equal", vec![(1.0, 1.0, "a".to_string()); 5]),
            ("nan", vec![(f64::NAN, 1.0, "a".to_string()), (f64::INFINITY, 0.0, "b".to_string())]),
        ] {
            let stem = dir.path().join(name);
            let title = format!("Scatter {name}");
            check_outputs(&scatter(&stem, &title, "x", "y", &pts).unwrap(), &stem, &title);
        }
    }
}
