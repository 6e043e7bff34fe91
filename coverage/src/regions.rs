//! Per-file region coverage: every region of a file (code, gap, skipped, expansion, branch) with its
//! range, kind and count, the instantiations of one function combined. Finer than lines: a region can
//! be missed on a line that counts as covered. Pure: no I/O.

use std::collections::{BTreeMap, HashMap};
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

    /// Only the files under one of these workspace-relative prefixes.
    pub fn retain_prefixes(&mut self, prefixes: &[String]) {
        self.files.retain(|path, _| prefixes.iter().any(|p| path.starts_with(p.as_str())));
    }
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
}
