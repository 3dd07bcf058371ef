//! The LLM-backed agent's constrained sampler on the real SmolLM2-135M-Instruct.

use candle_core::Device;
use gapbench::compression::llm_agent::LlmBackend;
use gapbench::models::gguf_llama::WeightMode;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::common::smollm2_gguf;

#[test]
fn constrained_sampling_follows_the_model_and_only_returns_candidates() {
    let mut llm = LlmBackend::load(&smollm2_gguf(), WeightMode::F32, &Device::Cpu).unwrap();
    let cands = [" Paris", " Berlin", " Madrid", " Rome"];
    let mut paris = 0;
    for seed in 0..20 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = llm.choose_after("The capital of France is", &cands, &mut rng).unwrap();
        assert!(cands.contains(&c.as_str()), "{c}");
        paris += (c == " Paris") as usize;
    }
    assert!(paris >= 15, "Paris drawn {paris} of 20 times");
    // Same seed, same draw.
    let mut draw = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        llm.choose_after("My favourite colour is", &[" red", " blue", " green"], &mut rng).unwrap()
    };
    let (a, b) = (draw(7), draw(7));
    assert_eq!(a, b);
}

#[test]
fn constrained_sampling_refuses_ambiguous_candidates() {
    let mut llm = LlmBackend::load(&smollm2_gguf(), WeightMode::F32, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let e = llm.choose_after("The capital of France is", &[" Paris", " Paris is"], &mut rng).unwrap_err();
    assert!(e.to_string().contains("prefix"), "{e}");
}
