//! `cargo bench --bench compare`: how long a verifier needs once it holds two fingerprints.
//!
//! A SmolLM2-sized fingerprint (31 layers, width 576) built from synthetic activations:
//! decoding the canonical bytes, the per-channel distance, and decode + distance +
//! decision together. The target (issue 4) is "comparison in microseconds".

use criterion::{criterion_group, criterion_main, Criterion};
use gapbench::detect::DecisionRule;
use gapbench::fingerprint::stats::{logit_summary, Mat, MatRef};
use gapbench::fingerprint::{distance, encode, Fingerprint, FingerprintConfig, Subject};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

fn fingerprint(seed: u64) -> Fingerprint {
    let (layers, n, d, vocab) = (31, 64, 576, 1000);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut normal = |k: usize| -> Vec<f32> { (0..k).map(|_| StandardNormal.sample(&mut rng)).collect() };
    let mats: Vec<(usize, Mat)> = (0..layers).map(|l| (l, Mat::new(normal(n * d), n, d).unwrap())).collect();
    let views: Vec<(usize, MatRef)> = mats.iter().map(|(l, m)| (*l, m.view())).collect();
    let logits = Mat::new(normal(n * vocab), n, vocab).unwrap();
    let lg = logit_summary(logits.view()).unwrap();
    let subject = Subject {
        model_id: format!("bench-{seed}"),
        probe_set: "general-en-v1".into(),
        probe_sha256: "ab".repeat(32),
        tokens_used: n as u32,
    };
    Fingerprint::build(subject, &FingerprintConfig::default(), &views, Some(&lg)).unwrap()
}

fn bench(c: &mut Criterion) {
    let (a, b) = (fingerprint(1), fingerprint(2));
    let (ea, eb) = (encode::encode(&a).unwrap(), encode::encode(&b).unwrap());
    let rule = DecisionRule::new(1e-6, 4.0).unwrap();
    let mut g = c.benchmark_group("compare");
    g.bench_function("decode", |bn| bn.iter(|| encode::decode(std::hint::black_box(&ea)).unwrap()));
    g.bench_function("distance", |bn| bn.iter(|| distance(std::hint::black_box(&a), &b).unwrap()));
    g.bench_function("decode+distance+decide", |bn| {
        bn.iter(|| {
            let (x, y) = (encode::decode(&ea).unwrap(), encode::decode(&eb).unwrap());
            rule.decide(distance(&x, &y).unwrap().identity.total)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
