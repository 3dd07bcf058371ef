//! Prefill throughput of the GGUF llama backend per weight mode (manual measurement for
//! the table in `models::gguf_llama` docs; not a test).
//!
//! `cargo run --release -p gapbench --example gguf_speed -- path/to/model.gguf [seq] [modes...]`

use std::time::Instant;

use candle_core::Device;
use gapbench::models::capture::{CaptureModel, CaptureRequest, Pooling, TokenBatch};
use gapbench::models::gguf_llama::{GgufLlama, WeightMode};

fn main() -> gapbench::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: gguf_speed MODEL.gguf [SEQ] [MODES...]");
    let seq: usize = args.next().map(|s| s.parse().expect("seq length")).unwrap_or(64);
    let mut modes: Vec<WeightMode> = args.map(|s| s.parse().expect("weight mode")).collect();
    if modes.is_empty() {
        modes = ["shipped", "f32", "f16", "requant-q8_0", "requant-q8_0-f32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
    }
    let ids: Vec<u32> = (0..seq as u32).map(|i| 100 + (i * 37) % 40000).collect();
    let batch = TokenBatch::new(vec![ids]);
    for mode in modes {
        let t = Instant::now();
        let mut m = GgufLlama::load(path.as_ref(), mode, &Device::Cpu)?;
        let load = t.elapsed().as_secs_f64();
        let req = CaptureRequest::all(m.info().n_blocks, Pooling::Mean);
        m.capture(&batch, &req)?; // warm-up
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                m.capture(&batch, &req).map(|_| t.elapsed().as_secs_f64())
            })
            .collect::<gapbench::Result<_>>()?;
        times.sort_by(f64::total_cmp);
        let med = times[2];
        println!(
            "{mode:>18}: load {load:.2}s, prefill {seq} tok in {:.1} ms = {:.0} tok/s",
            med * 1e3,
            seq as f64 / med
        );
    }
    Ok(())
}
