//! Checks the line rule, spans and guarded lines against a real LLVM 22
//! `llvm-cov export` of `fixtures/async_branch.rs`, and against the `DA:`
//! lines LLVM itself wrote for the same profile (`fixtures/async_branch.lcov`).
//!
//! The fixture came from a throwaway crate built by `cargo llvm-cov run`
//! (rustc 1.95, LLVM 22.1), whose `main` did: `fetch(0)` (warm-up),
//! `runtime::reset()`, `fetch(5)`, `classify(1u8)`, `classify(20u16)`,
//! `runtime::snapshot()`. The snapshot alone was merged and exported with
//! `llvm-cov export -format=text -skip-expansions ... src/lib.rs`, and the
//! function list trimmed to that file's functions. The export holds both the functions' regions and
//! the segments LLVM built from them, so it also checks our segment builder.

use std::collections::BTreeSet;
use std::path::Path;

use cloture_coverage::segments::{build_segments, CountedRegion};
use cloture_coverage::{function_spans, guarded_lines, Export, LineCoverage, RegionKind};

const ROOT: &str = "/tmp/covdemo";

fn export() -> Export {
    let json = include_bytes!("fixtures/async_branch.json");
    Export::parse(json, "fixtures/async_branch.json").expect("fixture parses")
}

fn set(lines: &[u32]) -> BTreeSet<u32> {
    lines.iter().copied().collect()
}

#[test]
fn lines_are_what_a_reader_expects() {
    let export = export();
    assert_eq!(export.version.as_deref(), Some("3.1.0"));
    let cov = LineCoverage::from_export(&export, Path::new(ROOT));
    assert_eq!(cov.files.keys().collect::<Vec<_>>(), vec!["src/lib.rs"]);
    let lib = cov.file("src/lib.rs").expect("lib.rs");

    // Imports, blank lines, `} else {` (21) and the bare `loop {` (33) hold no code.
    let code: Vec<u32> = (5..=11)
        .chain(13..=15)
        .chain([17, 18, 19, 20, 22, 24])
        .chain(26..=28)
        .chain([30, 31, 32, 34, 35, 36, 38])
        .collect();
    assert_eq!(lib.instrumented, set(&code));

    // Not run since the reset: the early return (7, only taken by the warm-up
    // call), `never_called` (26-28) and the `Poll::Pending` path of block_on (36).
    assert_eq!(lib.uncovered().collect::<Vec<_>>(), vec![7, 26, 27, 28, 36]);
    // Both arms of the generic `classify` are covered, each by a different
    // instantiation (u8 took "small", u16 took "big"): file segments union them.
    assert!(lib.covered.contains(&20) && lib.covered.contains(&22));
    // The async fn bodies are covered once each, not double counted.
    assert_eq!(lib.covered.len(), 21);
    assert_eq!(cov.covered_count(), 21);
}

#[test]
fn line_rule_matches_llvm_lcov_output() {
    let lcov = include_str!("fixtures/async_branch.lcov");
    let (mut instrumented, mut covered) = (BTreeSet::new(), BTreeSet::new());
    for da in lcov.lines().filter_map(|l| l.strip_prefix("DA:")) {
        let (line, count) = da.split_once(',').expect("DA:line,count");
        let line: u32 = line.parse().expect("line");
        instrumented.insert(line);
        if count != "0" {
            covered.insert(line);
        }
    }
    let cov = LineCoverage::from_export(&export(), Path::new(ROOT));
    let lib = cov.file("src/lib.rs").expect("lib.rs");
    assert_eq!(lib.instrumented, instrumented);
    assert_eq!(lib.covered, covered);
}

#[test]
fn spans_and_guarded_lines() {
    let export = export();
    let spans = function_spans(&export, Path::new(ROOT));
    let got: Vec<(u32, u32)> = spans.iter().map(|s| (s.start_line, s.end_line)).collect();
    // fetch's outer fn (5..5) and its coroutine body (5..11), likewise double;
    // classify's two instantiations share one span.
    assert_eq!(got, vec![(5, 5), (5, 11), (13, 13), (13, 15), (17, 24), (26, 28), (30, 38)]);
    assert!(spans.iter().all(|s| s.file == "src/lib.rs"));

    let reference = LineCoverage::from_export(&export, Path::new(ROOT));
    // The `if x == 0` check guards the untaken early return.
    assert_eq!(guarded_lines(&reference, &spans, "src/lib.rs", 6), set(&[7]));
    // Nothing after the `.await` was left unrun.
    assert!(guarded_lines(&reference, &spans, "src/lib.rs", 9).is_empty());
    // In block_on, the poll call guards the pending path.
    assert_eq!(guarded_lines(&reference, &spans, "src/lib.rs", 34), set(&[36]));
}

#[test]
fn segments_built_from_the_functions_regions_equal_llvm_covs() {
    // The export lists every function's counted regions and, separately, the segments LLVM built
    // from them for the file: our segment builder must build the same from the same regions.
    let export = export();
    let file = export.files().next().expect("one file");
    let mut regions: Vec<CountedRegion> = export
        .functions()
        .flat_map(|f| f.regions.iter().filter(move |r| f.filenames[r.file_id as usize] == file.filename))
        .map(|r| CountedRegion {
            line_start: r.line_start,
            col_start: r.col_start,
            line_end: r.line_end,
            col_end: r.col_end,
            kind: RegionKind::from_number(r.kind).expect("a known kind"),
            count: r.count,
            false_count: 0,
        })
        .collect();
    assert_eq!(regions.len(), 47);
    assert_eq!(build_segments(&mut regions), file.segments);
}
