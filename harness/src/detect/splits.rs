//! Enrolment / calibration / evaluation splits made explicit in the types.
//!
//! Calibrating a threshold on the same benign runs it is then evaluated on makes the
//! false-reject rate look better than it is. [`Splits`] assigns every item id to exactly
//! one split (constructing overlapping splits is an error), and scores can only be
//! wrapped as a [`Tagged<Calibration>`] or [`Tagged<Evaluation>`] through it, after every
//! id has been checked to belong to that split. Functions that calibrate take
//! `Tagged<Calibration>`; [`check_disjoint`] re-checks at evaluation time that two tagged
//! samples come from the same `Splits` and share no id.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Enrolment,
    Calibration,
    Evaluation,
}

pub trait SplitKind {
    const SPLIT: Split;
}
#[derive(Debug)]
pub struct Enrolment;
#[derive(Debug)]
pub struct Calibration;
#[derive(Debug)]
pub struct Evaluation;
impl SplitKind for Enrolment {
    const SPLIT: Split = Split::Enrolment;
}
impl SplitKind for Calibration {
    const SPLIT: Split = Split::Calibration;
}
impl SplitKind for Evaluation {
    const SPLIT: Split = Split::Evaluation;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Splits {
    assignment: BTreeMap<String, Split>,
    /// sha256 over the assignment; tags every sample taken through these splits.
    digest: String,
}

impl Splits {
    /// Explicit lists; an id listed twice (in one split or across two) is an input error.
    pub fn new(enrolment: &[&str], calibration: &[&str], evaluation: &[&str]) -> Result<Self> {
        let mut assignment = BTreeMap::new();
        for (split, ids) in [
            (Split::Enrolment, enrolment),
            (Split::Calibration, calibration),
            (Split::Evaluation, evaluation),
        ] {
            for &id in ids {
                if let Some(prev) = assignment.insert(id.to_string(), split) {
                    return Err(Error::input(
                        "splits",
                        format!("item `{id}` is in both the {prev:?} and the {split:?} split"),
                    ));
                }
            }
        }
        Ok(Self::from_assignment(assignment))
    }

    /// A deterministic split of `ids` by the order of `sha256(seed || id)`: the first
    /// `round(f_enrol n)` go to enrolment, the next `round(f_cal n)` to calibration, the
    /// rest to evaluation. Independent of the order `ids` come in.
    pub fn seeded(ids: &[&str], seed: u64, f_enrol: f64, f_cal: f64) -> Result<Self> {
        if !(f_enrol >= 0.0 && f_cal >= 0.0 && f_enrol + f_cal <= 1.0) {
            return Err(Error::input("splits", format!("fractions {f_enrol} + {f_cal} must lie in [0, 1]")));
        }
        let mut keyed: Vec<([u8; 32], &str)> = ids
            .iter()
            .map(|&id| {
                let mut h = Sha256::new();
                h.update(seed.to_le_bytes());
                h.update(id.as_bytes());
                (h.finalize().into(), id)
            })
            .collect();
        keyed.sort();
        let n = keyed.len();
        let ne = (f_enrol * n as f64).round() as usize;
        let nc = ((f_cal * n as f64).round() as usize).min(n - ne.min(n));
        let mut assignment = BTreeMap::new();
        for (i, (_, id)) in keyed.into_iter().enumerate() {
            let s = if i < ne {
                Split::Enrolment
            } else if i < ne + nc {
                Split::Calibration
            } else {
                Split::Evaluation
            };
            if assignment.insert(id.to_string(), s).is_some() {
                return Err(Error::input("splits", format!("item `{id}` is listed twice")));
            }
        }
        Ok(Self::from_assignment(assignment))
    }

    /// Calibration / evaluation split balanced within strata: ids are grouped by their
    /// stratum (e.g. kernel path and batch size), ordered by a seeded hash inside each
    /// group, and the first `round(f_cal · n)` of each group go to calibration, the rest to
    /// evaluation, but never all of a group with two or more ids to one side: every such
    /// stratum is represented in both halves. Why: with a purely hashed split a rare
    /// but benign configuration (one batch size on one kernel path) can land only in the
    /// evaluation half, and the threshold never sees it.
    pub fn stratified(ids: &[(&str, &str)], seed: u64, f_cal: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&f_cal) {
            return Err(Error::input("splits", format!("calibration fraction {f_cal} must lie in [0, 1]")));
        }
        let mut groups: BTreeMap<&str, Vec<([u8; 32], &str)>> = BTreeMap::new();
        for &(id, stratum) in ids {
            let mut h = Sha256::new();
            h.update(seed.to_le_bytes());
            h.update(id.as_bytes());
            groups.entry(stratum).or_default().push((h.finalize().into(), id));
        }
        let mut assignment = BTreeMap::new();
        for (_, mut g) in groups {
            g.sort();
            let n = g.len();
            let nc = if n < 2 { n } else { ((f_cal * n as f64).round() as usize).clamp(1, n - 1) };
            for (i, (_, id)) in g.into_iter().enumerate() {
                let s = if i < nc { Split::Calibration } else { Split::Evaluation };
                if assignment.insert(id.to_string(), s).is_some() {
                    return Err(Error::input("splits", format!("item `{id}` is listed twice")));
                }
            }
        }
        Ok(Self::from_assignment(assignment))
    }

    fn from_assignment(assignment: BTreeMap<String, Split>) -> Self {
        let mut h = Sha256::new();
        for (id, s) in &assignment {
            h.update(id.as_bytes());
            h.update([0, *s as u8]);
        }
        Self { assignment, digest: hex::encode(h.finalize()) }
    }

    pub fn split_of(&self, id: &str) -> Option<Split> {
        self.assignment.get(id).copied()
    }

    pub fn ids(&self, split: Split) -> Vec<&str> {
        self.assignment.iter().filter(|(_, &s)| s == split).map(|(id, _)| id.as_str()).collect()
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Wrap `(id, score)` pairs as a sample of split `S`; every id must belong to `S` and
    /// appear once.
    pub fn take<S: SplitKind>(&self, items: Vec<(String, f64)>) -> Result<Tagged<S>> {
        let mut seen = std::collections::BTreeSet::new();
        for (id, _) in &items {
            match self.split_of(id) {
                Some(s) if s == S::SPLIT => {}
                Some(s) => {
                    return Err(Error::input(
                        "splits",
                        format!("item `{id}` belongs to the {s:?} split, not the {:?} split", S::SPLIT),
                    ))
                }
                None => return Err(Error::input("splits", format!("item `{id}` is in no split"))),
            }
            if !seen.insert(id.as_str()) {
                return Err(Error::input("splits", format!("item `{id}` appears twice in one sample")));
            }
        }
        Ok(Tagged { splits: self.digest.clone(), items, _split: PhantomData })
    }
}

/// Scores known to come from split `S` of one [`Splits`].
#[derive(Debug)]
pub struct Tagged<S: SplitKind> {
    splits: String,
    items: Vec<(String, f64)>,
    _split: PhantomData<S>,
}

impl<S: SplitKind> Tagged<S> {
    pub fn values(&self) -> Vec<f64> {
        self.items.iter().map(|(_, v)| *v).collect()
    }
    pub fn items(&self) -> &[(String, f64)] {
        &self.items
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Both samples come from the same splits and share no item id.
pub fn check_disjoint(cal: &Tagged<Calibration>, eval: &Tagged<Evaluation>) -> Result<()> {
    if cal.splits != eval.splits {
        return Err(Error::input("splits", "calibration and evaluation samples come from different splits"));
    }
    let ids: std::collections::BTreeSet<&str> = cal.items.iter().map(|(id, _)| id.as_str()).collect();
    if let Some((id, _)) = eval.items.iter().find(|(id, _)| ids.contains(id.as_str())) {
        return Err(Error::input("splits", format!("item `{id}` is in both calibration and evaluation")));
    }
    Ok(())
}

/// Conformal threshold from a calibration sample only.
pub fn calibrate(cal: &Tagged<Calibration>, alpha: f64) -> Result<super::calibration::ConformalThreshold> {
    super::calibration::conformal_threshold(&cal.values(), alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_splits_are_refused() {
        let e = Splits::new(&["a"], &["b", "c"], &["c", "d"]).unwrap_err().to_string();
        assert!(e.contains("`c`") && e.contains("Calibration") && e.contains("Evaluation"), "{e}");
        assert!(Splits::new(&["a", "a"], &[], &[]).is_err());
    }

    #[test]
    fn a_calibration_item_can_never_be_evaluated() {
        let s = Splits::new(&["e1"], &["c1", "c2", "c3"], &["v1", "v2"]).unwrap();
        let cal = s.take::<Calibration>(vec![("c1".into(), 0.1), ("c2".into(), 0.2)]).unwrap();
        // Wrapping a calibration item as evaluation is refused, as is an unknown id.
        let e = s.take::<Evaluation>(vec![("v1".into(), 0.3), ("c1".into(), 0.1)]).unwrap_err().to_string();
        assert!(e.contains("`c1`") && e.contains("Calibration"), "{e}");
        assert!(s.take::<Evaluation>(vec![("zz".into(), 0.3)]).is_err());
        assert!(s.take::<Calibration>(vec![("c1".into(), 0.1), ("c1".into(), 0.1)]).is_err());
        let eval = s.take::<Evaluation>(vec![("v1".into(), 0.3), ("v2".into(), 0.4)]).unwrap();
        check_disjoint(&cal, &eval).unwrap();
        // Samples from different splits cannot be paired.
        let other = Splits::new(&[], &["v1"], &["c1"]).unwrap();
        let cal2 = other.take::<Calibration>(vec![("v1".into(), 0.3)]).unwrap();
        assert!(check_disjoint(&cal2, &eval).is_err());
    }

    #[test]
    fn seeded_splits_are_deterministic_disjoint_and_order_free() {
        let ids: Vec<String> = (0..100).map(|i| format!("run-{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let a = Splits::seeded(&refs, 5, 0.2, 0.5).unwrap();
        let mut rev = refs.clone();
        rev.reverse();
        assert_eq!(a, Splits::seeded(&rev, 5, 0.2, 0.5).unwrap());
        assert_ne!(a, Splits::seeded(&refs, 6, 0.2, 0.5).unwrap());
        let (e, c, v) = (a.ids(Split::Enrolment), a.ids(Split::Calibration), a.ids(Split::Evaluation));
        assert_eq!((e.len(), c.len(), v.len()), (20, 50, 30));
        assert!(c.iter().all(|id| !v.contains(id) && !e.contains(id)));
        let cal = a.take::<Calibration>(c.iter().map(|id| (id.to_string(), 1.0)).collect()).unwrap();
        assert_eq!(calibrate(&cal, 0.1).unwrap().n, 50);
        assert!(Splits::seeded(&refs, 5, 0.7, 0.5).is_err());
    }

    #[test]
    fn stratified_split_puts_every_repeated_stratum_in_both_halves() {
        let ids: Vec<(String, String)> =
            (0..24).map(|i| (format!("null/{i}"), format!("b{}", [1, 2, 3, 16][i % 4]))).collect();
        let refs: Vec<(&str, &str)> = ids.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let s = Splits::stratified(&refs, 7, 0.5).unwrap();
        for stratum in ["b1", "b2", "b3", "b16"] {
            let of = |split| {
                refs.iter().filter(|(id, st)| *st == stratum && s.split_of(id) == Some(split)).count()
            };
            assert_eq!((of(Split::Calibration), of(Split::Evaluation)), (3, 3), "{stratum}");
        }
        // A single-member stratum goes to calibration; duplicates are refused.
        let s = Splits::stratified(&[("x", "lone")], 7, 0.5).unwrap();
        let tiny = Splits::stratified(&refs, 7, 0.01).unwrap();
        assert_eq!(tiny.ids(Split::Calibration).len(), 4, "one per stratum, never zero");
        assert_eq!(s.split_of("x"), Some(Split::Calibration));
        assert!(Splits::stratified(&[("x", "a"), ("x", "a")], 7, 0.5).is_err());
        // Another seed deals the same strata differently.
        let a = Splits::stratified(&refs, 7, 0.5).unwrap();
        let b = Splits::stratified(&refs, 8, 0.5).unwrap();
        assert_ne!(a.digest(), b.digest());
    }
}
