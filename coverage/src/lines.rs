//! Per-file line coverage computed from export segments with LLVM's own
//! line rule, keyed by workspace-relative path. Pure: no I/O.
//!
//! Refs: llvm/lib/ProfileData/Coverage/CoverageMapping.cpp
//! (`LineCoverageStats::LineCoverageStats`, `LineCoverageIterator::operator++`)
//! and llvm/include/llvm/ProfileData/Coverage/CoverageMapping.h
//! (`LineCoverageIterator` starts at the first segment's line with no
//! wrapped segment and stops after the line holding the last segment).
//! This is the rule behind `llvm-cov report`'s line column and the `DA:`
//! records of `llvm-cov export -format=lcov`.
//!
//! We deliberately do not use `summary.lines` from the export: it sums
//! per-function-group line counts and counts an `async fn`'s body twice
//! (once for the outer fn, once for its coroutine). The file-level
//! `segments` list is built by LLVM from the regions of *all* function
//! records of the file (every instantiation and every coroutine) with
//! identical regions combined, so a line covered in any instantiation is
//! covered here.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use crate::export::{Export, Segment};

/// LLVM's verdict for one source line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineStats {
    /// 1-based line number.
    pub line: u32,
    /// Whether the line holds instrumented code.
    pub mapped: bool,
    /// Execution count (0 when not mapped).
    pub count: u64,
    /// Whether two or more regions start on the line.
    pub has_multiple_regions: bool,
}

/// Applies LLVM's line rule to a file's segments.
///
/// Emits one entry per line from the first segment's line to the last
/// segment's line, mapped or not. Segments are expected sorted by
/// (line, col) as LLVM emits them; they are sorted here if they are not.
pub fn line_stats(segments: &[Segment]) -> Vec<LineStats> {
    if segments.is_empty() {
        return Vec::new();
    }
    let sorted = segments.windows(2).all(|w| (w[0].line, w[0].col) <= (w[1].line, w[1].col));
    let segs: Cow<'_, [Segment]> = if sorted {
        Cow::Borrowed(segments)
    } else {
        let mut v = segments.to_vec();
        v.sort_by_key(|s| (s.line, s.col));
        Cow::Owned(v)
    };

    let mut out = Vec::new();
    let mut wrapped: Option<&Segment> = None;
    let mut line = segs[0].line;
    let mut next = 0;
    let mut prev: &[Segment] = &[];
    loop {
        if next == segs.len() {
            break;
        }
        if let Some(last) = prev.last() {
            wrapped = Some(last);
        }
        let start = next;
        while next < segs.len() && segs[next].line == line {
            next += 1;
        }
        let current = &segs[start..next];
        out.push(stats_for_line(current, wrapped, line));
        prev = current;
        line += 1;
    }
    out
}

/// `LineCoverageStats` for one line: `current` are the segments starting on
/// it, `wrapped` the last segment of the closest earlier line that had any.
fn stats_for_line(current: &[Segment], wrapped: Option<&Segment>, line: u32) -> LineStats {
    let is_start_of_region = |s: &&Segment| !s.is_gap_region && s.has_count && s.is_region_entry;
    let min_region_count = current.iter().filter(is_start_of_region).take(2).count();
    let start_of_skipped = current.first().is_some_and(|s| !s.has_count && s.is_region_entry);

    let mut mapped = !start_of_skipped && (wrapped.is_some_and(|w| w.has_count) || min_region_count > 0);
    // "if there is any starting segment at this line with a counter, it must be mapped"
    mapped |= current.iter().any(|s| s.is_region_entry && s.has_count);

    let mut count = 0;
    if mapped {
        if let Some(w) = wrapped {
            count = w.count;
        }
        if min_region_count > 0 {
            for s in current.iter().filter(is_start_of_region) {
                count = count.max(s.count);
            }
        }
    }
    LineStats { line, mapped, count, has_multiple_regions: min_region_count > 1 }
}

/// Instrumented and covered lines of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileLines {
    /// Lines LLVM considers mapped (hold instrumented code).
    pub instrumented: BTreeSet<u32>,
    /// Mapped lines with a non-zero count; always a subset of `instrumented`.
    pub covered: BTreeSet<u32>,
}

impl FileLines {
    /// Builds the line sets for a segment list.
    pub fn from_segments(segments: &[Segment]) -> FileLines {
        let stats = line_stats(segments);
        let mapped = || stats.iter().filter(|s| s.mapped);
        // Lines come in ascending order: the sets are built in bulk.
        FileLines {
            instrumented: mapped().map(|s| s.line).collect(),
            covered: mapped().filter(|s| s.count > 0).map(|s| s.line).collect(),
        }
    }

    /// Instrumented lines that were not executed.
    pub fn uncovered(&self) -> impl Iterator<Item = u32> + '_ {
        self.instrumented.difference(&self.covered).copied()
    }

    /// Merges another file's lines into this one.
    pub fn extend(&mut self, other: &FileLines) {
        self.instrumented.extend(other.instrumented.iter().copied());
        self.covered.extend(other.covered.iter().copied());
    }
}

/// Line coverage of a whole program run, keyed by workspace-relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineCoverage {
    /// Path (relative to the root when under it, else as exported) → lines.
    pub files: BTreeMap<String, FileLines>,
}

impl LineCoverage {
    /// Converts an export; file names under `root` become root-relative
    /// with `/` separators, others are kept as given.
    pub fn from_export(export: &Export, root: &Path) -> LineCoverage {
        let mut cov = LineCoverage::default();
        for file in export.files() {
            let lines = FileLines::from_segments(&file.segments);
            cov.files.entry(relative_key(&file.filename, root)).or_default().extend(&lines);
        }
        cov
    }

    /// Lines covered in either run (instrumented lines likewise).
    pub fn union(&self, other: &LineCoverage) -> LineCoverage {
        let mut out = self.clone();
        for (path, lines) in &other.files {
            out.files.entry(path.clone()).or_default().extend(lines);
        }
        out
    }

    /// Lines covered here but not in `base`, per file; files with none are left out.
    pub fn newly_covered(&self, base: &LineCoverage) -> BTreeMap<String, BTreeSet<u32>> {
        let mut out = BTreeMap::new();
        for (path, lines) in &self.files {
            let new: BTreeSet<u32> = match base.files.get(path) {
                Some(b) => lines.covered.difference(&b.covered).copied().collect(),
                None => lines.covered.clone(),
            };
            if !new.is_empty() {
                out.insert(path.clone(), new);
            }
        }
        out
    }

    /// Lines of one file; `path` is workspace-relative (a leading `./` is ignored).
    pub fn file(&self, path: &str) -> Option<&FileLines> {
        self.files.get(normalize_key(path))
    }

    /// Covered lines over all files.
    pub fn covered_count(&self) -> usize {
        self.files.values().map(|f| f.covered.len()).sum()
    }

    /// Instrumented lines over all files.
    pub fn instrumented_count(&self) -> usize {
        self.files.values().map(|f| f.instrumented.len()).sum()
    }

    /// Covered lines per file, the shape `newly_covered` and `minimal_cover` use.
    pub fn covered_sets(&self) -> BTreeMap<String, BTreeSet<u32>> {
        self.files.iter().filter(|(_, f)| !f.covered.is_empty()).map(|(p, f)| (p.clone(), f.covered.clone())).collect()
    }
}

/// The key under which `filename` is stored: relative to `root` with `/`
/// separators when it lies under `root`, otherwise unchanged.
pub fn relative_key(filename: &str, root: &Path) -> String {
    match Path::new(filename).strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            let parts: Vec<String> = rel
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            parts.join("/")
        }
        _ => filename.to_owned(),
    }
}

/// Drops a leading `./` from a caller-supplied relative path.
pub(crate) fn normalize_key(path: &str) -> &str {
    let mut p = path;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(line: u32, col: u32, count: u64, has: bool, entry: bool, gap: bool) -> Segment {
        Segment::new(line, col, count, has, entry, gap)
    }

    fn mapped(stats: &[LineStats]) -> Vec<(u32, u64)> {
        stats.iter().filter(|s| s.mapped).map(|s| (s.line, s.count)).collect()
    }

    #[test]
    fn function_body_with_untaken_branch() {
        // 1 fn f(x: bool) {        region 1:1-6:2 count 1
        // 2     if x {             gap after condition, then-branch region 2:10-4:6 count 0
        // 3         boom();
        // 4     }                  outer region resumes at 4:6 count 1
        // 5     ok();
        // 6 }
        let segs = [
            seg(1, 1, 1, true, true, false),
            seg(2, 9, 0, true, true, true),
            seg(2, 10, 0, true, true, false),
            seg(4, 6, 1, true, false, false),
            seg(6, 2, 0, false, false, false),
        ];
        let stats = line_stats(&segs);
        // Line 4 only resumes the outer region (no region entry), so LLVM
        // gives it the wrapped count of the untaken branch: 0.
        assert_eq!(mapped(&stats), vec![(1, 1), (2, 1), (3, 0), (4, 0), (5, 1), (6, 1)]);
        let lines = FileLines::from_segments(&segs);
        assert_eq!(lines.covered, [1, 2, 5, 6].into());
        assert_eq!(lines.uncovered().collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn gap_only_line_takes_wrapped_count() {
        // A line holding only a gap-region start is mapped through the wrapped
        // segment, with the wrapped count (not the gap's).
        let segs = [
            seg(1, 1, 5, true, true, false),
            seg(2, 1, 0, true, true, true),
            seg(3, 1, 5, true, true, false),
            seg(3, 9, 0, false, false, false),
        ];
        let stats = line_stats(&segs);
        assert_eq!(mapped(&stats), vec![(1, 5), (2, 5), (3, 5)]);
    }

    #[test]
    fn skipped_region_start_is_unmapped() {
        let segs = [
            seg(1, 1, 3, true, true, false),
            seg(1, 20, 0, false, false, false),
            seg(3, 1, 0, false, true, false), // skipped (cfg'd out) region
            seg(4, 1, 0, false, false, false),
        ];
        let stats = line_stats(&segs);
        // line 2 and 4 wrap a segment without count; line 3 starts a skipped region.
        assert_eq!(mapped(&stats), vec![(1, 3)]);
        assert_eq!(stats.len(), 4);
    }

    #[test]
    fn lines_after_region_end_are_unmapped_and_max_start_count_wins() {
        let segs = [
            seg(10, 1, 2, true, true, false),
            seg(10, 5, 7, true, true, false),
            seg(10, 9, 2, true, false, false),
            seg(11, 2, 0, false, false, false),
        ];
        let stats = line_stats(&segs);
        assert_eq!(stats[0], LineStats { line: 10, mapped: true, count: 7, has_multiple_regions: true });
        // line 11 wraps the (10,9) segment which has a count.
        assert_eq!(mapped(&stats), vec![(10, 7), (11, 2)]);
    }

    #[test]
    fn entry_with_count_overrides_skipped_first_segment() {
        // The first segment is a skipped-region start, but a counted region
        // also starts on the line: LLVM's `Mapped |= any_of(...)` maps it.
        let segs =
            [seg(1, 1, 0, false, true, false), seg(1, 5, 4, true, true, false), seg(1, 9, 0, false, false, false)];
        assert_eq!(mapped(&line_stats(&segs)), vec![(1, 4)]);
    }

    #[test]
    fn unsorted_segments_are_sorted_first() {
        let segs = [seg(3, 2, 0, false, false, false), seg(1, 1, 1, true, true, false)];
        assert_eq!(mapped(&line_stats(&segs)), vec![(1, 1), (2, 1), (3, 1)]);
    }

    #[test]
    fn relative_keys_and_set_operations() {
        let root = Path::new("/w");
        assert_eq!(relative_key("/w/cinema/src/a.rs", root), "cinema/src/a.rs");
        assert_eq!(relative_key("/other/a.rs", root), "/other/a.rs");
        assert_eq!(relative_key("src/a.rs", root), "src/a.rs");

        let mk = |inst: &[u32], cov: &[u32]| FileLines {
            instrumented: inst.iter().copied().collect(),
            covered: cov.iter().copied().collect(),
        };
        let a = LineCoverage { files: [("x.rs".to_owned(), mk(&[1, 2, 3], &[1]))].into() };
        let b = LineCoverage {
            files: [("x.rs".to_owned(), mk(&[1, 2, 3], &[2])), ("y.rs".to_owned(), mk(&[5], &[5]))].into(),
        };
        let u = a.union(&b);
        assert_eq!(u.file("./x.rs").expect("x").covered, [1, 2].into());
        assert_eq!(u.covered_count(), 3);
        assert_eq!(u.instrumented_count(), 4);
        let new = b.newly_covered(&a);
        assert_eq!(new, [("x.rs".to_owned(), [2].into()), ("y.rs".to_owned(), [5].into())].into());
        assert!(a.newly_covered(&u).is_empty());
    }
}
