//! The synthetic model zoo: many small llama decoders trained from scratch on a seeded
//! synthetic corpus, saved as HF checkpoints at several training steps.
//!
//! The zoo gives the fingerprinting experiments a population with known ground truth
//! (same seed at different steps, different seeds at the same step, different widths)
//! that anyone can rebuild byte-identically with `gapbench zoo build`, instead of
//! downloading it. Pipeline: [`corpus`] → [`tokenizer`] → [`train`] → [`build`].

pub mod build;
pub mod corpus;
pub mod tokenizer;
pub mod train;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub use build::{build_zoo, ZooEvent, ZooManifest, ZooModel, ZooSpec, ZooWidth};

use crate::error::{Error, Result};

/// Write `bytes` to `path` so readers see the old file or the whole new one, never a
/// partial write: write a temporary sibling, flush it to disk, rename it over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp =
        dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(Error::io(path))
}
