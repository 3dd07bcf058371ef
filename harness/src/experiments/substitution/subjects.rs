//! Models under test, how they are loaded (once, then cached across items), the benign
//! nuisance a probe run is subjected to, and one fingerprint measurement.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::detect::cka::CkaReference;
use crate::error::{Error, Result};
use crate::experiments::RunContext;
use crate::fingerprint::compute::{fingerprint_ordered, ProbeRun};
use crate::fingerprint::{encode, Fingerprint, FingerprintConfig};
use crate::models::fetch;
use crate::models::gguf_llama::{GgufLlama, WeightMode};
use crate::models::hf_llama::HfLlama;
use crate::models::load::{self, Loaded, TextTokenizer};
use crate::models::registry::ModelEntry;
use crate::models::tokenizer::GgufTokenizer;
use crate::models::variants::{AttackReport, VariantSpec, WeightSet};
use crate::probes::ProbeSet;
use crate::record::drift::Drift;
use crate::zoo::{build_zoo, ZooManifest, ZooSpec};

/// Benign nuisance of one probe run. None of it changes the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nuisance {
    /// Sequences per forward pass (changes padding and the matmul shapes).
    pub batch_size: usize,
    /// Worker threads (None: all cores).
    pub threads: Option<usize>,
    /// Probe sequences shuffled with this seed (None: file order).
    pub order_seed: Option<u64>,
}

const BATCH_SIZES: [usize; 8] = [1, 2, 3, 4, 6, 8, 12, 16];

impl Nuisance {
    pub fn canonical(batch_size: usize) -> Self {
        Self { batch_size, threads: None, order_seed: None }
    }

    /// A configuration drawn from `sha256(seed || key)`: batch size, thread count and
    /// probe order each vary.
    pub fn draw(seed: u64, key: &str) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(derive_seed(seed, key));
        let batch_size = BATCH_SIZES[rng.gen_range(0..BATCH_SIZES.len())];
        Self::with_batch(&mut rng, batch_size)
    }

    /// Null draw `index` of a series: the batch size cycles through every tested size,
    /// two consecutive draws per size (1, 1, 2, 2, 3, 3, …), so a short series still
    /// covers batch 1, whose padding-free shapes give the shipped kernels their most
    /// distinct result, and a split stratified by batch size can put every size in both
    /// halves. Thread count and probe order are drawn.
    pub fn stratified(seed: u64, key: &str, index: usize) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(derive_seed(seed, key));
        Self::with_batch(&mut rng, BATCH_SIZES[(index / 2) % BATCH_SIZES.len()])
    }

    fn with_batch(rng: &mut rand_chacha::ChaCha8Rng, batch_size: usize) -> Self {
        let threads = match rng.gen_range(0..3) {
            0 => Some(1),
            1 => Some(2),
            _ => None,
        };
        let order_seed = if rng.gen_bool(0.5) { Some(rng.gen()) } else { None };
        Self { batch_size, threads, order_seed }
    }
}

/// A 64-bit seed from an experiment seed and a key (item ids, attack labels).
pub fn derive_seed(seed: u64, key: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(key.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// One fingerprint measurement, as stored in `samples.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Canonical fingerprint bytes, hex (≤ 4 KiB encoded).
    pub fingerprint: String,
    pub digest: String,
    pub tokens_used: u32,
    pub path: String,
    pub nuisance: Nuisance,
    /// sha256 of the weights computed with (the "hash the weights" baseline).
    pub weights_sha256: String,
    /// `1 - mean linear CKA` to the reference activations of each enrolled path (path →
    /// distance), when measured.
    pub cka: std::collections::BTreeMap<String, f64>,
    /// What the attack changed, when there was one.
    pub attack: Option<AttackSummary>,
    /// Set when the substitute's forward pass overflowed (non-finite activations): no
    /// fingerprint exists, and every detector scores it as maximally distant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackSummary {
    pub attack: String,
    pub severity: f64,
    pub tensors_changed: usize,
    pub values_changed: usize,
    /// Largest ‖ΔW‖_F / ‖W‖_F over changed tensors.
    pub max_rel_frobenius: f64,
}

impl AttackSummary {
    fn of(r: &AttackReport) -> Self {
        Self {
            attack: r.attack.clone(),
            severity: r.severity,
            tensors_changed: r.changes.len(),
            values_changed: r.n_changed,
            max_rel_frobenius: r.changes.iter().map(|c| c.rel_frobenius).fold(0.0, f64::max),
        }
    }
}

impl Measurement {
    pub fn decode(&self) -> Result<Fingerprint> {
        let bytes =
            hex::decode(&self.fingerprint).map_err(|e| Error::run(format!("fingerprint hex: {e}")))?;
        encode::decode(&bytes)
    }
}

/// The drift between a recorded and a re-computed [`Measurement`] (`record::drift`): the
/// identity distance of their fingerprints against `floor`, the detector's declared
/// threshold floor; below it the detector accepts the re-computed fingerprint as the
/// recorded one. `None` when the samples are not measurements with fingerprints (the
/// caller then compares their numbers generically).
pub fn fingerprint_drift(
    recorded: &serde_json::Value,
    reproduced: &serde_json::Value,
    floor: f64,
) -> Result<Option<Drift>> {
    let parse = |v: &serde_json::Value| serde_json::from_value::<Measurement>(v.clone()).ok();
    let (Some(a), Some(b)) = (parse(recorded), parse(reproduced)) else { return Ok(None) };
    if a.broken.is_some() || b.broken.is_some() {
        return Ok(None);
    }
    let (fa, fb) = (a.decode()?, b.decode()?);
    // The digests may differ across machines, but each must still hash its fingerprint.
    for (m, f, which) in [(&a, &fa, "recorded"), (&b, &fb, "reproduced")] {
        if m.digest != f.digest()? {
            let measure = format!("{which} digest does not hash its fingerprint");
            return Ok(Some(Drift {
                measure,
                value: f64::INFINITY,
                limit: floor,
                at: Some("$.digest".into()),
            }));
        }
    }
    // The rest (weights hash, path, nuisance, token count, attack) must agree exactly.
    // The CKA baseline's distances are not checked: they sit near zero, where a relative
    // difference means nothing, and the fingerprint is what is decided on.
    let rest = |m: &Measurement| Measurement {
        fingerprint: String::new(),
        digest: String::new(),
        cka: Default::default(),
        ..m.clone()
    };
    let (ra, rb) = (rest(&a), rest(&b));
    if ra != rb {
        let to = |m: &Measurement| serde_json::to_value(m).unwrap_or_default();
        return Ok(Some(crate::record::drift::numeric(&to(&ra), &to(&rb), 0.0)));
    }
    let d = crate::fingerprint::distance(&fa, &fb)?;
    Ok(Some(Drift {
        measure: format!("identity distance (lineage {:.3e})", d.lineage.total),
        value: d.identity.total,
        limit: floor,
        at: d.identity.blocks.iter().max_by(|x, y| x.1.total_cmp(&y.1)).map(|(n, _)| format!("block {n}")),
    }))
}

/// Where a subject's weights live.
#[derive(Clone, Debug)]
pub enum Source {
    Registry { entry: ModelEntry, dir: PathBuf },
    Zoo { dir: PathBuf },
}

impl Source {
    fn key(&self) -> String {
        match self {
            Source::Registry { entry, .. } => entry.name.clone(),
            Source::Zoo { dir } => dir.display().to_string(),
        }
    }

    fn load(&self, mode: WeightMode, ctx: &RunContext) -> Result<Loaded> {
        match self {
            Source::Registry { entry, dir } => load::load(entry, dir, mode, &ctx.device),
            Source::Zoo { dir } => {
                let model = HfLlama::load_dir(dir, &ctx.device)?;
                let tok = crate::models::hf_llama::load_tokenizer(dir)?;
                Ok(Loaded { model: Box::new(model), tokenizer: TextTokenizer::Hf(Box::new(tok)) })
            }
        }
    }

    fn weights(&self) -> Result<WeightSet> {
        match self {
            Source::Registry { entry, dir } => WeightSet::load(&dir.join(&entry.primary_file().path)),
            Source::Zoo { dir } => WeightSet::load(dir),
        }
    }

    fn tokenizer(&self) -> Result<TextTokenizer> {
        match self {
            Source::Registry { entry, dir } => {
                let p = dir.join(&entry.primary_file().path);
                Ok(TextTokenizer::Gguf(Box::new(GgufTokenizer::load(&p)?)))
            }
            Source::Zoo { dir } => {
                Ok(TextTokenizer::Hf(Box::new(crate::models::hf_llama::load_tokenizer(dir)?)))
            }
        }
    }

    /// The model with `set`'s weights, computed on `mode`.
    fn with_weights(&self, set: &WeightSet, mode: WeightMode, ctx: &RunContext) -> Result<Loaded> {
        let model: Box<dyn crate::models::capture::CaptureModel> = match self {
            Source::Registry { entry, dir } => {
                let p = dir.join(&entry.primary_file().path);
                Box::new(GgufLlama::from_weights(&p, set, mode, &ctx.device)?.with_name(&entry.name))
            }
            Source::Zoo { dir } => Box::new(HfLlama::from_weights_in(dir, set, &ctx.device)?),
        };
        Ok(Loaded { model, tokenizer: self.tokenizer()? })
    }
}

/// Everything loaded once per run and reused across items.
#[derive(Default)]
pub struct Cache {
    models: HashMap<(String, String), Loaded>,
    weights: HashMap<String, Arc<WeightSet>>,
    hashes: HashMap<String, String>,
    cka: HashMap<(String, String, usize), Arc<CkaReference>>,
    probes: Option<Arc<ProbeSet>>,
    zoo: Option<PathBuf>,
    real_dir: Option<PathBuf>,
}

pub type SharedCache = Mutex<Cache>;

pub fn lock(c: &SharedCache) -> std::sync::MutexGuard<'_, Cache> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    pub fn probes(&mut self, name: &str, sha256: &str) -> Result<Arc<ProbeSet>> {
        if self.probes.is_none() {
            let p = crate::probes::shipped(&crate::probes::dataset_dir(), name)?;
            if p.sha256() != sha256 {
                return Err(Error::input(
                    format!("probe set `{name}`"),
                    format!("sha256 {} differs from the spec's {sha256}", p.sha256()),
                ));
            }
            self.probes = Some(Arc::new(p));
        }
        Ok(self.probes.clone().expect("set above"))
    }

    pub fn real_dir(&mut self, entry: &ModelEntry, ctx: &RunContext) -> Result<PathBuf> {
        if self.real_dir.is_none() {
            self.real_dir = Some(fetch::fetch(entry, &ctx.registry, &ctx.cache)?.0);
        }
        Ok(self.real_dir.clone().expect("set above"))
    }

    /// The zoo of `size`, from the cache (`<cache>/zoo/<size>-0`), built there first when
    /// absent, and verified against its manifest either way.
    pub fn zoo(&mut self, size: &str, ctx: &RunContext) -> Result<PathBuf> {
        self.zoo_with_seed_offset(size, 0, ctx)
    }

    /// The zoo of `size` trained with every seed shifted by `offset` (built into the
    /// cache as `zoo/<size>-<offset>` when missing, as `gapbench zoo build` would).
    pub fn zoo_with_seed_offset(&mut self, size: &str, offset: u64, ctx: &RunContext) -> Result<PathBuf> {
        let dir = crate::zoo::cache_dir(&ctx.cache.root, size, offset);
        if self.zoo.as_ref() == Some(&dir) {
            return Ok(dir);
        }
        if !dir.join("manifest.json").is_file() {
            let spec = ZooSpec::by_size(size).with_seed_offset(offset);
            tracing::info!("building the {size} zoo into {} (minutes)", dir.display());
            build_zoo(&spec, &dir, &|_| {})?;
        }
        ZooManifest::load(&dir)?.verify(&dir)?;
        self.zoo = Some(dir.clone());
        Ok(dir)
    }

    fn model(&mut self, src: &Source, mode: WeightMode, ctx: &RunContext) -> Result<&mut Loaded> {
        let key = (src.key(), mode.to_string());
        if !self.models.contains_key(&key) {
            let m = src.load(mode, ctx)?;
            self.models.insert(key.clone(), m);
        }
        Ok(self.models.get_mut(&key).expect("inserted"))
    }

    fn base_weights(&mut self, src: &Source) -> Result<Arc<WeightSet>> {
        let k = src.key();
        if !self.weights.contains_key(&k) {
            self.weights.insert(k.clone(), Arc::new(src.weights()?));
        }
        Ok(self.weights[&k].clone())
    }

    fn base_hash(&mut self, src: &Source) -> Result<String> {
        let k = src.key();
        if !self.hashes.contains_key(&k) {
            let h = self.base_weights(src)?.sha256();
            self.hashes.insert(k.clone(), h);
        }
        Ok(self.hashes[&k].clone())
    }
}

/// What one item measures.
pub struct Probe<'a> {
    pub src: &'a Source,
    pub mode: WeightMode,
    pub run: ProbeRun,
    pub nuisance: Nuisance,
    pub variant: Option<(VariantSpec, u64)>,
    /// Compare activations by CKA to this source's canonical run (no attack, canonical
    /// nuisance) on each reference mode passed to [`measure`].
    pub cka: Option<&'a Source>,
}

/// Fingerprint one configuration of one subject.
pub fn measure(
    cache: &SharedCache,
    ctx: &RunContext,
    probes: &ProbeSet,
    cfg: &FingerprintConfig,
    p: Probe,
    ref_modes: &[WeightMode],
) -> Result<Measurement> {
    let mut c = lock(cache);
    let run = ProbeRun { batch_size: p.nuisance.batch_size, ..p.run.clone() };
    let mut cka_refs = Vec::new();
    if let Some(rs) = p.cka {
        for mode in ref_modes {
            let key = (rs.key(), mode.to_string(), p.run.tokens);
            if !c.cka.contains_key(&key) {
                let loaded = c.model(rs, *mode, ctx)?;
                let (_, acts) = fingerprint_ordered(loaded, probes, &p.run, None, true, cfg)?;
                let r = CkaReference::new(&acts.expect("kept"))?;
                c.cka.insert(key.clone(), Arc::new(r));
            }
            cka_refs.push((mode.to_string(), c.cka[&key].clone()));
        }
    }
    let mut variant_model;
    let (loaded, weights_sha256, attack) = match &p.variant {
        None => {
            let h = c.base_hash(p.src)?;
            (c.model(p.src, p.mode, ctx)?, h, None)
        }
        Some((spec, seed)) => {
            let mut set = (*c.base_weights(p.src)?).clone();
            let report = spec.apply(&mut set, *seed)?;
            variant_model = p.src.with_weights(&set, p.mode, ctx)?;
            (&mut variant_model, set.sha256(), Some(AttackSummary::of(&report)))
        }
    };
    let order = p.nuisance.order_seed.map(|s| {
        let n = probes_len(loaded, probes, &run).unwrap_or(0);
        let mut o: Vec<usize> = (0..n).collect();
        o.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(s));
        o
    });
    let keep = !cka_refs.is_empty();
    let go = |loaded: &mut Loaded| fingerprint_ordered(loaded, probes, &run, order.as_deref(), keep, cfg);
    let result = match p.nuisance.threads {
        None => go(loaded),
        Some(t) => rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .map_err(|e| Error::run(format!("thread pool: {e}")))?
            .install(|| go(loaded)),
    };
    let (fp, acts) = match result {
        Ok(r) => r,
        // An edit that makes activations overflow is a (trivially detected) substitute,
        // not a failed run; for the unedited model it is a real error.
        Err(e) if attack.is_some() && e.to_string().contains("non-finite") => {
            return Ok(Measurement {
                fingerprint: String::new(),
                digest: String::new(),
                tokens_used: 0,
                path: p.mode.to_string(),
                nuisance: p.nuisance,
                weights_sha256,
                cka: Default::default(),
                attack,
                broken: Some(e.to_string()),
            })
        }
        Err(e) => return Err(e),
    };
    let mut cka = std::collections::BTreeMap::new();
    if let Some(a) = &acts {
        for (mode, r) in &cka_refs {
            cka.insert(mode.clone(), r.distance(a)?);
        }
    }
    let bytes = encode::encode(&fp)?;
    Ok(Measurement {
        digest: crate::record::canonical::sha256_hex(&bytes),
        fingerprint: hex::encode(&bytes),
        tokens_used: fp.meta.tokens_used,
        path: p.mode.to_string(),
        nuisance: p.nuisance,
        weights_sha256,
        cka,
        attack,
        broken: None,
    })
}

/// How many sequences a probe run selects (to draw a permutation of them).
fn probes_len(loaded: &Loaded, probes: &ProbeSet, run: &ProbeRun) -> Result<usize> {
    let max_len = run.max_seq_len.min(loaded.model.info().max_seq_len);
    Ok(probes.tokenize_budget(run.tokens, max_len, |t| loaded.tokenizer.encode(t))?.sequences.len())
}

/// `dir/<id>` of a zoo checkpoint, checked to exist.
pub fn zoo_model(dir: &Path, id: &str) -> Result<PathBuf> {
    let p = dir.join(id);
    if !p.join("config.json").is_file() {
        return Err(Error::input(
            format!("zoo checkpoint `{id}`"),
            format!("not found in {}", dir.display()),
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_nulls_cover_every_batch_size_in_pairs() {
        let b: Vec<usize> =
            (0..18).map(|i| Nuisance::stratified(1, &format!("n/{i}"), i).batch_size).collect();
        assert_eq!(&b[..4], &[1, 1, 2, 2]);
        for size in BATCH_SIZES {
            assert_eq!(b.iter().filter(|&&x| x == size).count(), if size == 1 { 4 } else { 2 }, "{size}");
        }
        // Thread count and order still vary with the key.
        let all: std::collections::BTreeSet<_> =
            (0..18).map(|i| format!("{:?}", Nuisance::stratified(1, &format!("n/{i}"), 0))).collect();
        assert!(all.len() > 2);
    }
}
