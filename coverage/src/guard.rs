//! Maps a call site to the failure-handling lines it guards: the lines of
//! the enclosing function, after the call, that the fault-free reference
//! run never executed. Also derives function line spans from an export.
//! Pure: no I/O.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use crate::export::Export;
use crate::lines::{normalize_key, relative_key, LineCoverage};

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
}
