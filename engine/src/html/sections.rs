//! The views of the page's sections but the call graph and the annotated sources: the header, the
//! vulnerabilities, the coverage table and the executions, each ready for its template. Values the report
//! holds as typed data are turned into text through `Display`, here or in the templates.

use super::view::{format_ms, plural, slug, Badge, ExecutionLink, Links, Location};
use crate::plan::PruneReason;
use crate::report::{
    CoverageReport, ExecutionReport, Failure, FaultReport, FileCoverage, Outcome, PrunedReport, Report, Vulnerability,
    Warning,
};

/// The page's header: what was explored, the counts, the settings and any warning.
pub(super) struct Header {
    pub duration: String,
    pub settings: Vec<String>,
    /// `n call(s)` that differed between the reference runs.
    pub nondeterministic: String,
}

impl Header {
    pub fn new(report: &Report) -> Header {
        let c = &report.config;
        let mut settings = vec![
            format!("at most {} per execution", plural(c.max_faults, "fault", "faults")),
            format!("order: {}", c.order),
            format!("dynamic reduction {}", if c.reduce { "on" } else { "off" }),
            format!("deadline {} per execution", format_ms(c.deadline_ms as f64)),
        ];
        if let Some(most) = c.max_executions {
            settings.push(format!("budget {}", plural(most, "execution", "executions")));
        }
        if let Some(ms) = c.max_time_ms {
            settings.push(format!("time budget {}", format_ms(ms as f64)));
        }
        Header {
            duration: format_ms(report.summary.duration_ms as f64),
            settings,
            nondeterministic: plural(report.summary.nondeterministic.len(), "call", "calls"),
        }
    }
}

/// The vulnerabilities section.
pub(super) struct Vulnerabilities<'a> {
    /// `n distinct problem(s)`.
    pub count: String,
    pub list: Vec<VulnerabilityView<'a>>,
    /// What to do next (see [`Report::advice`]): each sentence in pieces, code or not.
    pub advice: Vec<Vec<Piece>>,
    /// What executions did that their test's verdict does not show: each warning once, with links to the
    /// executions that gave it.
    pub warnings: Vec<(&'a Warning, Vec<ExecutionLink<'a>>)>,
}

/// A piece of a sentence: text, or code (shown as such).
pub(super) struct Piece {
    pub text: String,
    pub code: bool,
}

impl Piece {
    /// `text` cut at its backticks: every other piece is code.
    fn split(text: &str) -> Vec<Piece> {
        let pieces = text.split('`').enumerate().filter(|(_, part)| !part.is_empty());
        pieces.map(|(index, part)| Piece { text: part.to_string(), code: index % 2 == 1 }).collect()
    }
}

pub(super) struct VulnerabilityView<'a> {
    pub vulnerability: &'a Vulnerability,
    pub anchor: String,
    pub badge: Badge,
    pub call_sites: Vec<Location>,
    pub locations: Vec<Location>,
    /// Without locations: where the services' logs say their code failed, per service.
    pub logged_at: Vec<(String, Location)>,
    pub executions: Vec<ExecutionLink<'a>>,
}

impl<'a> Vulnerabilities<'a> {
    pub fn new(report: &'a Report, links: &'a Links<'a>) -> Vulnerabilities<'a> {
        let list = report
            .vulnerabilities
            .iter()
            .map(|v| VulnerabilityView {
                vulnerability: v,
                anchor: slug(&v.id),
                badge: Badge::of(v.class),
                call_sites: v.call_sites.iter().map(|site| links.location(site)).collect(),
                locations: v.locations.iter().map(|location| links.location(location)).collect(),
                logged_at: v
                    .logged_at()
                    .into_iter()
                    .map(|(service, at)| (service.to_string(), links.location(&at)))
                    .collect(),
                executions: v.executions.iter().map(|id| links.execution_link(id)).collect(),
            })
            .collect();
        Vulnerabilities {
            count: plural(report.vulnerabilities.len(), "distinct problem", "distinct problems"),
            list,
            advice: report.advice().iter().map(|sentence| Piece::split(&capitalised(sentence))).collect(),
            warnings: warnings(report, links),
        }
    }
}

/// The coverage section, when the report has coverage.
pub(super) struct CoverageView<'a> {
    pub coverage: &'a CoverageReport,
    pub files: Vec<CoverageRow<'a>>,
    /// `n execution(s)` that reach the same coverage, and links to them.
    pub minimal_count: String,
    pub minimal: Vec<ExecutionLink<'a>>,
    /// Files whose source text is not shown, listed when some other file is.
    pub missing: Vec<&'a str>,
}

pub(super) struct CoverageRow<'a> {
    pub path: &'a str,
    /// The index of the file's annotated source, when shown.
    pub index: Option<usize>,
    pub file: &'a FileCoverage,
    /// Widths of the bar's parts, in percent: covered before, added by the fault runs.
    pub before: f64,
    pub added: f64,
}

impl<'a> CoverageView<'a> {
    pub fn new(report: &'a Report, links: &'a Links<'a>) -> Option<CoverageView<'a>> {
        let coverage = report.coverage.as_ref()?;
        let files = coverage
            .files
            .iter()
            .map(|(path, file)| {
                let lines = file.after.lines.max(file.before.lines).max(1) as f64;
                let before = 100.0 * file.before.covered as f64 / lines;
                let added = (100.0 * file.after.covered.saturating_sub(file.before.covered) as f64 / lines)
                    .min(100.0 - before)
                    .max(0.0);
                CoverageRow { path, index: links.annotated_index(path), file, before, added }
            })
            .collect();
        let missing = if links.annotated.is_empty() {
            Vec::new()
        } else {
            coverage.files.keys().filter(|path| links.annotated_index(path).is_none()).map(String::as_str).collect()
        };
        Some(CoverageView {
            coverage,
            files,
            minimal_count: plural(coverage.minimal_executions.len(), "execution", "executions"),
            minimal: coverage.minimal_executions.iter().map(|id| links.execution_link(id)).collect(),
            missing,
        })
    }
}

/// The executions section: a row per execution, and the fault sets not run.
pub(super) struct Executions<'a> {
    pub rows: Vec<ExecutionRow<'a>>,
    /// `n fault set(s)` not run.
    pub pruned_count: String,
    pub pruned: Vec<PrunedRow<'a>>,
}

pub(super) struct ExecutionRow<'a> {
    pub execution: &'a ExecutionReport,
    pub anchor: &'a str,
    pub outcome: &'static str,
    /// The failure class, or `none`: what the class filter matches.
    pub class: String,
    pub duration: String,
    pub calls: String,
    /// `n line(s)` newly covered, and per file how many.
    pub new_lines: Option<(String, String)>,
    pub minimal_subset: Option<ExecutionLink<'a>>,
    pub faults: Vec<(&'a FaultReport, Location)>,
    pub failure: Option<FailureView<'a>>,
}

pub(super) struct FailureView<'a> {
    pub failure: &'a Failure,
    pub badge: Badge,
    /// (id, anchor) of each vulnerability the execution shows.
    pub vulnerabilities: Vec<(&'a str, String)>,
    pub location: Option<Location>,
}

pub(super) struct PrunedRow<'a> {
    pub pruned: &'a PrunedReport,
    pub reason: &'static str,
    pub help: &'static str,
}

impl<'a> Executions<'a> {
    pub fn new(report: &'a Report, links: &'a Links<'a>) -> Executions<'a> {
        let rows =
            report.executions.iter().zip(&links.rows).map(|(e, anchor)| execution_row(e, anchor, links)).collect();
        let pruned = report
            .pruned
            .iter()
            .map(|pruned| {
                let (reason, help) = match pruned.reason {
                    PruneReason::Dominated => ("dominated", "a subset of these faults already failed"),
                    PruneReason::Observed => ("observed", "the call already gave this answer without a fault on it"),
                    PruneReason::Unreachable => ("unreachable", "one fault prevents the call another fault is on"),
                };
                PrunedRow { pruned, reason, help }
            })
            .collect();
        Executions { rows, pruned_count: plural(report.pruned.len(), "fault set", "fault sets"), pruned }
    }
}

fn execution_row<'a>(e: &'a ExecutionReport, anchor: &'a str, links: &'a Links<'a>) -> ExecutionRow<'a> {
    let new_lines: usize = e.new_lines.values().map(Vec::len).sum();
    let new_lines = (new_lines > 0).then(|| {
        let files: Vec<String> = e.new_lines.iter().map(|(f, l)| format!("{f}: {}", l.len())).collect();
        (plural(new_lines, "line", "lines"), files.join(", "))
    });
    let failure = e.failure.as_ref().map(|failure| FailureView {
        failure,
        badge: Badge::of(failure.class),
        vulnerabilities: links.vulnerabilities_of(&e.id).iter().map(|id| (*id, slug(id))).collect(),
        location: failure.location.as_ref().map(|location| links.location(location)),
    });
    ExecutionRow {
        execution: e,
        anchor,
        outcome: match e.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
        },
        class: e.failure.as_ref().map_or_else(|| "none".to_string(), |f| f.class.to_string()),
        duration: format_ms(e.duration_ms),
        calls: plural(e.calls, "call", "calls"),
        new_lines,
        minimal_subset: e.minimal_subset.as_ref().map(|id| links.execution_link(id)),
        faults: e.faults.iter().map(|f| (f, links.location(&f.site))).collect(),
        failure,
    }
}

/// Each warning of the report once, with links to the executions that gave it.
fn warnings<'a>(report: &'a Report, links: &'a Links<'a>) -> Vec<(&'a Warning, Vec<ExecutionLink<'a>>)> {
    let grouped = report.grouped_warnings().into_iter();
    grouped.map(|(warning, ids)| (warning, ids.into_iter().map(|id| links.execution_link(id)).collect())).collect()
}

/// `text` with its first letter in capitals.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}
