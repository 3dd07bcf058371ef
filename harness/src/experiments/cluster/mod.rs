//! `cluster`: do fingerprints group by model without being told which model is which?
//! Every zoo checkpoint and a few SmolLM2 variants are fingerprinted under several benign
//! nuisance draws; [`analysis`] clusters them per architecture and channel (PCA, then
//! KMeans with k chosen by silhouette, a Gaussian mixture, DBSCAN; linfa) and scores the
//! clusters against the true identity (same weights) and the family (same training run).

pub mod analysis;
pub mod spec;

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::experiments::substitution::subjects::{
    derive_seed, lock, measure, zoo_model, Nuisance, Probe, SharedCache, Source,
};
use crate::experiments::{ExperimentKind, Metrics, RunContext};
use crate::fingerprint::compute::ProbeRun;
use crate::fingerprint::FingerprintConfig;
use crate::models::gguf_llama::WeightMode;
use crate::record::{ModelUse, Sample};
use crate::zoo::ZooSpec;
pub use spec::{ClusterParams, RawCluster};

pub struct Cluster {
    p: ClusterParams,
    seed: u64,
    cache: SharedCache,
}

impl Cluster {
    pub fn new(p: ClusterParams, seed: u64) -> Self {
        Self { p, seed, cache: Mutex::new(Default::default()) }
    }

    fn zoo_ids(&self) -> Vec<String> {
        self.p
            .zoo
            .as_deref()
            .map(|size| ZooSpec::by_size(size).with_seed_offset(self.p.zoo_seed_offset).all_model_ids())
            .unwrap_or_default()
    }

    /// Draw 0 is the canonical probe configuration; the others vary batch size (1, 1, 2,
    /// 2, …), threads and probe order.
    fn nuisance(&self, item: &str, draw: &str) -> Result<Nuisance> {
        let d: usize = draw.parse().map_err(|_| Error::run(format!("item `{item}`: bad draw `{draw}`")))?;
        Ok(if d == 0 {
            Nuisance::canonical(self.p.batch_size)
        } else {
            Nuisance::stratified(self.seed, item, d - 1)
        })
    }
}

impl ExperimentKind for Cluster {
    fn items(&self) -> Vec<String> {
        let mut out = vec![];
        for id in self.zoo_ids() {
            out.extend((0..self.p.draws).map(|d| format!("zoo/{id}/{d}")));
        }
        if let Some(r) = &self.p.real {
            out.extend((0..self.p.draws).map(|d| format!("real/ref/{d}")));
            for s in &r.variants {
                for (sev, _) in s.points() {
                    out.extend((0..self.p.draws).map(|d| format!("real/{}/{sev}/{d}", s.label)));
                }
            }
        }
        out
    }

    fn run_item(&self, ctx: &RunContext, item: &str) -> Result<serde_json::Value> {
        let parts: Vec<&str> = item.split('/').collect();
        let unknown = || Error::run(format!("unknown item `{item}`"));
        let probes = lock(&self.cache).probes(&self.p.probes, &self.p.probe_sha256)?;
        let run = ProbeRun {
            tokens: self.p.tokens,
            batch_size: self.p.batch_size,
            max_seq_len: self.p.max_seq_len,
        };
        let cfg = FingerprintConfig::default();
        let draw = *parts.last().ok_or_else(unknown)?;
        let nuisance = self.nuisance(item, draw)?;
        let m = match parts.as_slice() {
            ["zoo", id, _] => {
                let size = self.p.zoo.as_ref().ok_or_else(unknown)?;
                let dir = lock(&self.cache).zoo_with_seed_offset(size, self.p.zoo_seed_offset, ctx)?;
                let src = Source::Zoo { dir: zoo_model(&dir, id)? };
                let probe =
                    Probe { src: &src, mode: WeightMode::F32, run, nuisance, variant: None, cka: None };
                measure(&self.cache, ctx, &probes, &cfg, probe, &[])?
            }
            ["real", rest @ ..] => {
                let r = self.p.real.as_ref().ok_or_else(unknown)?;
                let dir = lock(&self.cache).real_dir(&r.model, ctx)?;
                let src = Source::Registry { entry: r.model.clone(), dir };
                let variant = match rest {
                    ["ref", _] => None,
                    [label, sev, _] => {
                        let s = r.variants.iter().find(|s| s.label == *label).ok_or_else(unknown)?;
                        let (_, value) =
                            s.points().into_iter().find(|(l, _)| l == sev).ok_or_else(unknown)?;
                        // One identity = one set of weights: the attack seed does not
                        // depend on the draw.
                        Some((s.at(value)?, derive_seed(self.seed, &format!("real/{label}/{sev}"))))
                    }
                    _ => return Err(unknown()),
                };
                let probe = Probe { src: &src, mode: WeightMode::F32, run, nuisance, variant, cka: None };
                measure(&self.cache, ctx, &probes, &cfg, probe, &[])?
            }
            _ => return Err(unknown()),
        };
        serde_json::to_value(m).map_err(|e| Error::run(e.to_string()))
    }

    fn summarise(&self, samples: &[Sample]) -> Result<Metrics> {
        analysis::summarise(&self.p, self.seed, samples)
    }

    fn models(&self) -> Vec<ModelUse> {
        self.p.real.iter().map(|r| ModelUse::of(&r.model)).collect()
    }

    fn sample_drift(
        &self,
        recorded: &serde_json::Value,
        reproduced: &serde_json::Value,
    ) -> Result<Option<crate::record::drift::Drift>> {
        crate::experiments::substitution::subjects::fingerprint_drift(
            recorded,
            reproduced,
            crate::experiments::substitution::spec::DEFAULT_TAU_FLOOR,
        )
    }
}
