//! The annotated-source section's view: each source file shown on the page, line by line, classed by
//! coverage and marked with the call sites on it, the failures at it and the execution that first covered it.
//! With region data, the exact columns of regions that line coverage cannot show are marked too: a region
//! that never ran on a line that did (llvm-cov show's `^0`, e.g. the error exit of a `?`), and a region a
//! fault run first covered on a line covered otherwise, labelled with that execution.
//!
//! The marks are gathered once per page into a map by (file index, line), the region marks once per file
//! by line; each line then takes its own, so rendering stays linear.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::view::{plural, slug, Links, SiteOutcome};
use crate::graph::Node;
use crate::report::{FileCoverage, Report};

/// A source file shown annotated.
pub(super) struct SourceFile<'a> {
    pub index: usize,
    pub path: &'a str,
    pub file: &'a FileCoverage,
    /// Shown open: few files, or one where faults were injected or a service failed.
    pub open: bool,
    /// `, n line(s) newly covered by fault runs`, or nothing.
    pub newly: String,
    pub lines: Vec<SourceLine<'a>>,
}

pub(super) struct SourceLine<'a> {
    pub number: u32,
    pub code: Code<'a>,
    /// The coverage class of the line and what it means.
    pub class: &'static str,
    pub what: &'static str,
    pub covered_by: Option<CoveredBy<'a>>,
    /// Executions that first covered a region of this line, other than `covered_by`.
    pub regions_by: Vec<CoveredBy<'a>>,
    pub marks: Vec<Mark<'a>>,
}

/// A line's text: as it is, or cut into parts where regions are marked.
pub(super) enum Code<'a> {
    Plain(&'a str),
    Marked(Vec<Part<'a>>),
}

/// A piece of a line's text, marked as a region or not.
pub(super) struct Part<'a> {
    pub text: &'a str,
    pub region: Option<RegionMark<'a>>,
}

/// How a region is shown: its class (`reg-never` or `reg-fault`), what it means, and for a newly covered
/// region the anchor of its execution's row.
pub(super) struct RegionMark<'a> {
    pub class: &'static str,
    pub title: String,
    pub anchor: Option<&'a str>,
}

/// A region to mark on a line: byte columns from 1, the end exclusive (`u32::MAX`: to the end of the line).
struct Marked<'a> {
    start: u32,
    end: u32,
    /// The execution that first covered it; `None`: it never ran.
    execution: Option<&'a str>,
}

/// The execution that first covered a line.
pub(super) struct CoveredBy<'a> {
    pub id: &'a str,
    pub anchor: Option<&'a str>,
    pub title: String,
}

/// What is marked on a line besides coverage.
pub(super) enum Mark<'a> {
    /// A call site, coloured by what faults there did.
    Site { outcome: &'static str, title: String },
    /// The place a vulnerability fails.
    Failure { id: &'a str, anchor: String, title: String },
}

/// The annotated source files, those with marks first (in index order within each group).
pub(super) fn source_files<'a>(
    report: &'a Report,
    sources: &'a BTreeMap<String, String>,
    links: &'a Links<'a>,
) -> Vec<SourceFile<'a>> {
    let Some(coverage) = &report.coverage else { return Vec::new() };
    let mut marks = marks(report, links);
    let marked: HashSet<usize> = marks.keys().map(|(index, _)| *index).collect();
    let few = links.annotated.len() <= 3;
    let any_marked = !marked.is_empty();
    let mut ordered: Vec<(usize, &str)> = links.annotated.iter().copied().enumerate().collect();
    ordered.sort_by_key(|(index, _)| !marked.contains(index));
    let mut files = Vec::with_capacity(ordered.len());
    for (index, path) in ordered {
        let (Some(file), Some(text)) = (coverage.files.get(path), sources.get(path)) else { continue };
        let interesting = marked.contains(&index) || (!any_marked && !file.newly_covered.is_empty());
        let newly = if file.newly_covered.is_empty() {
            String::new()
        } else {
            format!(", {} newly covered by fault runs", plural(file.newly_covered.len(), "line", "lines"))
        };
        let lines = source_lines(index, file, text, &mut marks, links);
        files.push(SourceFile { index, path, file, open: few || interesting, newly, lines });
    }
    files
}

/// Marks by (file index, line): call sites (from the graph) first, then failure locations (from the
/// vulnerabilities, each vulnerability once per line).
fn marks<'a>(report: &'a Report, links: &Links<'_>) -> HashMap<(usize, u32), Vec<Mark<'a>>> {
    let mut marks: HashMap<(usize, u32), Vec<Mark<'a>>> = HashMap::new();
    for node in &report.call_graph.nodes {
        let Node::Site { site, .. } = &node.node else { continue };
        let location = links.location(site);
        if let Some(target) = location.target {
            let outcome = SiteOutcome::of(node.stats.as_ref());
            let title = format!("call site {}: {}", location.text, outcome.describe(node.stats.as_ref()));
            marks.entry(target).or_default().push(Mark::Site { outcome: outcome.css(), title });
        }
    }
    for v in &report.vulnerabilities {
        for location in &v.locations {
            let Some(target) = links.location(location).target else { continue };
            let entry = marks.entry(target).or_default();
            if !entry.iter().any(|mark| matches!(mark, Mark::Failure { id, .. } if *id == v.id)) {
                let (id, anchor, title) = (v.id.as_str(), slug(&v.id), format!("{}: {}", v.id, v.message));
                entry.push(Mark::Failure { id, anchor, title });
            }
        }
    }
    marks
}

/// The lines of one file, each taking its marks out of `marks`.
fn source_lines<'a>(
    index: usize,
    file: &'a FileCoverage,
    text: &'a str,
    marks: &mut HashMap<(usize, u32), Vec<Mark<'a>>>,
    links: &'a Links<'a>,
) -> Vec<SourceLine<'a>> {
    let before: HashSet<u32> = file.covered_before.iter().copied().collect();
    let newly: HashSet<u32> = file.newly_covered.iter().copied().chain(file.covered_by.keys().copied()).collect();
    let instrumented: HashSet<u32> = file.lines.iter().copied().collect();
    let mut regions = region_marks(file);
    text.lines()
        .enumerate()
        .map(|(n, text)| {
            let number = n as u32 + 1;
            let (class, what) = if before.contains(&number) {
                ("cov-before", "covered by the functional test")
            } else if newly.contains(&number) {
                ("cov-fault", "newly covered by a fault run")
            } else if instrumented.contains(&number) {
                ("cov-never", "instrumented, never covered")
            } else {
                ("cov-none", "not instrumented")
            };
            let line_by = file.covered_by.get(&number).map(String::as_str);
            let (code, regions_by) = match regions.remove(&number) {
                Some(marked) => marked_code(text, marked, line_by, links),
                None => (Code::Plain(text), Vec::new()),
            };
            let covered_by = line_by.map(|id| covered_by(id, links));
            let marks = marks.remove(&(index, number)).unwrap_or_default();
            SourceLine { number, code, class, what, covered_by, regions_by, marks }
        })
        .collect()
}

/// The regions to mark, by the line they start on: those that never ran (listed only on covered lines),
/// and those newly covered, except on a line newly covered by the same execution, which says it already.
fn region_marks(file: &FileCoverage) -> HashMap<u32, Vec<Marked<'_>>> {
    let mut by_line: HashMap<u32, Vec<Marked<'_>>> = HashMap::new();
    for range in &file.uncovered_regions {
        let marked = Marked { start: range.start.1, end: end_on_line(range.start, range.end), execution: None };
        by_line.entry(range.start.0).or_default().push(marked);
    }
    for region in &file.newly_covered_regions {
        if file.covered_by.get(&region.start.0) == Some(&region.execution) {
            continue;
        }
        let (start, end) = (region.start.1, end_on_line(region.start, region.end));
        by_line.entry(region.start.0).or_default().push(Marked { start, end, execution: Some(&region.execution) });
    }
    by_line
}

/// Where a region ends on the line it starts on.
fn end_on_line(start: (u32, u32), end: (u32, u32)) -> u32 {
    if end.0 == start.0 {
        end.1
    } else {
        u32::MAX
    }
}

/// A line cut into parts at its marked regions (overlaps clipped, columns outside the line or inside a
/// character moved to the nearest boundary before them), and the executions that first covered a region
/// of it other than `line_by`.
fn marked_code<'a>(
    text: &'a str,
    mut regions: Vec<Marked<'a>>,
    line_by: Option<&str>,
    links: &'a Links<'a>,
) -> (Code<'a>, Vec<CoveredBy<'a>>) {
    regions.sort_by_key(|region| (region.start, region.end));
    let boundary = |column: u32| {
        let mut at = (column.saturating_sub(1) as usize).min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let (mut parts, mut by, mut done) = (Vec::new(), Vec::<CoveredBy<'a>>::new(), 0);
    for region in regions {
        let (start, end) = (boundary(region.start).max(done), boundary(region.end));
        if start >= end {
            continue;
        }
        if start > done {
            parts.push(Part { text: &text[done..start], region: None });
        }
        let mark = match region.execution {
            None => RegionMark {
                class: "reg-never",
                title: "this region never ran, though its line did".to_string(),
                anchor: None,
            },
            Some(id) => {
                if line_by != Some(id) && !by.iter().any(|known| known.id == id) {
                    by.push(covered_by(id, links));
                }
                let title = format!("this region was first covered by {}", execution(id, links));
                RegionMark { class: "reg-fault", title, anchor: links.anchor(id) }
            }
        };
        parts.push(Part { text: &text[start..end], region: Some(mark) });
        done = end;
    }
    if parts.is_empty() {
        return (Code::Plain(text), by);
    }
    if done < text.len() {
        parts.push(Part { text: &text[done..], region: None });
    }
    (Code::Marked(parts), by)
}

fn covered_by<'a>(id: &'a str, links: &'a Links<'a>) -> CoveredBy<'a> {
    CoveredBy { id, anchor: links.anchor(id), title: format!("first covered by {}", execution(id, links)) }
}

/// `execution ID (its faults)`.
fn execution(id: &str, links: &Links<'_>) -> String {
    let faults = links
        .execution(id)
        .map(|e| e.faults.iter().map(|f| f.describe()).collect::<Vec<_>>().join("; "))
        .filter(|faults| !faults.is_empty())
        .map(|faults| format!(" ({faults})"))
        .unwrap_or_default();
    format!("execution {id}{faults}")
}
