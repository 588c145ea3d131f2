//! Replays every input kept for every fuzz target (the generated seeds in
//! `seeds/<target>/`, the fuzzer's minimized finds in `corpus/<target>/`
//! and the crash inputs in `crashes/<target>/`) through the targets' functions, on stable, in
//! `cargo test`. An input that panics fails the test; one that makes a
//! decoder allocate beyond [`LIMIT`] aborts the test binary (the allocator
//! fails the allocation), which fails it too.

use std::alloc::System;
use std::fs;
use std::path::{Path, PathBuf};

use cap::Cap;
use runnel_fuzz::{Target, TARGETS};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// The most the whole test binary may hold at once. Inputs are at most a few
/// KB; the largest legitimate allocation is a decompressed batch, capped at
/// 64 MiB (`batch::MAX_DECOMPRESSED`).
const LIMIT: usize = 1 << 30;

/// Sets [`LIMIT`] once, before any test decodes anything. Each test calling
/// `set_limit` itself raced: two concurrent calls both read the old limit
/// (`usize::MAX`), both subtract the difference from `Cap`'s remaining count,
/// and the second finds it would go below zero and fails.
fn limit_allocations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| ALLOC.set_limit(LIMIT).expect("set the allocation limit"));
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The files of `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn target(name: &str) -> &'static Target {
    TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
}

/// Runs every seed, corpus and crash file of `name`; returns how many of
/// each.
fn replay(name: &str) -> [usize; 3] {
    limit_allocations();
    let t = target(name);
    let mut counts = [0usize; 3];
    for (i, dir) in ["seeds", "corpus", "crashes"].iter().enumerate() {
        for path in inputs(&root().join(dir).join(name)) {
            let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!("{}", path.display());
            (t.run)(&data);
            counts[i] += 1;
        }
    }
    counts
}

#[test]
fn decode_request_corpus_and_crashes() {
    let [seeds, _, crashes] = replay("decode_request");
    // Missing inputs would make this test pass without testing anything.
    assert!(seeds >= 100, "only {seeds} decode_request seeds");
    assert!(crashes >= 7, "only {crashes} decode_request crash files");
}

#[test]
fn validate_batch_corpus_and_crashes() {
    let [seeds, _, crashes] = replay("validate_batch");
    assert!(seeds >= 10, "only {seeds} validate_batch seeds");
    assert!(crashes >= 1, "only {crashes} validate_batch crash files");
}

/// Every count or length field of every request the broker serves, set to
/// 2^31-1 (an INT32 count) or 2^32-1 (a compact varint count): decoding must
/// refuse it without sizing an allocation from it.
#[test]
fn huge_counts_at_every_offset_of_every_seed() {
    limit_allocations();
    let seeds = inputs(&root().join("seeds").join("decode_request"));
    assert!(!seeds.is_empty(), "no decode_request seeds");
    let patterns: [&[u8]; 2] = [&[0x7f, 0xff, 0xff, 0xff], &[0xff, 0xff, 0xff, 0xff, 0x0f]];
    let mut runs = 0usize;
    for path in seeds {
        let seed = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for pat in patterns {
            // Offsets 0..8 hold the api key, version and correlation id.
            for at in 8..seed.len() {
                let mut f = seed.clone();
                let end = (at + pat.len()).min(f.len());
                f[at..end].copy_from_slice(&pat[..end - at]);
                runnel_fuzz::decode_request(&f);
                runs += 1;
            }
        }
    }
    eprintln!("{runs} frames with a huge count decoded");
}
