//! What the page's sections share: the cross references built once per page (the anchor of each execution's
//! row, the vulnerabilities each execution shows, the annotated source files) and the small pieces shown in
//! many places (a source location, a link to an execution, a failure-class badge, a call site's colour).
//!
//! Every lookup here is a map lookup, so building the page stays linear in the report's size. Report fields
//! that name a place in the source are typed ([`CallSite`]); [`Links::location`] links them to the annotated
//! line.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::call::CallSite;
use crate::graph::SiteStats;
use crate::report::{ExecutionReport, FailureClass, Report};

/// Cross references of one page, built once from the report.
pub(super) struct Links<'a> {
    /// Anchor of each row of `report.executions`, in order.
    pub rows: Vec<String>,
    /// Execution id → its first row.
    first_row: HashMap<&'a str, usize>,
    /// Execution id → the vulnerabilities it shows.
    vulnerabilities: HashMap<&'a str, Vec<&'a str>>,
    /// Annotated source files (in the coverage section and in the sources), by index.
    pub annotated: Vec<&'a str>,
    /// Path of an annotated source file → its index.
    annotated_index: HashMap<&'a str, usize>,
    executions: &'a [ExecutionReport],
}

impl<'a> Links<'a> {
    pub fn new(report: &'a Report, sources: &BTreeMap<String, String>) -> Links<'a> {
        let mut rows = Vec::with_capacity(report.executions.len());
        let mut first_row = HashMap::with_capacity(report.executions.len());
        let mut anchors = Anchors::default();
        for (row, execution) in report.executions.iter().enumerate() {
            rows.push(anchors.unique(format!("exec-{}", slug(&execution.id))));
            first_row.entry(execution.id.as_str()).or_insert(row);
        }
        let mut vulnerabilities: HashMap<&str, Vec<&str>> = HashMap::new();
        for vulnerability in &report.vulnerabilities {
            for id in &vulnerability.executions {
                vulnerabilities.entry(id.as_str()).or_default().push(vulnerability.id.as_str());
            }
        }
        let annotated: Vec<&str> = report
            .coverage
            .iter()
            .flat_map(|coverage| coverage.files.keys())
            .filter(|path| sources.contains_key(*path))
            .map(String::as_str)
            .collect();
        let annotated_index = annotated.iter().enumerate().map(|(index, path)| (*path, index)).collect();
        Links { rows, first_row, vulnerabilities, annotated, annotated_index, executions: &report.executions }
    }

    /// The index of an annotated source file.
    pub fn annotated_index(&self, path: &str) -> Option<usize> {
        self.annotated_index.get(path).copied()
    }

    /// The first execution with this id.
    pub fn execution(&self, id: &str) -> Option<&'a ExecutionReport> {
        self.first_row.get(id).map(|&row| &self.executions[row])
    }

    /// The anchor of the first row of the execution with this id.
    pub fn anchor(&self, id: &str) -> Option<&str> {
        self.first_row.get(id).map(|&row| self.rows[row].as_str())
    }

    /// A link to an execution's row (or just its id when no row has it).
    pub fn execution_link<'s>(&'s self, id: &'s str) -> ExecutionLink<'s> {
        ExecutionLink { id, anchor: self.anchor(id) }
    }

    /// The ids of the vulnerabilities an execution shows.
    pub fn vulnerabilities_of(&self, id: &str) -> &[&'a str] {
        self.vulnerabilities.get(id).map_or(&[], Vec::as_slice)
    }

    /// A place in the source, linked to its annotated line when its file is shown.
    pub fn location(&self, place: &CallSite) -> Location {
        let target = self.annotated_index(&place.file).map(|index| (index, place.line));
        Location { text: place.to_string(), target }
    }
}

/// Unique anchors: a repeated one gets `-2`, `-3`, ... (the first number not yet taken).
#[derive(Default)]
struct Anchors {
    used: HashSet<String>,
    /// Anchor asked for → the next number to try for it.
    next: HashMap<String, usize>,
}

impl Anchors {
    fn unique(&mut self, base: String) -> String {
        if self.used.insert(base.clone()) {
            return base;
        }
        let next = self.next.entry(base.clone()).or_insert(2);
        loop {
            let anchor = format!("{base}-{next}");
            *next += 1;
            if self.used.insert(anchor.clone()) {
                return anchor;
            }
        }
    }
}

/// A source location as shown: its text and, when its file is annotated on the page, (file index, line).
pub(super) struct Location {
    pub text: String,
    pub target: Option<(usize, u32)>,
}

impl Location {
    /// The text between slashes, so the page can offer a line break after each `/`.
    pub fn parts(&self) -> std::str::Split<'_, char> {
        self.text.split('/')
    }
}

/// A link to the row of an execution, when one has it.
pub(super) struct ExecutionLink<'a> {
    pub id: &'a str,
    pub anchor: Option<&'a str>,
}

/// A failure class as a coloured badge, with what it means.
pub(super) struct Badge {
    pub class: FailureClass,
    pub help: &'static str,
}

impl Badge {
    pub fn of(class: FailureClass) -> Badge {
        let help = match class {
            FailureClass::Crash => "a service panicked or answered 500 from an unhandled error",
            FailureClass::Rejected => "the services degraded gracefully but the test refused the answer",
            FailureClass::Hang => "a call with no time limit waited on a slow dependency: the service hangs",
            FailureClass::Timeout => "the execution did not finish within its deadline",
            FailureClass::Error => "the harness itself failed",
        };
        Badge { class, help }
    }
}

/// How faults at one call site went: the colour of the site in the graph and in the annotated source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SiteOutcome {
    Failing,
    Handled,
    Untouched,
}

impl SiteOutcome {
    pub fn of(stats: Option<&SiteStats>) -> SiteOutcome {
        match stats {
            Some(s) if s.failing_executions > 0 => SiteOutcome::Failing,
            Some(s) if s.faults_injected > 0 => SiteOutcome::Handled,
            _ => SiteOutcome::Untouched,
        }
    }

    /// The CSS class of the colour.
    pub fn css(self) -> &'static str {
        match self {
            SiteOutcome::Failing => "fail",
            SiteOutcome::Handled => "ok",
            SiteOutcome::Untouched => "never",
        }
    }

    /// What faults did here, in a sentence.
    pub fn describe(self, stats: Option<&SiteStats>) -> String {
        let stats = stats.cloned().unwrap_or_default();
        match self {
            SiteOutcome::Failing => format!(
                "{} injected here; {} of them in failing executions",
                plural(stats.faults_injected as usize, "fault", "faults"),
                stats.failing_executions
            ),
            SiteOutcome::Handled => format!(
                "{} injected here, all handled (every such execution passed)",
                plural(stats.faults_injected as usize, "fault", "faults")
            ),
            SiteOutcome::Untouched => "never faulted".to_string(),
        }
    }
}

/// A string usable inside an `id` and a `#fragment` without escaping: every character but ASCII letters,
/// digits, `-` and `_` becomes `_`.
pub(super) fn slug(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

pub(super) fn format_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// At most `most` characters of `text`, the last one `…` when it was cut.
pub(super) fn truncate(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(most.saturating_sub(1)).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_anchors_get_the_first_free_number() {
        let mut anchors = Anchors::default();
        let got: Vec<String> = ["a", "a-2", "a", "a", "b", "a"].map(|base| anchors.unique(base.to_string())).into();
        assert_eq!(got, ["a", "a-2", "a-3", "a-4", "b", "a-5"]);
    }

    #[test]
    fn truncated_text_ends_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(truncate("ünïcödé", 4), "ünï…");
    }
}
