//! From fingerprint distances to decisions with stated error rates.
//!
//! - [`metrics`]: ROC, AUC (Mann-Whitney, ties count one half), TPR at a target FPR with
//!   a Clopper-Pearson or Wilson interval and `n` reported.
//! - [`calibration`]: thresholds from benign nuisance (split conformal, optional GPD tail),
//!   the accept / inconclusive / reject rule, sensitivity curves and the minimum
//!   detectable severity.
//! - [`cka`]: the linear-CKA activation-similarity baseline (REEF-style).
//! - [`splits`]: enrolment / calibration / evaluation kept apart by construction.
//!
//! Terms: a *positive* is a substituted model; the detector *rejects* when
//! `distance > threshold`; FPR is the false-reject rate on benign runs of the enrolled
//! model, TPR the detection rate on substitutes.

pub mod calibration;
pub mod cka;
pub mod metrics;
pub mod splits;

pub use calibration::{
    conformal_threshold, min_detectable_severity, sensitivity_curve, Decision, DecisionRule, GpdTail,
};
pub use metrics::{auc, roc, tpr_at_fpr, CiMethod, Proportion, TprAtFpr};
pub use splits::{Calibration, Enrolment, Evaluation, Split, Splits, Tagged};
