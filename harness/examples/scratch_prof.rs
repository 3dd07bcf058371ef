use candle_core::Device;
use gapbench::models::capture::{CaptureModel, CaptureRequest, Pooling, TokenBatch};
use gapbench::models::gguf_llama::{GgufLlama, WeightMode};
use std::time::Instant;
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let mut m = GgufLlama::load(p.as_ref(), WeightMode::F32, &Device::Cpu).unwrap();
    let ids: Vec<u32> = (0..64u32).map(|i| 100 + (i * 37) % 40000).collect();
    let b = TokenBatch::new(vec![ids]);
    for (name, req) in [
        ("emb only", CaptureRequest { layers: vec![0], pooling: Pooling::Mean, logits: false }),
        ("1 block", CaptureRequest { layers: vec![1], pooling: Pooling::Mean, logits: false }),
        ("30 blocks", CaptureRequest { layers: vec![30], pooling: Pooling::Mean, logits: false }),
        ("all+logits", CaptureRequest::all(30, Pooling::Mean)),
    ] {
        m.capture(&b, &req).unwrap();
        let t = Instant::now();
        for _ in 0..5 {
            m.capture(&b, &req).unwrap();
        }
        let cpu0 = std::fs::read_to_string("/proc/self/stat").unwrap();
        println!("{name}: {:.1} ms", t.elapsed().as_secs_f64() / 5. * 1e3);
        let _ = cpu0;
    }
}
