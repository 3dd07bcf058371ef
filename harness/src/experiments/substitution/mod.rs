//! `substitution`: can a verifier tell the enrolled model from a substitute, from the
//! fingerprint alone, at a known false-reject rate? (`shared/research/substitution.md`)
//!
//! One run measures, per subject (a registry model and/or zoo checkpoints):
//!
//! 1. **enrolment**: the canonical fingerprint on each enrolled kernel path (e.g. the
//!    dequantized f32 path and the shipped quantized kernels). A suspect's distance is its
//!    distance to the *nearest* enrolled path, so declaring either path is benign.
//! 2. **null**: fingerprints of the same weights under benign nuisance (batch size and
//!    padding, thread count, probe order, kernel path, repeats), split by a seeded hash
//!    into calibration and evaluation halves (`detect::splits`).
//! 3. **substitutes**: every sweep of `variants` at every severity, several draws (attack
//!    seed and probe nuisance vary; draw 0 uses the canonical probe configuration), plus,
//!    for zoo subjects, every other zoo checkpoint.
//! 4. **power**: steps 1–3 for a few attacks at each probe-token budget.
//!
//! Each item stores one fingerprint (hex of its canonical bytes) with the weight hash
//! and the linear-CKA distance to the reference activations; `summarise` computes every
//! distance, threshold and rate from those samples alone (see [`summary`]).

pub mod spec;
pub(crate) mod subjects;
pub mod summary;

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::experiments::{ExperimentKind, Metrics, RunContext};
use crate::fingerprint::compute::ProbeRun;
use crate::models::gguf_llama::WeightMode;
use crate::record::{ModelUse, Sample};
use crate::zoo::ZooSpec;
use spec::{severity_label, Sweep};
pub use spec::{RawSubstitution, SubstitutionParams};
pub use subjects::derive_seed;
use subjects::{lock, measure, zoo_model, Nuisance, Probe, SharedCache, Source};

pub struct Substitution {
    p: SubstitutionParams,
    seed: u64,
    cache: SharedCache,
}

impl Substitution {
    pub fn new(p: SubstitutionParams, seed: u64) -> Self {
        Self { p, seed, cache: Mutex::new(Default::default()) }
    }

    fn zoo_ids(&self) -> Vec<String> {
        let Some(z) = &self.p.zoo else { return vec![] };
        if !z.all_checkpoints {
            return z.enrol.clone();
        }
        ZooSpec::by_size(&z.size).all_model_ids()
    }

    fn sweep_items(prefix: &str, sweeps: &[Sweep], out: &mut Vec<String>) {
        for s in sweeps {
            for (label, sev) in s.points() {
                for d in 0..s.draws_at(sev) {
                    out.push(format!("{prefix}/{}/{label}/{d}", s.label));
                }
            }
        }
    }

    fn run(&self, tokens: usize) -> ProbeRun {
        ProbeRun { tokens, batch_size: self.p.batch_size, max_seq_len: self.p.max_seq_len }
    }

    /// A sweep's concrete attack and seed for `label/severity/draw` on `subject`.
    fn attack(
        &self,
        sweeps: &[Sweep],
        parts: &[&str],
        subject: &str,
        zoo_dir: Option<&std::path::Path>,
    ) -> Result<(crate::models::variants::VariantSpec, u64)> {
        let [label, sev, draw] = parts else {
            return Err(Error::run(format!("bad variant item {parts:?}")));
        };
        let sweep = sweeps
            .iter()
            .find(|s| s.label == *label)
            .ok_or_else(|| Error::run(format!("no sweep `{label}`")))?;
        let severity = sweep
            .points()
            .into_iter()
            .find(|(l, _)| l == sev)
            .ok_or_else(|| Error::run(format!("sweep `{label}` has no severity `{sev}`")))?
            .1;
        let mut sweep = sweep.clone();
        if let (Some(dir), Some(o)) = (zoo_dir, sweep.attack.as_object_mut()) {
            if o.get("attack").and_then(|a| a.as_str()) == Some("further-training") {
                o.insert("model".into(), serde_json::json!(dir));
            }
        }
        let spec = sweep.at(severity)?;
        Ok((spec, derive_seed(self.seed, &format!("{subject}/{label}/{sev}/{draw}"))))
    }

    /// Nuisance of null draw `index` (see `SubstitutionParams::stratify`).
    fn null_nuisance(&self, item: &str, index: &str) -> Result<Nuisance> {
        Ok(if self.p.stratify {
            Nuisance::stratified(self.seed, item, draw_index(index)?)
        } else {
            Nuisance::draw(self.seed, item)
        })
    }

    fn nuisance_for_draw(&self, item: &str, draw: &str) -> Nuisance {
        if draw == "0" {
            Nuisance::canonical(self.p.batch_size)
        } else {
            Nuisance::draw(self.seed, item)
        }
    }
}

fn draw_index(s: &str) -> Result<usize> {
    s.parse().map_err(|_| Error::run(format!("null draw index `{s}` is not a number")))
}

fn parse_mode(s: &str) -> Result<WeightMode> {
    s.parse().map_err(|e: String| Error::run(e))
}

impl ExperimentKind for Substitution {
    fn items(&self) -> Vec<String> {
        let mut out = vec![];
        if let Some(r) = &self.p.real {
            for m in &r.paths {
                out.push(format!("real/ref/{m}"));
            }
            for (k, m) in r.paths.iter().enumerate() {
                let n = if k == 0 { r.null_draws } else { r.other_path_draws };
                out.extend((0..n).map(|i| format!("real/null/{m}/{i}")));
            }
            Self::sweep_items("real/var", &r.variants, &mut out);
        }
        if let Some(z) = &self.p.zoo {
            out.extend(self.zoo_ids().into_iter().map(|id| format!("zoo/fp/{id}")));
            for id in &z.enrol {
                out.extend((0..z.null_draws).map(|i| format!("zoo/null/{id}/{i}")));
                Self::sweep_items(&format!("zoo/var/{id}"), &z.variants, &mut out);
            }
        }
        if let Some(pw) = &self.p.power {
            for t in &pw.tokens {
                out.push(format!("power/{t}/ref"));
                out.extend((0..pw.null_draws).map(|i| format!("power/{t}/null/{i}")));
                for (label, _) in &pw.variants {
                    out.extend((0..pw.draws).map(|d| format!("power/{t}/{label}/{}", d + 1)));
                }
            }
        }
        out
    }

    fn run_item(&self, ctx: &RunContext, item: &str) -> Result<serde_json::Value> {
        let parts: Vec<&str> = item.split('/').collect();
        let (probes, real_src, zoo_dir) = {
            let mut c = lock(&self.cache);
            let probes = c.probes(&self.p.probes, &self.p.probe_sha256)?;
            let real = match &self.p.real {
                Some(r) => Some(Source::Registry { entry: r.model.clone(), dir: c.real_dir(&r.model, ctx)? }),
                None => None,
            };
            let zoo = match &self.p.zoo {
                Some(z) => Some(c.zoo(&z.size, ctx)?),
                None => None,
            };
            (probes, real, zoo)
        };
        let cfg = &self.p.fingerprint;
        let unknown = || Error::run(format!("unknown item `{item}`"));
        let m = match (parts[0], &real_src, &zoo_dir) {
            ("real", Some(src), _) => {
                let r = self.p.real.as_ref().ok_or_else(unknown)?;
                let first = r.paths[0];
                let probe = match parts[1..] {
                    ["ref", mode] => Probe {
                        src,
                        mode: parse_mode(mode)?,
                        run: self.run(self.p.tokens),
                        nuisance: Nuisance::canonical(self.p.batch_size),
                        variant: None,
                        cka: Some(src),
                    },
                    ["null", mode, i] => Probe {
                        src,
                        mode: parse_mode(mode)?,
                        run: self.run(self.p.tokens),
                        nuisance: self.null_nuisance(item, i)?,
                        variant: None,
                        cka: Some(src),
                    },
                    ["var", ref rest @ ..] => Probe {
                        src,
                        mode: first,
                        run: self.run(self.p.tokens),
                        nuisance: self.nuisance_for_draw(item, rest.last().copied().unwrap_or("0")),
                        variant: Some(self.attack(&r.variants, rest, "real", None)?),
                        cka: Some(src),
                    },
                    _ => return Err(unknown()),
                };
                measure(&self.cache, ctx, &probes, cfg, probe, &r.paths)?
            }
            ("power", Some(src), _) => {
                let r = self.p.real.as_ref().ok_or_else(unknown)?;
                let pw = self.p.power.as_ref().ok_or_else(unknown)?;
                let tokens: usize = parts.get(1).and_then(|t| t.parse().ok()).ok_or_else(unknown)?;
                let (nuisance, variant) = match parts[2..] {
                    ["ref"] => (Nuisance::canonical(self.p.batch_size), None),
                    ["null", i] => (self.null_nuisance(item, i)?, None),
                    [label, draw] => {
                        let sev = pw.variants.iter().find(|(l, _)| l == label).ok_or_else(unknown)?.1;
                        let sev = sev.map(severity_label).unwrap_or_else(|| "fixed".into());
                        let v =
                            self.attack(&r.variants, &[label, &sev, draw], &format!("power{tokens}"), None)?;
                        (Nuisance::draw(self.seed, item), Some(v))
                    }
                    _ => return Err(unknown()),
                };
                let probe =
                    Probe { src, mode: r.paths[0], run: self.run(tokens), nuisance, variant, cka: None };
                measure(&self.cache, ctx, &probes, cfg, probe, &r.paths[..1])?
            }
            ("zoo", _, Some(dir)) => {
                let z = self.p.zoo.as_ref().ok_or_else(unknown)?;
                let id = *parts.get(2).ok_or_else(unknown)?;
                let src = Source::Zoo { dir: zoo_model(dir, id)? };
                // CKA against the enrolled checkpoint of the same width, if there is one.
                let width = |s: &str| s.split('-').nth(1).map(str::to_string);
                let enrolled = z.enrol.iter().find(|e| width(e) == width(id));
                let cka_src = match enrolled {
                    Some(e) => Some(Source::Zoo { dir: zoo_model(dir, e)? }),
                    None => None,
                };
                let (nuisance, variant) = match parts[1] {
                    "fp" => (Nuisance::canonical(self.p.batch_size), None),
                    "null" => {
                        let i = parts.get(3).copied().ok_or_else(unknown)?;
                        (self.null_nuisance(item, i)?, None)
                    }
                    "var" => {
                        let rest = &parts[3..];
                        let draw = rest.last().copied().unwrap_or("0");
                        let v = self.attack(&z.variants, rest, id, Some(&dir.join(id)))?;
                        (self.nuisance_for_draw(item, draw), Some(v))
                    }
                    _ => return Err(unknown()),
                };
                let probe = Probe {
                    src: &src,
                    mode: WeightMode::F32,
                    run: self.run(self.p.tokens),
                    nuisance,
                    variant,
                    cka: cka_src.as_ref(),
                };
                measure(&self.cache, ctx, &probes, cfg, probe, &[WeightMode::F32])?
            }
            _ => return Err(unknown()),
        };
        serde_json::to_value(m).map_err(|e| Error::run(e.to_string()))
    }

    fn summarise(&self, samples: &[Sample]) -> Result<Metrics> {
        summary::summarise(&self.p, self.seed, samples)
    }

    fn models(&self) -> Vec<ModelUse> {
        self.p.real.iter().map(|r| ModelUse::of(&r.model)).collect()
    }

    fn sample_drift(
        &self,
        recorded: &serde_json::Value,
        reproduced: &serde_json::Value,
    ) -> Result<Option<crate::record::drift::Drift>> {
        subjects::fingerprint_drift(recorded, reproduced, self.p.tau_floor)
    }

    fn dtype(&self) -> String {
        match &self.p.real {
            Some(r) => r.paths.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("+"),
            None => "f32".into(),
        }
    }
}
