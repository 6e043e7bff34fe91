//! A file's coverage segments from its counted regions, exactly as llvm-cov builds them: regions sorted
//! (outer before inner, code before expansion before skipped), regions over the same range combined,
//! then one pass that opens and closes regions. The segments feed LLVM's line rule in [`crate::lines`].
//! Pure: no I/O.
//!
//! Refs: llvm/lib/ProfileData/Coverage/CoverageMapping.cpp (`SegmentBuilder`: `sortNestedRegions`,
//! `combineRegions`, `buildSegmentsImpl`, `completeRegionsUntil`, `startSegment`).

use crate::export::Segment;
use crate::mapping::RegionKind;

/// A region with its execution count, the input of segment building.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountedRegion {
    pub line_start: u32,
    pub col_start: u32,
    pub line_end: u32,
    pub col_end: u32,
    pub kind: RegionKind,
    /// Execution count (the true count of a branch). Negative differences of racing counters wrap, as
    /// in llvm-cov.
    pub count: u64,
    /// The false count of a branch; 0 otherwise.
    pub false_count: u64,
}

impl CountedRegion {
    fn start(&self) -> (u32, u32) {
        (self.line_start, self.col_start)
    }

    fn end(&self) -> (u32, u32) {
        (self.line_end, self.col_end)
    }
}

/// The largest count a JSON export shows: llvm-cov clamps counts to `i64::MAX`.
pub(crate) fn clamp(count: u64) -> u64 {
    count.min(i64::MAX as u64)
}

/// The segments of one file from all the (non-branch) regions that fall in it, counts clamped as in an
/// export. `regions` is reordered.
pub fn build_segments(regions: &mut [CountedRegion]) -> Vec<Segment> {
    sort_nested(regions);
    let combined = combine(regions);
    let mut builder = Builder { segments: Vec::new(), active: Vec::new(), completed: Vec::new() };
    builder.build(&regions[..combined]);
    // Counts are compared unclamped while building (as llvm-cov does) and clamped on the way out.
    builder.segments.into_iter().map(|s| Segment { count: clamp(s.count), ..s }).collect()
}

/// Start ascending; on equal starts the longer region first; on equal ranges by kind. Regions equal in
/// all three are combined next, so their order does not matter. The keys are computed once per region.
fn sort_nested(regions: &mut [CountedRegion]) {
    regions.sort_by_cached_key(|r| {
        let start = (u128::from(r.line_start) << 96) | (u128::from(r.col_start) << 64);
        let end_descending = (u128::from(u32::MAX - r.line_end) << 32) | u128::from(u32::MAX - r.col_end);
        (start | end_descending, r.kind as u8)
    });
}

/// Folds regions over the same range into the first, adding the counts of those of the same kind.
/// Returns how many regions remain at the front of `regions`.
fn combine(regions: &mut [CountedRegion]) -> usize {
    if regions.is_empty() {
        return 0;
    }
    let mut active = 0;
    for index in 1..regions.len() {
        let region = regions[index];
        if regions[active].start() != region.start() || regions[active].end() != region.end() {
            active += 1;
            regions[active] = region;
        } else if region.kind == regions[active].kind {
            regions[active].count = regions[active].count.wrapping_add(region.count);
        }
    }
    active + 1
}

struct Builder<'a> {
    segments: Vec<Segment>,
    /// Regions entered and not yet left, outermost first.
    active: Vec<&'a CountedRegion>,
    /// Scratch space for the regions the next region's start completes.
    completed: Vec<&'a CountedRegion>,
}

impl<'a> Builder<'a> {
    /// Starts a segment at `at` with `region`'s count, unless it would change nothing.
    fn start_segment(&mut self, region: &CountedRegion, at: (u32, u32), entry: bool, skipped: bool) {
        let has_count = !skipped && region.kind != RegionKind::Skipped;
        if let Some(last) = self.segments.last() {
            if !entry && !skipped && last.has_count == has_count && last.count == region.count && !last.is_region_entry
            {
                return;
            }
        }
        let (count, gap) = if has_count { (region.count, region.kind == RegionKind::Gap) } else { (0, false) };
        self.segments.push(Segment::new(at.0, at.1, count, has_count, entry, gap));
    }

    /// Leaves the active regions from `first_completed` on (all ending at or before `next`, the start of
    /// the next region; `None` at the end of the file), emitting the segments that resume enclosing
    /// regions.
    fn complete_until(&mut self, next: Option<(u32, u32)>, first_completed: usize) {
        self.active[first_completed..].sort_by_key(|r| r.end());
        for index in first_completed + 1..self.active.len() {
            let mut completed = self.active[index];
            let at = self.active[index - 1].end();
            if next == Some(at) {
                break;
            }
            if at == completed.end() {
                continue;
            }
            for later in &self.active[index + 1..] {
                if completed.end() == later.end() {
                    completed = later;
                }
            }
            self.start_segment(completed, at, false, false);
        }
        let last = *self.active.last().expect("complete_until runs with active regions");
        if first_completed > 0 && Some(last.end()) != next {
            let enclosing = self.active[first_completed - 1];
            self.start_segment(enclosing, last.end(), false, false);
        } else if first_completed == 0 && next != Some(last.end()) {
            self.start_segment(last, last.end(), false, true);
        }
        self.active.truncate(first_completed);
    }

    fn build(&mut self, regions: &'a [CountedRegion]) {
        for (index, region) in regions.iter().enumerate() {
            let start = region.start();
            if self.active.iter().any(|r| r.end() <= start) {
                // Stable partition: regions still open keep their order in front of those completed.
                self.completed.clear();
                let mut open = 0;
                for index in 0..self.active.len() {
                    let active = self.active[index];
                    if active.end() > start {
                        self.active[open] = active;
                        open += 1;
                    } else {
                        self.completed.push(active);
                    }
                }
                self.active.truncate(open);
                self.active.append(&mut self.completed);
                self.complete_until(Some(start), open);
            }
            let gap = region.kind == RegionKind::Gap;
            let last = index + 1 == regions.len();
            if start == region.end() {
                // Empty regions never become active.
                let skipped = last || region.kind == RegionKind::Skipped;
                let base = self.active.last().copied().unwrap_or(region);
                self.start_segment(base, start, !gap, skipped);
                if skipped {
                    if let Some(&enclosing) = self.active.last() {
                        self.start_segment(enclosing, start, false, false);
                    }
                }
                continue;
            }
            if last || start != regions[index + 1].start() {
                self.start_segment(region, start, !gap, false);
            }
            self.active.push(region);
        }
        if !self.active.is_empty() {
            self.complete_until(None, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: (u32, u32), end: (u32, u32), count: u64, kind: RegionKind) -> CountedRegion {
        CountedRegion {
            line_start: start.0,
            col_start: start.1,
            line_end: end.0,
            col_end: end.1,
            kind,
            count,
            false_count: 0,
        }
    }

    fn seg(line: u32, col: u32, count: u64, has: bool, entry: bool, gap: bool) -> Segment {
        Segment::new(line, col, count, has, entry, gap)
    }

    #[test]
    fn a_function_with_an_untaken_branch_gives_entry_and_resume_segments() {
        // The shape of `lines.rs`' first test: a body, a gap after the condition, an untaken branch.
        let mut regions = vec![
            region((1, 1), (6, 2), 1, RegionKind::Code),
            region((2, 9), (2, 10), 0, RegionKind::Gap),
            region((2, 10), (4, 6), 0, RegionKind::Code),
        ];
        let segments = build_segments(&mut regions);
        assert_eq!(
            segments,
            [
                seg(1, 1, 1, true, true, false),
                // A gap starts no region: its segment is no region entry.
                seg(2, 9, 0, true, false, true),
                seg(2, 10, 0, true, true, false),
                seg(4, 6, 1, true, false, false),
                seg(6, 2, 0, false, false, false),
            ]
        );
    }

    #[test]
    fn identical_ranges_add_counts_of_the_same_kind_only() {
        // Two instantiations of one generic function, and an expansion over the same range as code.
        let mut regions = vec![
            region((1, 1), (3, 2), 2, RegionKind::Code),
            region((1, 1), (3, 2), 3, RegionKind::Code),
            region((1, 1), (3, 2), 7, RegionKind::Expansion),
        ];
        assert_eq!(build_segments(&mut regions), [seg(1, 1, 5, true, true, false), seg(3, 2, 0, false, false, false)]);
    }

    #[test]
    fn skipped_and_empty_regions_mark_without_becoming_active() {
        let mut regions = vec![
            region((1, 1), (9, 2), 4, RegionKind::Code),
            region((3, 1), (5, 1), 0, RegionKind::Skipped),
            region((7, 5), (7, 5), 0, RegionKind::Code),
        ];
        assert_eq!(
            build_segments(&mut regions),
            [
                seg(1, 1, 4, true, true, false),
                seg(3, 1, 0, false, true, false),
                seg(5, 1, 4, true, false, false),
                // The empty region at the end: a skipped marker, then the enclosing count again.
                seg(7, 5, 0, false, true, false),
                seg(7, 5, 4, true, false, false),
                seg(9, 2, 0, false, false, false),
            ]
        );
    }

    #[test]
    fn counts_beyond_i64_are_clamped_like_the_export() {
        let mut regions = vec![region((1, 1), (1, 9), u64::MAX - 1, RegionKind::Code)];
        assert_eq!(build_segments(&mut regions)[0].count, i64::MAX as u64);
        assert!(build_segments(&mut []).is_empty());
    }
}
