//! The three black-box signals of context compression and their combination; each is a pure
//! function with its formula and range in its module docs.
//!
//! * [`lexicon`]: ghost lexicon decay, corrected for post-window length (Poisson).
//! * [`consistency`]: probe-answer consistency with a pre-boundary noise floor.
//! * [`toolshift`]: smoothed Jensen–Shannon divergence of tool calls, and online CUSUM.
//! * [`combined`]: a calibrated logistic combination, detection latency, AUROC.
//!
//! Public anchor: compression-monitor (agent-morrow, MIT), whose three signals these
//! improve on as each module says (`shared/research/compression.md`).

pub mod combined;
pub mod consistency;
pub mod lexicon;
pub mod toolshift;

pub use combined::{auroc, latency, Combiner, Features};
pub use consistency::{consistency, consistency_of_answers, cosine, Consistency, Embedder, TrigramEmbedder};
pub use lexicon::{constraint_lexicon_decay, ghost_lexicon_decay, tokenize, LexiconConfig, LexiconDecay};
pub use toolshift::{tool_shift, Cusum, ToolShift};
