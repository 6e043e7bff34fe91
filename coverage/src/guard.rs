//! Maps a call site to the failure handling it guards. With regions: the
//! uncovered paths after the call in its function, up to the function's next
//! call site — a path being a run of consecutive uncovered code regions, so
//! that a `?` whose line ran shows as a path of its own (its error exit) and
//! a whole unrun `match` arm counts once. With lines only: the lines of the
//! enclosing function, after the call, that the reference run never executed.
//! Also derives function line spans from an export. Pure: no I/O.

use std::collections::{BTreeSet, HashSet};
use std::ops::Bound;
use std::path::Path;

use crate::export::Export;
use crate::lines::{normalize_key, relative_key, LineCoverage};
use crate::mapping::RegionKind;
use crate::regions::CoveredRegion;

/// Line span of one function (or closure / async body) in a source file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionSpan {
    /// Workspace-relative path (see [`relative_key`]).
    pub file: String,
    /// Symbol name as exported (mangled for Rust).
    pub name: String,
    /// First line of any region of the function in its own file.
    pub start_line: u32,
    /// Last line of any region of the function in its own file.
    pub end_line: u32,
}

impl FunctionSpan {
    fn contains(&self, line: u32) -> bool {
        self.start_line <= line && line <= self.end_line
    }
}

/// Spans of every function in the export, from its regions in the file of
/// its first region. Instantiations of one generic or async function share
/// a span and are reported once (under the first name seen). Sorted by
/// (file, start, end, name).
pub fn function_spans(export: &Export, root: &Path) -> Vec<FunctionSpan> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in export.functions() {
        let Some(first) = f.regions.first() else {
            continue;
        };
        let Some(filename) = f.filenames.get(first.file_id as usize) else {
            continue;
        };
        let own = f.regions.iter().filter(|r| r.file_id == first.file_id);
        let start_line = own.clone().map(|r| r.line_start).min().unwrap_or(first.line_start);
        let end_line = own.map(|r| r.line_end).max().unwrap_or(first.line_end);
        let file = relative_key(filename, root);
        if seen.insert((file.clone(), start_line, end_line)) {
            out.push(FunctionSpan { file, name: f.name.clone(), start_line, end_line });
        }
    }
    out.sort_by(|a, b| (&a.file, a.start_line, a.end_line, &a.name).cmp(&(&b.file, b.start_line, b.end_line, &b.name)));
    out
}

/// Innermost span of `file` containing `line`: the shortest, and on equal
/// length the one starting last.
pub fn innermost<'a>(spans: &'a [FunctionSpan], file: &str, line: u32) -> Option<&'a FunctionSpan> {
    let file = normalize_key(file);
    spans
        .iter()
        .filter(|s| s.file == file && s.contains(line))
        .min_by_key(|s| (s.end_line - s.start_line, std::cmp::Reverse(s.start_line)))
}

/// Lines guarded by the call at `file:line`: instrumented lines after `line`
/// up to the end of the innermost function containing it that the reference
/// run did not cover. Empty when no function contains the call site or the
/// file has no coverage. `file` is workspace-relative.
pub fn guarded_lines(reference: &LineCoverage, spans: &[FunctionSpan], file: &str, line: u32) -> BTreeSet<u32> {
    let Some(span) = innermost(spans, file, line) else {
        return BTreeSet::new();
    };
    let Some(lines) = reference.file(file) else {
        return BTreeSet::new();
    };
    if line >= span.end_line {
        return BTreeSet::new();
    }
    lines
        .instrumented
        .range(line.saturating_add(1)..=span.end_line)
        .filter(|l| !lines.covered.contains(l))
        .copied()
        .collect()
}

/// A position in a source file: (line, column), both from 1.
pub type Position = (u32, u32);

/// An uncovered path: from the start of the first region of a run of uncovered code regions to the end of
/// its last.
pub type UncoveredPath = (Position, Position);

/// The uncovered paths a call at `at` guards, in a file whose regions (sorted, as
/// [`crate::RegionCoverage`] keeps them) are `regions`: the maximal runs of consecutive uncovered code
/// regions that start after the call and before `until` (the next call site of the same function, when
/// there is one), in the innermost function containing the call.
///
/// Why this rule: what a call's failure makes run is its handling — a `match` arm on its result, the
/// error exit of a `?` (a region of its own, uncovered while the line around it counts as covered), a
/// `map_err` closure — and that handling comes after the call and before the function's next call, whose
/// own failures the code after it handles. A run of uncovered regions is one path however many
/// expressions it holds, so a long unrun arm does not outweigh a `?` exit. Empty when no function
/// contains the call.
pub fn guarded_paths(
    regions: &[CoveredRegion],
    spans: &[FunctionSpan],
    file: &str,
    at: Position,
    until: Option<Position>,
) -> Vec<UncoveredPath> {
    let Some(span) = innermost(spans, file, at.0) else {
        return Vec::new();
    };
    let past_function = (span.end_line.saturating_add(1), 0);
    let end = until.map_or(past_function, |until| until.min(past_function));
    let first = regions.partition_point(|r| r.start() <= at);
    let mut paths = Vec::new();
    let mut open: Option<UncoveredPath> = None;
    let in_range = regions[first..].iter().take_while(|r| r.start() < end);
    for region in in_range.filter(|r| r.kind == RegionKind::Code) {
        match (&mut open, region.covered()) {
            (Some(_), true) => paths.extend(open.take()),
            (Some(path), false) => path.1 = path.1.max(region.end()),
            (None, false) => open = Some((region.start(), region.end())),
            (None, true) => {}
        }
    }
    paths.extend(open);
    paths
}

/// The first of `sites` (the known call sites of `file`) after `at` that lies in the same innermost
/// function as `at`: where the handling a call at `at` guards ends. Sites in closures nested in the
/// function do not end it.
pub fn next_site_in_function(
    spans: &[FunctionSpan],
    file: &str,
    at: Position,
    sites: &BTreeSet<Position>,
) -> Option<Position> {
    let span = innermost(spans, file, at.0)?;
    sites
        .range((Bound::Excluded(at), Bound::Unbounded))
        .take_while(|site| site.0 <= span.end_line)
        .find(|site| innermost(spans, file, site.0) == Some(span))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{ExportData, ExportFunction, Region};
    use crate::lines::FileLines;

    fn region(ls: u32, le: u32, file_id: u32) -> Region {
        Region {
            line_start: ls,
            col_start: 1,
            line_end: le,
            col_end: 2,
            count: 1,
            file_id,
            expanded_file_id: 0,
            kind: 0,
        }
    }

    fn span(file: &str, name: &str, start_line: u32, end_line: u32) -> FunctionSpan {
        FunctionSpan { file: file.into(), name: name.into(), start_line, end_line }
    }

    #[test]
    fn spans_from_regions_dedup_instantiations() {
        let f = |name: &str, regions: Vec<Region>, files: &[&str]| ExportFunction {
            name: name.into(),
            count: 1,
            regions,
            branches: Vec::new(),
            filenames: files.iter().map(|s| s.to_string()).collect(),
        };
        let export = Export {
            version: None,
            kind: None,
            data: vec![ExportData {
                files: vec![],
                functions: vec![
                    // Regions of file id 1 (a macro expansion elsewhere) do not widen the span.
                    f(
                        "outer",
                        vec![region(10, 10, 0), region(11, 30, 0), region(500, 600, 1)],
                        &["/w/src/a.rs", "/rustlib/x.rs"],
                    ),
                    f("generic::<u8>", vec![region(40, 45, 0)], &["/w/src/a.rs"]),
                    f("generic::<u16>", vec![region(40, 45, 0)], &["/w/src/a.rs"]),
                    f("empty", vec![], &["/w/src/a.rs"]),
                ],
            }],
        };
        let spans = function_spans(&export, Path::new("/w"));
        assert_eq!(spans, vec![span("src/a.rs", "outer", 10, 30), span("src/a.rs", "generic::<u8>", 40, 45)]);
    }

    #[test]
    fn guarded_lines_are_uncovered_lines_after_call_in_innermost_function() {
        let reference = LineCoverage {
            files: [(
                "cinema/src/users/recitation.rs".to_owned(),
                FileLines {
                    instrumented: (10..=30).chain(40..=45).collect(),
                    covered: [10, 11, 12, 13, 16, 17, 20, 21, 22, 23, 24, 25, 29, 30].into(),
                },
            )]
            .into(),
        };
        let spans = vec![
            span("cinema/src/users/recitation.rs", "handler", 10, 30),
            // A closure inside the handler, e.g. `.map_err(|e| { .. })`.
            span("cinema/src/users/recitation.rs", "handler::{closure#0}", 20, 25),
            span("cinema/src/users/recitation.rs", "other", 40, 45),
        ];
        let f = "cinema/src/users/recitation.rs";
        assert_eq!(guarded_lines(&reference, &spans, f, 12), [14, 15, 18, 19, 26, 27, 28].into());
        assert_eq!(guarded_lines(&reference, &spans, &format!("./{f}"), 16), [18, 19, 26, 27, 28].into());
        // Inside the closure: bounded by the closure's end.
        assert!(guarded_lines(&reference, &spans, f, 21).is_empty());
        // Outside any function, in another file, or in an unknown file: nothing.
        assert!(guarded_lines(&reference, &spans, f, 35).is_empty());
        // On a function's last line (or a one-line span, like an async fn's
        // outer function): nothing after it, and no panic.
        assert!(guarded_lines(&reference, &spans, f, 30).is_empty());
        let one_line = vec![span(f, "async_outer", 12, 12)];
        assert!(guarded_lines(&reference, &one_line, f, 12).is_empty());
        assert!(guarded_lines(&reference, &spans, "cinema/src/lib.rs", 12).is_empty());
        assert_eq!(innermost(&spans, f, 22).map(|s| s.name.as_str()), Some("handler::{closure#0}"));
    }

    /// The code regions of the recitation handler's body (lines 22–37) as the fault-free run left them,
    /// from `llvm-cov export`: (line, start column, end column, count).
    const RECITATION: [(u32, u32, u32, u64); 34] = [
        (22, 9, 17, 1),
        (22, 26, 38, 1),
        (22, 39, 42, 1),
        (22, 43, 46, 1),
        (22, 48, 52, 1),
        (22, 55, 60, 1),
        (23, 13, 18, 0),
        (23, 23, 28, 0),
        (23, 29, 39, 0),
        (23, 40, 41, 0),
        (23, 52, 63, 0),
        (23, 64, 102, 0),
        (24, 9, 14, 1),
        (24, 18, 23, 1),
        (24, 23, 24, 0),
        (26, 9, 17, 1),
        (26, 49, 50, 0),
        (28, 9, 19, 1),
        (33, 17, 25, 1),
        (33, 34, 46, 1),
        (33, 47, 50, 1),
        (33, 51, 54, 1),
        (33, 63, 68, 1),
        (34, 21, 26, 0),
        (34, 31, 36, 0),
        (34, 37, 47, 0),
        (34, 48, 49, 0),
        (34, 60, 71, 0),
        (34, 72, 107, 0),
        (35, 17, 22, 1),
        (35, 26, 31, 1),
        (35, 31, 32, 0),
        (37, 39, 47, 1),
        (37, 54, 55, 0),
    ];

    fn recitation(covered_lines: &[u32]) -> Vec<CoveredRegion> {
        RECITATION
            .iter()
            .map(|&(line, col_start, col_end, count)| CoveredRegion {
                line_start: line,
                col_start,
                line_end: line,
                col_end,
                kind: RegionKind::Code,
                count: if covered_lines.contains(&line) { 1 } else { count },
                false_count: 0,
            })
            .collect()
    }

    const FILE: &str = "cinema/src/users/recitation.rs";
    const BOOKINGS: Position = (22, 39);
    const MOVIES: Position = (33, 47);

    #[test]
    fn a_call_guards_the_unrun_paths_up_to_the_next_call_each_error_exit_counting_once() {
        let spans = vec![span(FILE, "user_bookings", 16, 16), span(FILE, "user_bookings::{closure#0}", 16, 43)];
        let regions = recitation(&[]);
        let sites: BTreeSet<Position> = [BOOKINGS, MOVIES].into();
        assert_eq!(next_site_in_function(&spans, FILE, BOOKINGS, &sites), Some(MOVIES));
        assert_eq!(next_site_in_function(&spans, FILE, MOVIES, &sites), None);
        // The connect arm (six regions, one path), then the error exits of `other?` and `.json()?`.
        assert_eq!(
            guarded_paths(&regions, &spans, FILE, BOOKINGS, Some(MOVIES)),
            [((23, 13), (23, 102)), ((24, 23), (24, 24)), ((26, 49), (26, 50))]
        );
        // The movies call, the last of its function, guards up to the function's end.
        assert_eq!(
            guarded_paths(&regions, &spans, FILE, MOVIES, None),
            [((34, 21), (34, 107)), ((35, 31), (35, 32)), ((37, 54), (37, 55))]
        );
        // Without a next call, the bookings call also guards what follows the movies call.
        assert_eq!(guarded_paths(&regions, &spans, FILE, BOOKINGS, None).len(), 6);
        // Once a fault ran the connect arm, two paths remain.
        let after_connect = recitation(&[23]);
        assert_eq!(guarded_paths(&after_connect, &spans, FILE, BOOKINGS, Some(MOVIES)).len(), 2);
        // Outside any function: nothing.
        assert!(guarded_paths(&regions, &spans, FILE, (50, 1), None).is_empty());
    }

    #[test]
    fn a_call_in_a_nested_closure_does_not_end_the_guarded_code() {
        let spans = vec![span(FILE, "handler", 20, 40), span(FILE, "handler::{closure#0}", 30, 31)];
        let sites: BTreeSet<Position> = [(22, 5), (30, 9), (36, 5)].into();
        assert_eq!(next_site_in_function(&spans, FILE, (22, 5), &sites), Some((36, 5)));
        assert_eq!(next_site_in_function(&spans, FILE, (30, 9), &sites), None, "the closure ends at line 31");
        assert_eq!(next_site_in_function(&spans, FILE, (50, 1), &sites), None);
    }
}
