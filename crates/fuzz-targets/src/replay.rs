//! Every seed and every saved regression input, replayed through its target on each test run, so
//! that a bug the fuzzer once found stays fixed without running the fuzzer.

use std::path::{Path, PathBuf};

use crate::TARGETS;

/// `fuzz/<kind>/<target>` at the repository root.
fn inputs_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join(target)
}

/// The files in `dir`, sorted, with their contents; none when it does not exist.
fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(listing) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = listing.map(|e| e.expect("a directory entry").path()).collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("an input file reads");
            (p, bytes)
        })
        .collect()
}

#[test]
fn every_regression_input_and_seed_replays_cleanly() {
    let mut replayed = 0;
    for target in TARGETS {
        for kind in ["regressions", "seeds"] {
            for (path, bytes) in inputs(&inputs_dir(kind, target.name)) {
                eprintln!("{}: {}", target.name, path.display());
                (target.run)(&bytes);
                replayed += 1;
            }
        }
        for seed in (target.seeds)() {
            (target.run)(&seed);
        }
    }
    assert!(replayed >= TARGETS.len(), "only {replayed} input files found under fuzz/");
}

#[test]
fn every_target_has_a_fuzz_binary_and_committed_seeds() {
    for target in TARGETS {
        let binary = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/fuzz_targets")
            .join(format!("{}.rs", target.name));
        assert!(binary.is_file(), "{} has no fuzz binary at {}", target.name, binary.display());
        let committed = inputs(&inputs_dir("seeds", target.name));
        let generated = (target.seeds)();
        assert_eq!(
            committed.iter().map(|(_, bytes)| bytes).collect::<Vec<_>>(),
            generated.iter().collect::<Vec<_>>(),
            "fuzz/seeds/{} is stale: write it again with `cargo test -p conclave-fuzz-targets \
             -- --ignored write_seed_files`",
            target.name
        );
    }
}

/// Writes each target's seeds to `fuzz/seeds/<target>/`, which the fuzzer starts its corpus from.
#[test]
#[ignore = "writes files into the source tree; run by hand after changing a seed"]
fn write_seed_files() {
    for target in TARGETS {
        let dir = inputs_dir("seeds", target.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the seed directory can be created");
        for (i, seed) in (target.seeds)().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), seed).expect("a seed file writes");
        }
    }
}
