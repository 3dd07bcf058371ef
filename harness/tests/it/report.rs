//! `cluster` on the tiny zoo and `gapbench report` over it and a tiny substitution run:
//! clustering recovers identities, runs are byte-identical, and every figure and table is
//! written (PNG and SVG, non-empty), with paper.md's generated blocks refilled.

use std::path::Path;

use crate::common::gapbench_in_project;
use crate::substitution::{run as run_substitution, setup};

const CLUSTER: &str = r#"
name = "cluster-tiny"
kind = "cluster"
seed = 9
[cluster]
tokens = 64
max_seq_len = 32
draws = 3
zoo = "tiny"
pca_components = 4
k_max = 12
"#;

fn run_cluster(cache: &Path, spec: &Path, results: &Path) -> (serde_json::Value, Vec<u8>) {
    let out = gapbench_in_project(&[
        "run",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        spec.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let latest = std::fs::read_to_string(results.join("cluster-tiny/LATEST")).unwrap();
    let dir = results.join("cluster-tiny").join(latest.trim());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    (summary["metrics"].clone(), std::fs::read(dir.join("samples.jsonl")).unwrap())
}

#[test]
fn cluster_then_report_writes_every_figure_and_table() {
    let s = setup();
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("cluster-tiny.toml");
    std::fs::write(&spec, CLUSTER).unwrap();
    let results = tmp.path().join("results");
    let (m, samples) = run_cluster(&s.cache, &spec, &results);
    // The tiny zoo: 2 widths x 2 seeds x 2 steps = 8 checkpoints, 3 draws each.
    for w in ["zoo-w24", "zoo-w32"] {
        let key = format!("{w}.identity.kmeans.ari_identity");
        let ari = m[&key].as_f64().unwrap_or_else(|| panic!("no {key} in {m}"));
        assert!(ari >= 0.95, "{key} = {ari}");
        assert_eq!(m[format!("{w}.identity.n")], 12.0);
        assert!(m.get(format!("{w}.lineage.dbscan.ari_family")).is_some());
        for method in ["kmeans_oracle_family_k", "kmeans_models", "dbscan_models"] {
            let key = format!("{w}.mean-direction.{method}.ari_family");
            assert!(m.get(&key).is_some_and(|v| v.is_number()), "no {key}");
        }
    }
    let (m2, samples2) = run_cluster(&s.cache, &spec, &tmp.path().join("again"));
    assert_eq!(m, m2);
    assert!(samples == samples2);

    run_substitution(&s, &results);
    let paper = tmp.path().join("paper");
    std::fs::create_dir_all(&paper).unwrap();
    std::fs::write(
        paper.join("paper.md"),
        "# P\n<!-- gapbench:table cluster-tiny-clusters -->\n<!-- /gapbench:table -->\n\
         <!-- gapbench:table sub-tiny-detection --><!-- /gapbench:table -->\n",
    )
    .unwrap();
    let out = gapbench_in_project(&[
        "report",
        "--results",
        results.to_str().unwrap(),
        "--out",
        paper.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stems = [
        "cluster-tiny-zoo-w24-identity-by-identity",
        "cluster-tiny-zoo-w32-lineage-by-family",
        format!("sub-tiny-zoo-{}-roc", s.enrolled).leak(),
        format!("sub-tiny-zoo-{}-distances", s.enrolled).leak(),
        format!("sub-tiny-zoo-{}-sensitivity", s.enrolled).leak(),
    ];
    for stem in stems {
        for ext in ["png", "svg"] {
            let f = paper.join("figures").join(format!("{stem}.{ext}"));
            let bytes = std::fs::read(&f).unwrap_or_else(|_| panic!("missing {}", f.display()));
            assert!(bytes.len() > 1000, "{} is {} bytes", f.display(), bytes.len());
            if ext == "png" {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            } else {
                assert!(String::from_utf8_lossy(&bytes).contains("<svg"));
            }
        }
    }
    for t in
        ["provenance", "cluster-tiny-clusters", "sub-tiny-detection", "sub-tiny-thresholds", "sub-tiny-pairs"]
    {
        assert!(paper.join("tables").join(format!("{t}.md")).is_file(), "table {t}");
    }
    let md = std::fs::read_to_string(paper.join("paper.md")).unwrap();
    assert!(md.contains("| zoo-w24 | identity |") && md.contains("| weight-noise |"), "{md}");
    let html = std::fs::read_to_string(paper.join("paper.html")).unwrap();
    assert!(html.contains("<table>"));
    // Regenerating changes nothing (no timestamps in tables or paper).
    let before = std::fs::read(paper.join("tables/sub-tiny-detection.md")).unwrap();
    let again = gapbench_in_project(&[
        "report",
        "--results",
        results.to_str().unwrap(),
        "--out",
        paper.to_str().unwrap(),
    ]);
    assert!(again.status.success());
    assert_eq!(before, std::fs::read(paper.join("tables/sub-tiny-detection.md")).unwrap());
    assert_eq!(md, std::fs::read_to_string(paper.join("paper.md")).unwrap());
}

#[test]
fn cluster_zoo_seed_offset_needs_a_zoo_and_changes_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("c.toml");
    std::fs::write(&p, CLUSTER).unwrap();
    let plain = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    std::fs::write(&p, format!("{CLUSTER}zoo_seed_offset = 1000\n")).unwrap();
    let shifted = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert!(shifted.status.success(), "{}", String::from_utf8_lossy(&shifted.stderr));
    assert_ne!(plain.stdout, shifted.stdout);
    let no_zoo = CLUSTER.replace("zoo = \"tiny\"\n", "zoo_seed_offset = 3\n");
    std::fs::write(&p, no_zoo).unwrap();
    let bad = gapbench_in_project(&["validate", p.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("zoo_seed_offset") && err.contains("c.toml"), "{err}");
}
