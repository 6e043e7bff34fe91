//! The report's coverage of one file, pure: lines before and after the fault runs, and with region data
//! the code regions counted before and after, those the fault runs newly covered and those still
//! uncovered on covered lines (llvm-cov show's `^0`).

use std::collections::{BTreeMap, BTreeSet};

use cloture_coverage::{CoveredRegion, FileLines, RegionKind};

use crate::report::{Counts, FileCoverage, NewRegion, RegionChange, RegionCounts, SourceRange};

/// What was measured of one file's regions.
pub(super) struct FileRegions<'a> {
    /// By the first reference run; `None` when it did not have the file.
    pub before: Option<&'a [CoveredRegion]>,
    /// By every execution together.
    pub after: &'a [CoveredRegion],
    /// Newly covered regions, each with the first execution that covered it.
    pub newly: &'a [NewRegion],
}

/// The coverage entry of one file: lines `before` (the reference run) and `after` (every execution),
/// `covered_by` naming the first execution of each newly covered line, and the regions when measured.
pub(super) fn file_coverage(
    before: Option<&FileLines>,
    after: &FileLines,
    covered_by: &BTreeMap<u32, String>,
    regions: Option<FileRegions<'_>>,
) -> FileCoverage {
    let covered_before: Vec<u32> = before.map(|b| b.covered.iter().copied().collect()).unwrap_or_default();
    let newly: Vec<u32> = after.covered.iter().filter(|l| covered_before.binary_search(l).is_err()).copied().collect();
    let mut file = FileCoverage {
        before: Counts { covered: covered_before.len(), lines: after.instrumented.len() },
        after: Counts { covered: after.covered.len(), lines: after.instrumented.len() },
        covered_by: newly.iter().filter_map(|l| covered_by.get(l).map(|id| (*l, id.clone()))).collect(),
        newly_covered: newly,
        lines: after.instrumented.iter().copied().collect(),
        covered_before,
        ..FileCoverage::default()
    };
    if let Some(regions) = regions {
        file.regions = Some(RegionChange {
            before: RegionCounts {
                covered: code(regions.before.unwrap_or_default()).filter(|r| r.covered()).count(),
                total: code(regions.after).count(),
            },
            after: RegionCounts {
                covered: code(regions.after).filter(|r| r.covered()).count(),
                total: code(regions.after).count(),
            },
        });
        file.newly_covered_regions = regions.newly.to_vec();
        file.newly_covered_regions.sort_by_key(|region| (region.start, region.end));
        file.uncovered_regions = uncovered_on_covered_lines(regions.after, &after.covered);
    }
    file
}

fn code(regions: &[CoveredRegion]) -> impl Iterator<Item = &CoveredRegion> {
    regions.iter().filter(|r| r.kind == RegionKind::Code)
}

/// Code regions that never ran and start on a covered line, in source order, each once.
pub(super) fn uncovered_on_covered_lines(regions: &[CoveredRegion], covered: &BTreeSet<u32>) -> Vec<SourceRange> {
    let mut out: Vec<SourceRange> = code(regions)
        .filter(|r| !r.covered() && covered.contains(&r.line_start))
        .map(|r| SourceRange { start: r.start(), end: r.end() })
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(line: u32, cols: (u32, u32), count: u64) -> CoveredRegion {
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

    #[test]
    fn a_file_reports_its_regions_before_and_after_and_the_error_exits_still_uncovered() {
        // Line 24 `other => other?,` and line 26 `response.json()?`: both lines ran, neither `?` exit did;
        // a fault then took the exit on line 26. Line 23, an arm never run, is not a `^0` of a covered line.
        let lines = |covered: &[u32]| FileLines {
            instrumented: [23, 24, 26].into(),
            covered: covered.iter().copied().collect(),
        };
        let before = [
            region(23, (13, 18), 0),
            region(24, (18, 23), 1),
            region(24, (23, 24), 0),
            region(26, (9, 17), 1),
            region(26, (49, 50), 0),
        ];
        let mut after = before;
        after[4].count = 1;
        let newly = [NewRegion { start: (26, 49), end: (26, 50), execution: "e1".into() }];
        let regions = FileRegions { before: Some(&before), after: &after, newly: &newly };
        let file = file_coverage(Some(&lines(&[24, 26])), &lines(&[24, 26]), &BTreeMap::new(), Some(regions));
        let change = file.regions.expect("regions measured");
        assert_eq!(change.before, RegionCounts { covered: 2, total: 5 });
        assert_eq!(change.after, RegionCounts { covered: 3, total: 5 });
        assert_eq!(file.newly_covered_regions, newly);
        assert_eq!(file.uncovered_regions, [SourceRange { start: (24, 23), end: (24, 24) }]);
        let json = serde_json::to_value(&file).expect("serialises");
        assert_eq!(
            json["regions"],
            serde_json::json!({"before": {"covered": 2, "total": 5}, "after": {"covered": 3, "total": 5}})
        );
        assert_eq!(
            json["newly_covered_regions"],
            serde_json::json!([{"start": [26, 49], "end": [26, 50], "execution": "e1"}])
        );
        assert_eq!(json["uncovered_regions"], serde_json::json!([{"start": [24, 23], "end": [24, 24]}]));
    }

    #[test]
    fn without_region_data_a_file_has_no_region_fields() {
        let lines = FileLines { instrumented: [1, 2].into(), covered: [1].into() };
        let file = file_coverage(None, &lines, &[(1, "e1".to_string())].into_iter().collect(), None);
        assert_eq!((file.before.covered, file.after.covered, file.newly_covered.as_slice()), (0, 1, &[1][..]));
        assert_eq!(file.covered_by[&1], "e1");
        let json = serde_json::to_value(&file).expect("serialises");
        for field in ["regions", "newly_covered_regions", "uncovered_regions"] {
            assert!(json.get(field).is_none(), "{field} is left out: {json}");
        }
    }
}
