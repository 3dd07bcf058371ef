//! `cargo bench --bench capture`: activation-capture throughput on the real models.
//!
//! SmolLM2-135M prefill with capture of every residual layer (mean pooling) and
//! last-token logits, at batch 1 and 8 and sequence 64 and 256, per weight mode; MiniLM
//! sentence embeddings. Throughput is reported in tokens (or sentences) per second; the
//! process's peak resident memory is printed after each group.
//!
//! The quantized modes run candle's quantized kernels, which are slow on CPU (Q4_1 has no
//! SIMD path): they are benched at batch 1, sequence 64 only, to keep a run in minutes.

use std::path::PathBuf;

use candle_core::Device;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gapbench::models::bert::MiniLm;
use gapbench::models::capture::{CaptureModel, CaptureRequest, Pooling, TokenBatch};
use gapbench::models::gguf_llama::{GgufLlama, WeightMode};

fn cache() -> PathBuf {
    std::env::var_os("GAPBENCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/gapbench"))
}

fn smollm2_path() -> PathBuf {
    let p = cache().join("models/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.is_file(), "{} missing: run `gapbench models fetch --all`", p.display());
    p
}

/// Deterministic token ids in the ordinary-text range of the vocabulary.
fn batch(b: usize, t: usize) -> TokenBatch {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let seqs = (0..b)
        .map(|_| {
            (0..t)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (300 + x % 40_000) as u32
                })
                .collect()
        })
        .collect();
    TokenBatch::new(seqs)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn smollm2(c: &mut Criterion) {
    let path = smollm2_path();
    let modes: [(&str, &[(usize, usize)]); 4] = [
        ("f32", &[(1, 64), (8, 64), (1, 256), (8, 256)]),
        ("f16", &[(1, 64)]),
        ("requant-q8_0", &[(1, 64)]),
        ("shipped", &[(1, 64)]),
    ];
    for (mode, shapes) in modes {
        let weights: WeightMode = mode.parse().expect("known mode");
        let mut model = GgufLlama::load(&path, weights, &Device::Cpu).expect("load SmolLM2");
        let n_blocks = model.info().n_blocks;
        let req =
            CaptureRequest { layers: (0..=n_blocks + 1).collect(), pooling: Pooling::Mean, logits: true };
        let mut group = c.benchmark_group(format!("smollm2_prefill_capture/{mode}"));
        group.sample_size(10);
        for &(b, t) in shapes {
            let input = batch(b, t);
            group.throughput(Throughput::Elements((b * t) as u64));
            group.bench_with_input(BenchmarkId::new(format!("b{b}"), t), &input, |bench, input| {
                bench.iter(|| model.capture(input, &req).expect("capture"))
            });
        }
        group.finish();
        eprintln!("peak RSS after smollm2 {mode}: {:.0} MiB", peak_rss_mib());
    }
}

fn minilm(c: &mut Criterion) {
    let dir = cache().join("models/all-minilm-l6-v2");
    let model = MiniLm::load(&dir, &Device::Cpu).expect("load MiniLM");
    let words = "the quick brown fox jumps over a lazy dog while seven bright stars watch from far above";
    let texts: Vec<String> = (0..64).map(|i| format!("{i} {words} {}", &words[..(i * 7) % 40])).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut group = c.benchmark_group("minilm_embed");
    group.sample_size(10);
    group.throughput(Throughput::Elements(refs.len() as u64));
    group.bench_function("64_sentences_batch16", |b| {
        b.iter(|| model.embed_batched(&refs, 16).expect("embed"))
    });
    group.finish();
    eprintln!("peak RSS after minilm: {:.0} MiB", peak_rss_mib());
}

criterion_group!(benches, smollm2, minilm);
criterion_main!(benches);
