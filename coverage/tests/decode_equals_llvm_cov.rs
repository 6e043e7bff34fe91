//! In-process decoding gives what `llvm-profdata merge -sparse` + `llvm-cov export` give, on a real
//! instrumented build of this workspace and the real snapshots of an exploration: for every file the
//! segments, the instrumented and covered lines (LLVM's line rule) and the regions with their counts;
//! for every function its name, count, regions, branches and files; the function spans.
//!
//! It needs the build and the snapshots, so `make faulty` runs it after its exploration:
//! `CLOTURE_DECODE_OBJECT=target/llvm-cov-target/debug/cinema-faulty
//!  CLOTURE_DECODE_PROFILES=target/llvm-cov-target cargo test -p cloture-coverage
//!  --test decode_equals_llvm_cov -- --include-ignored` (absolute paths), and `make faulty-processes`
//! with the cinema binary and its four services' snapshots (`make faulty SYSTEM=shop` with the shop's, and
//! `CLOTURE_DECODE_SOURCES=examples/shop`). Each `.profraw` there is compared alone, and
//! all of them merged. The LLVM tools are found as the engine finds them ([`LlvmTools::locate`]).
//!
//! Per-file counts are compared as this project computes them (lines from segments, regions from the
//! functions' regions), not with the export's `summary`, which sums per instantiation group (see
//! `lines.rs`); equal segments and equal function regions imply equal summaries anyway.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloture_coverage::{function_spans, Decoder, Export, LineCoverage, LlvmTools, RegionCoverage};

fn env_path(name: &str) -> PathBuf {
    let value = std::env::var_os(name)
        .unwrap_or_else(|| panic!("{name} is not set: this test compares with an instrumented build (make faulty)"));
    PathBuf::from(value)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the coverage crate is in the workspace").to_path_buf()
}

/// Files `llvm-cov export` leaves out by the engine's default `-ignore-filename-regex`.
fn ignored_by_default(filename: &str) -> bool {
    ["/.cargo/registry/", "/.cargo/git/", "/rustc/", "/lib/rustlib/"].iter().any(|p| filename.contains(p))
}

fn tools_export(tools: &LlvmTools, object: &Path, raws: &[PathBuf]) -> Export {
    let dir = std::env::temp_dir().join(format!("cloture-decode-equals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let data = dir.join("merged.profdata");
    tools.merge(raws, &data).expect("llvm-profdata merge");
    let export = tools.export(&data, &[object.to_path_buf()], &[]).expect("llvm-cov export");
    std::fs::remove_dir_all(&dir).expect("cleanup");
    export
}

/// Compares one decoding with llvm-cov's; returns how many files and functions were compared.
fn assert_equal(expected: &Export, actual: &Export, root: &Path, label: &str) -> (usize, usize) {
    let mut compared = 0;
    for file in expected.files() {
        let ours = actual
            .files()
            .find(|f| f.filename == file.filename)
            .unwrap_or_else(|| panic!("{label}: {} is missing from the decoding", file.filename));
        assert_eq!(ours.segments, file.segments, "{label}: segments of {}", file.filename);
        compared += 1;
    }
    for file in actual.files().filter(|f| !expected.files().any(|e| e.filename == f.filename)) {
        assert!(ignored_by_default(&file.filename), "{label}: {} is decoded but not exported", file.filename);
    }
    let expected_functions: Vec<_> = expected.functions().collect();
    let actual_functions: Vec<_> = actual.functions().collect();
    assert_eq!(actual_functions.len(), expected_functions.len(), "{label}: number of functions");
    for (ours, theirs) in actual_functions.iter().zip(&expected_functions) {
        assert_eq!(ours, theirs, "{label}: function {}", theirs.name);
    }

    let listed = |export: &Export| {
        let mut only = export.clone();
        only.data[0].files.retain(|f| expected.files().any(|e| e.filename == f.filename));
        only
    };
    let (expected_lines, actual_lines) =
        (LineCoverage::from_export(expected, root), LineCoverage::from_export(&listed(actual), root));
    for (path, lines) in &expected_lines.files {
        let ours = actual_lines.file(path).unwrap_or_else(|| panic!("{label}: no lines for {path}"));
        assert_eq!(ours.instrumented.len(), lines.instrumented.len(), "{label}: instrumented lines of {path}");
        assert_eq!(ours.covered, lines.covered, "{label}: covered lines of {path}");
    }
    assert_eq!(actual_lines, expected_lines, "{label}: line coverage");
    let (expected_regions, actual_regions) =
        (RegionCoverage::from_export(expected, root), RegionCoverage::from_export(&listed(actual), root));
    for path in expected_regions.files.keys() {
        assert_eq!(actual_regions.stats(path), expected_regions.stats(path), "{label}: region counts of {path}");
    }
    assert_eq!(actual_regions, expected_regions, "{label}: regions");
    assert_eq!(function_spans(actual, root), function_spans(expected, root), "{label}: function spans");
    (compared, expected_functions.len())
}

#[test]
#[ignore = "needs an instrumented build and its snapshots: `make faulty` runs it with them"]
fn decoding_every_snapshot_of_an_exploration_equals_llvm_cov_export() {
    let object = env_path("CLOTURE_DECODE_OBJECT");
    let dir = env_path("CLOTURE_DECODE_PROFILES");
    let mut profiles: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "profraw"))
        .collect();
    profiles.sort();
    assert!(!profiles.is_empty(), "no .profraw in {}", dir.display());
    let tools = LlvmTools::locate().expect("the LLVM tools (scripts/ensure-tools.sh installs them)");
    let root = workspace_root();
    let started = Instant::now();
    let decoder = Decoder::open(std::slice::from_ref(&object)).expect("the mapping of the instrumented build");
    let opened = started.elapsed();
    let bytes: Vec<Vec<u8>> = profiles.iter().map(|p| std::fs::read(p).expect("profraw")).collect();

    let (mut decoding, mut exporting) = (Duration::ZERO, Duration::ZERO);
    let mut cases: Vec<(String, Vec<usize>)> =
        profiles.iter().enumerate().map(|(i, p)| (p.display().to_string(), vec![i])).collect();
    cases.push(("all snapshots merged".to_string(), (0..profiles.len()).collect()));
    for (label, members) in &cases {
        let raws: Vec<&[u8]> = members.iter().map(|&i| bytes[i].as_slice()).collect();
        let started = Instant::now();
        let actual = decoder.export(&raws).unwrap_or_else(|e| panic!("{label}: {e}"));
        decoding += started.elapsed();
        let started = Instant::now();
        let paths: Vec<PathBuf> = members.iter().map(|&i| profiles[i].clone()).collect();
        let expected = tools_export(&tools, &object, &paths);
        exporting += started.elapsed();
        let (files, functions) = assert_equal(&expected, &actual, &root, label);
        assert!(files > 0 && functions > 0, "{label}: nothing compared");
    }
    eprintln!(
        "{} decodings equal to llvm-cov's ({} functions in the mapping): mapping read in {:.1} ms, \
         decoding {:.1} ms in all, the tools {:.1} ms in all",
        cases.len(),
        decoder.function_count(),
        opened.as_secs_f64() * 1000.0,
        decoding.as_secs_f64() * 1000.0,
        exporting.as_secs_f64() * 1000.0
    );
}

#[test]
#[ignore = "needs an instrumented build and its snapshots: `make faulty` runs it with them"]
fn decoding_restricted_to_sources_keeps_their_lines_and_regions() {
    let object = env_path("CLOTURE_DECODE_OBJECT");
    let dir = env_path("CLOTURE_DECODE_PROFILES");
    let root = workspace_root();
    let profile = std::fs::read_dir(&dir)
        .expect("profiles")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "profraw"))
        .expect("a .profraw");
    let raw = std::fs::read(&profile).expect("profraw");
    let decoder = Decoder::open(std::slice::from_ref(&object)).expect("mapping");
    let everything = decoder.export(&[&raw]).expect("decodes");
    // The explored system's sources: the cinema's, or those named by CLOTURE_DECODE_SOURCES (`make faulty
    // SYSTEM=shop`: examples/shop).
    let system = std::env::var("CLOTURE_DECODE_SOURCES").unwrap_or_else(|_| "cinema".to_string());
    let sources: Vec<PathBuf> =
        everything.files().map(|f| PathBuf::from(&f.filename)).filter(|f| f.starts_with(root.join(&system))).collect();
    assert!(!sources.is_empty(), "the build has the sources of {system}");
    let restricted = decoder.with_sources(&sources).export(&[&raw]).expect("decodes");
    assert_eq!(restricted.files().count(), sources.len());
    let mut listed = everything.clone();
    listed.data[0].files.retain(|f| sources.contains(&PathBuf::from(&f.filename)));
    assert_eq!(LineCoverage::from_export(&restricted, &root), LineCoverage::from_export(&listed, &root));
    assert_eq!(RegionCoverage::from_export(&restricted, &root), RegionCoverage::from_export(&listed, &root));
    let in_sources = |export: &Export| {
        let spans = function_spans(export, &root);
        spans.into_iter().filter(|s| s.file.starts_with(&format!("{system}/"))).collect::<Vec<_>>()
    };
    assert_eq!(in_sources(&restricted), in_sources(&everything));
}
