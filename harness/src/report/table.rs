//! Markdown tables and the number formats every generated table shares, so the paper
//! prints a value the same way wherever it appears.

/// A GitHub-flavoured Markdown table.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self { header: header.iter().map(|s| s.to_string()).collect(), rows: vec![] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut s = line(&self.header);
        s.push_str(&line(&self.header.iter().map(|_| "---".to_string()).collect::<Vec<_>>()));
        for r in &self.rows {
            s.push_str(&line(r));
        }
        s
    }
}

/// Three significant digits; scientific outside [1e-3, 1e5); `—` when absent;
/// "overflow" for the maximally-distant score of a broken model.
pub fn num(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) if x >= f64::MAX / 2.0 => "overflow".into(),
        Some(x) if !x.is_finite() => format!("{x}"),
        Some(0.0) => "0".into(),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e5 => format!("{x:.0}"),
        Some(x) if (1e-3..1e5).contains(&x.abs()) => {
            let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
            format!("{x:.digits$}")
        }
        Some(x) => {
            let s = format!("{x:.2e}");
            // 1.00e-4 → 1e-4 style mantissa trimming.
            match s.split_once('e') {
                Some((m, e)) => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
                None => s,
            }
        }
    }
}

/// A rate with its confidence interval: `1.00 [0.54, 1]`.
pub fn rate_ci(p: Option<f64>, lo: Option<f64>, hi: Option<f64>) -> String {
    match p {
        None => "—".into(),
        Some(p) => format!("{:.2} [{}, {}]", p, fmt_bound(lo), fmt_bound(hi)),
    }
}

/// A rate with only its upper confidence bound (false-alarm and false-reject rates are
/// recorded with the upper end alone: the lower end is not what a user tunes against).
pub fn rate_upper(p: Option<f64>, hi: Option<f64>) -> String {
    match p {
        None => "—".into(),
        Some(p) => format!("{:.2} [≤ {}]", p, fmt_bound(hi)),
    }
}

fn fmt_bound(b: Option<f64>) -> String {
    match b {
        None => "—".into(),
        Some(1.0) => "1".into(),
        Some(0.0) => "0".into(),
        Some(b) => format!("{b:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_consistently() {
        assert_eq!(num(Some(0.0)), "0");
        assert_eq!(num(Some(36.0)), "36");
        assert_eq!(num(Some(0.0246)), "0.0246");
        assert_eq!(num(Some(1.5e-6)), "1.5e-6");
        assert_eq!(num(Some(1e-6)), "1e-6");
        assert_eq!(num(Some(91209812493.26)), "9.12e10");
        assert_eq!(num(Some(f64::MAX)), "overflow");
        assert_eq!(num(None), "—");
        assert_eq!(rate_ci(Some(1.0), Some(0.5407), Some(1.0)), "1.00 [0.54, 1]");
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["1".into(), "2".into()]);
        assert_eq!(t.markdown(), "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }
}
