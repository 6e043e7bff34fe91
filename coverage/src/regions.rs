//! Per-file region coverage: every region of a file (code, gap, skipped, expansion, branch) with its
//! range, kind and count, the instantiations of one function combined. Finer than lines: a region can
//! be missed on a line that counts as covered. Pure: no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::export::Export;
use crate::lines::{normalize_key, relative_key};
use crate::mapping::RegionKind;

/// One region of a source file and how often it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoveredRegion {
    pub line_start: u32,
    pub col_start: u32,
    pub line_end: u32,
    /// Column just past the end (`u32::MAX`: to the end of the line).
    pub col_end: u32,
    pub kind: RegionKind,
    /// Execution count, summed over the functions that have this region (the true count of a branch).
    pub count: u64,
    /// How often a branch condition was false; 0 for other kinds.
    pub false_count: u64,
}

impl CoveredRegion {
    /// Whether the region ran at all (for a branch: whether it was ever true).
    pub fn covered(&self) -> bool {
        self.count > 0
    }

    /// Where the region starts, as (line, column).
    pub fn start(&self) -> (u32, u32) {
        (self.line_start, self.col_start)
    }

    /// Where the region ends, as (line, column just past its end).
    pub fn end(&self) -> (u32, u32) {
        (self.line_end, self.col_end)
    }

    /// The range and kind that identify a region across snapshots of one binary.
    fn key(&self) -> RangeKind {
        (self.line_start, self.col_start, self.line_end, self.col_end, self.kind)
    }
}

/// Counted code regions of a file, as llvm-cov counts regions: code regions only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegionStats {
    pub regions: usize,
    pub covered: usize,
}

/// A region's range and kind, the key regions of several functions are combined by.
type RangeKind = (u32, u32, u32, u32, RegionKind);

/// Regions per file, keyed like [`crate::LineCoverage`] by workspace-relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionCoverage {
    /// Path → regions sorted by (start, end, kind), one per distinct range and kind.
    pub files: BTreeMap<String, Vec<CoveredRegion>>,
}

impl RegionCoverage {
    /// The regions of the files an export lists, from the regions and branches of its functions.
    pub fn from_export(export: &Export, root: &Path) -> RegionCoverage {
        let listed: HashMap<&str, usize> = export.files().enumerate().map(|(i, f)| (f.filename.as_str(), i)).collect();
        let mut per_file: Vec<Vec<(RangeKind, u64, u64)>> = vec![Vec::new(); listed.len()];
        for function in export.functions() {
            let targets: Vec<Option<usize>> =
                function.filenames.iter().map(|f| listed.get(f.as_str()).copied()).collect();
            let target = |file_id: u32| targets.get(file_id as usize).copied().flatten();
            for r in &function.regions {
                if let (Some(file), Some(kind)) = (target(r.file_id), RegionKind::from_number(r.kind)) {
                    per_file[file].push(((r.line_start, r.col_start, r.line_end, r.col_end, kind), r.count, 0));
                }
            }
            for b in &function.branches {
                if let (Some(file), Some(kind)) = (target(b.file_id), RegionKind::from_number(b.kind)) {
                    let range = (b.line_start, b.col_start, b.line_end, b.col_end, kind);
                    per_file[file].push((range, b.true_count, b.false_count));
                }
            }
        }
        let mut files = BTreeMap::new();
        for (file, mut regions) in export.files().zip(per_file) {
            regions.sort_by_cached_key(|&((line_start, col_start, line_end, col_end, kind), _, _)| {
                let range = (u128::from(line_start) << 96)
                    | (u128::from(col_start) << 64)
                    | (u128::from(line_end) << 32)
                    | u128::from(col_end);
                (range, kind as u8)
            });
            let mut combined: Vec<CoveredRegion> = Vec::with_capacity(regions.len());
            for ((line_start, col_start, line_end, col_end, kind), count, false_count) in regions {
                match combined.last_mut() {
                    Some(last)
                        if (last.line_start, last.col_start, last.line_end, last.col_end, last.kind)
                            == (line_start, col_start, line_end, col_end, kind) =>
                    {
                        last.count = last.count.saturating_add(count);
                        last.false_count = last.false_count.saturating_add(false_count);
                    }
                    _ => combined.push(CoveredRegion {
                        line_start,
                        col_start,
                        line_end,
                        col_end,
                        kind,
                        count,
                        false_count,
                    }),
                }
            }
            let entry: &mut Vec<CoveredRegion> = files.entry(relative_key(&file.filename, root)).or_default();
            if entry.is_empty() {
                *entry = combined;
            } else {
                // Two exported names for one workspace path: keep one sorted list.
                entry.extend(combined);
                entry.sort_unstable();
            }
        }
        RegionCoverage { files }
    }

    /// Regions of one file; `path` is workspace-relative (a leading `./` is ignored).
    pub fn file(&self, path: &str) -> Option<&[CoveredRegion]> {
        self.files.get(normalize_key(path)).map(Vec::as_slice)
    }

    /// Code regions of a file and how many of them ran.
    pub fn stats(&self, path: &str) -> RegionStats {
        let code = self.file(path).unwrap_or_default().iter().filter(|r| r.kind == RegionKind::Code);
        code.fold(RegionStats::default(), |s, r| RegionStats {
            regions: s.regions + 1,
            covered: s.covered + usize::from(r.covered()),
        })
    }

    /// The regions of both, per file: a region in both (same range and kind) once, with the counts added.
    /// Linear in the number of regions: both lists of a file are sorted.
    pub fn union(&self, other: &RegionCoverage) -> RegionCoverage {
        let mut files = self.files.clone();
        for (path, theirs) in &other.files {
            match files.get_mut(path) {
                Some(ours) => *ours = merge_sorted(ours, theirs),
                None => {
                    files.insert(path.clone(), theirs.clone());
                }
            }
        }
        RegionCoverage { files }
    }

    /// Code regions covered here that `base` did not cover (or did not have), per file, in order; files
    /// without any are left out.
    pub fn newly_covered(&self, base: &RegionCoverage) -> BTreeMap<String, Vec<CoveredRegion>> {
        let mut out = BTreeMap::new();
        for (path, regions) in &self.files {
            let before = base.files.get(path).map(Vec::as_slice).unwrap_or_default();
            let covered_before: HashSet<RangeKind> =
                before.iter().filter(|r| r.covered()).map(CoveredRegion::key).collect();
            let new: Vec<CoveredRegion> = regions
                .iter()
                .filter(|r| r.kind == RegionKind::Code && r.covered() && !covered_before.contains(&r.key()))
                .copied()
                .collect();
            if !new.is_empty() {
                out.insert(path.clone(), new);
            }
        }
        out
    }

    /// Only the files under one of these workspace-relative prefixes.
    pub fn retain_prefixes(&mut self, prefixes: &[String]) {
        self.files.retain(|path, _| prefixes.iter().any(|p| path.starts_with(p.as_str())));
    }
}

/// Two sorted region lists as one: a region in both (same range and kind) once, counts added.
fn merge_sorted(ours: &[CoveredRegion], theirs: &[CoveredRegion]) -> Vec<CoveredRegion> {
    let mut out = Vec::with_capacity(ours.len().max(theirs.len()));
    let (mut a, mut b) = (ours.iter().peekable(), theirs.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.key() == y.key() => {
                let (x, y) = (a.next().expect("peeked"), b.next().expect("peeked"));
                CoveredRegion {
                    count: x.count.saturating_add(y.count),
                    false_count: x.false_count.saturating_add(y.false_count),
                    ..*x
                }
            }
            (Some(x), Some(y)) if x.key() < y.key() => *a.next().expect("peeked"),
            (Some(_), Some(_)) | (None, Some(_)) => *b.next().expect("peeked"),
            (Some(_), None) => *a.next().expect("peeked"),
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{BranchRegion, ExportData, ExportFile, ExportFunction, Region};

    fn code(start: (u32, u32), end: (u32, u32), count: u64, file_id: u32) -> Region {
        Region {
            line_start: start.0,
            col_start: start.1,
            line_end: end.0,
            col_end: end.1,
            count,
            file_id,
            expanded_file_id: 0,
            kind: 0,
        }
    }

    #[test]
    fn instantiations_combine_and_only_listed_files_count() {
        let generic = |arm_count: u64| ExportFunction {
            name: "classify".into(),
            count: 1,
            regions: vec![code((1, 1), (5, 2), 1, 0), code((2, 5), (2, 9), arm_count, 0), code((9, 1), (9, 4), 1, 1)],
            branches: vec![BranchRegion {
                line_start: 2,
                col_start: 1,
                line_end: 2,
                col_end: 4,
                true_count: arm_count,
                false_count: 1 - arm_count,
                file_id: 0,
                expanded_file_id: 0,
                kind: 4,
            }],
            filenames: vec!["/w/src/a.rs".into(), "/w/src/other.rs".into()],
        };
        let export = Export {
            version: None,
            kind: None,
            data: vec![ExportData {
                files: vec![ExportFile { filename: "/w/src/a.rs".into(), segments: Vec::new() }],
                functions: vec![generic(0), generic(1)],
            }],
        };
        let regions = RegionCoverage::from_export(&export, Path::new("/w"));
        assert_eq!(regions.files.keys().collect::<Vec<_>>(), ["src/a.rs"]);
        let a = regions.file("./src/a.rs").expect("listed");
        assert_eq!(a.len(), 3);
        assert_eq!((a[0].count, a[1].count), (2, 1), "counts of both instantiations add up");
        assert_eq!((a[1].kind, a[1].count, a[1].false_count), (RegionKind::Branch, 1, 1));
        assert_eq!(regions.stats("src/a.rs"), RegionStats { regions: 2, covered: 2 });
        assert_eq!(regions.stats("src/missing.rs"), RegionStats::default());
    }

    fn at(line: u32, cols: (u32, u32), count: u64) -> CoveredRegion {
        CoveredRegion {
            line_start: line,
            col_start: cols.0,
            line_end: line,
            col_end: cols.1,
            kind: RegionKind::Code,
            count,
            false_count: 0,
        }
    }

    fn coverage(regions: Vec<CoveredRegion>) -> RegionCoverage {
        RegionCoverage { files: [("src/a.rs".to_string(), regions)].into_iter().collect() }
    }

    #[test]
    fn a_union_adds_the_counts_of_the_same_region_and_keeps_the_order() {
        let first = coverage(vec![at(1, (1, 5), 1), at(2, (5, 6), 0), at(4, (1, 9), 1)]);
        let second = coverage(vec![at(2, (5, 6), 2), at(3, (1, 2), 1), at(4, (1, 9), 0)]);
        let union = first.union(&second);
        let counts: Vec<(u32, u64)> = union.file("src/a.rs").unwrap().iter().map(|r| (r.line_start, r.count)).collect();
        assert_eq!(counts, [(1, 1), (2, 2), (3, 1), (4, 1)]);
        let other = RegionCoverage { files: [("src/b.rs".to_string(), vec![at(7, (1, 2), 1)])].into_iter().collect() };
        assert_eq!(first.union(&other).files.len(), 2, "a file only one side has is kept");
    }

    #[test]
    fn newly_covered_regions_are_code_regions_the_base_left_at_zero() {
        let mut gap = at(3, (1, 2), 1);
        gap.kind = RegionKind::Gap;
        let before = coverage(vec![at(1, (1, 5), 1), at(2, (5, 6), 0), gap]);
        let after = coverage(vec![at(1, (1, 5), 3), at(2, (5, 6), 1), gap, at(5, (1, 2), 1), at(6, (1, 2), 0)]);
        let new = after.newly_covered(&before);
        let starts: Vec<(u32, u32)> = new["src/a.rs"].iter().map(CoveredRegion::start).collect();
        assert_eq!(starts, [(2, 5), (5, 1)], "covered now, not before; gaps and regions still at zero left out");
        assert!(before.newly_covered(&after).is_empty());
    }
}
