//! Tables and figures of a `cluster` run: agreement of each clustering with identity
//! and family per architecture and channel; PCA scatter coloured by identity and by
//! family.

use std::path::Path;

use crate::error::Result;
use crate::experiments::cluster::analysis::analyse;
use crate::experiments::Params;
use crate::figures;
use crate::report::table::{num, Table};
use crate::report::{LoadedRun, Written};

pub fn report(run: &LoadedRun, tables: &Path, figures_dir: &Path, w: &mut Written) -> Result<()> {
    let Params::Cluster(p) = &run.exp.params else { return Ok(()) };
    let name = &run.exp.name;
    let results = analyse(p, run.exp.seed, &run.samples)?;
    let mut t = Table::new(&[
        "models",
        "channel",
        "points / identities / families",
        "PCA variance kept",
        "method",
        "k found",
        "ARI identity",
        "purity identity",
        "ARI family",
        "purity family",
        "silhouette",
    ]);
    for r in &results {
        let count = |v: &[String]| v.iter().collect::<std::collections::BTreeSet<_>>().len();
        for a in &r.algos {
            t.row(vec![
                r.group.clone(),
                r.channel.into(),
                format!("{} / {} / {}", r.identities.len(), count(&r.identities), count(&r.families)),
                format!("{:.3}", r.explained),
                a.name.replace('_', " "),
                a.k.to_string(),
                num(Some(a.ari_identity)),
                num(Some(a.purity_identity)),
                num(a.ari_family),
                num(a.purity_family),
                num(a.silhouette),
            ]);
        }
        for (by, labels) in [("identity", &r.identities), ("family", &r.families)] {
            let pts: Vec<(f64, f64, String)> =
                r.coords.iter().zip(labels.iter()).map(|((x, y), l)| (*x, *y, short(l))).collect();
            w.figures.extend(figures::scatter(
                figures_dir.join(format!("{name}-{}-{}-by-{by}", r.group, r.channel)),
                &format!("{name}: {} fingerprints, {} channel, coloured by {by}", r.group, r.channel),
                "principal component 1 (scaled)",
                "principal component 2 (scaled)",
                &pts,
            )?);
        }
    }
    w.table(tables, &format!("{name}-clusters"), &t.markdown())?;
    Ok(())
}

/// `zoo/zoo-w64-s0-step300` → `w64-s0-step300`; `real/weight-noise/1e-3` → `weight-noise 1e-3`.
fn short(label: &str) -> String {
    let l = label.strip_prefix("zoo/zoo-").or_else(|| label.strip_prefix("real/")).unwrap_or(label);
    l.replace('/', " ")
}
