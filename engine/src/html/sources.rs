//! The annotated-source section's view: each source file shown on the page, line by line, classed by
//! coverage and marked with the call sites on it, the failures at it and the execution that first covered it.
//!
//! The marks are gathered once per page into a map by (file index, line); each line then takes its own.

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
    pub code: &'a str,
    /// The coverage class of the line and what it means.
    pub class: &'static str,
    pub what: &'static str,
    pub covered_by: Option<CoveredBy<'a>>,
    pub marks: Vec<Mark<'a>>,
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
    text.lines()
        .enumerate()
        .map(|(n, code)| {
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
            let covered_by = file.covered_by.get(&number).map(|id| covered_by(id, links));
            let marks = marks.remove(&(index, number)).unwrap_or_default();
            SourceLine { number, code, class, what, covered_by, marks }
        })
        .collect()
}

fn covered_by<'a>(id: &'a str, links: &'a Links<'a>) -> CoveredBy<'a> {
    let faults = links
        .execution(id)
        .map(|e| e.faults.iter().map(|f| f.describe()).collect::<Vec<_>>().join("; "))
        .filter(|faults| !faults.is_empty())
        .map(|faults| format!(" ({faults})"))
        .unwrap_or_default();
    CoveredBy { id, anchor: links.anchor(id), title: format!("first covered by execution {id}{faults}") }
}
