//! The exploration report: schema `cloture.report/1` (documented in docs/report.md), the vulnerability
//! grouping, the terminal summary, and writing the files.
//!
//! Everything here but [`Report::write`] and [`Report::read`] is pure: the report is plain data built by
//! the explorer and rendered to text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::call::{CallKey, CallSite};
use crate::fault::Fault;
use crate::graph::GraphData;
use crate::plan::{Order, PruneReason, Shares};
use crate::text::printable;
pub use crate::trace::ServiceLog;
use crate::Error;

/// The schema name and version written into every report.
pub const SCHEMA: &str = "cloture.report/1";

/// A whole exploration report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// What was explored, e.g. the test's name.
    pub name: String,
    /// Free-form facts about the system explored (e.g. `edition: recitation`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub config: ReportConfig,
    pub summary: Summary,
    pub executions: Vec<ExecutionReport>,
    #[serde(default)]
    pub vulnerabilities: Vec<Vulnerability>,
    #[serde(default)]
    pub pruned: Vec<PrunedReport>,
    pub call_graph: GraphData,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageReport>,
}

/// The settings the exploration ran with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportConfig {
    pub max_faults: usize,
    pub order: Order,
    pub reduce: bool,
    pub max_executions: Option<usize>,
    pub max_time_ms: Option<u64>,
    pub deadline_ms: u64,
    /// The command that re-runs one execution, with `{id}` standing for its id.
    pub replay_command: String,
    /// Most executions that ran at once.
    #[serde(default = "one")]
    pub jobs: usize,
    /// The share of the plan this run explored, `k/n` (several for a merged report); absent for the whole plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Shares>,
    /// Why the exploration ran with other settings than asked (e.g. one job under per-execution coverage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn one() -> usize {
    1
}

/// Counts and timing of the whole exploration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Executions run, reference runs included.
    pub executions: usize,
    pub passed: usize,
    pub failed: usize,
    /// Candidate fault sets not run because they could not show anything new.
    pub pruned: usize,
    pub duration_ms: u64,
    /// Every planned fault set ran (no budget or interruption cut the exploration short).
    pub complete: bool,
    /// Why the exploration stopped early, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Call keys that differed between the two reference runs: reported, never faulted.
    #[serde(default)]
    pub nondeterministic: Vec<CallKey>,
    pub vulnerabilities: usize,
}

/// One execution: the faults it injected and what happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecutionReport {
    /// Stable id: the same fault set has the same id in every run.
    pub id: String,
    /// One of the fault-free reference runs.
    #[serde(default)]
    pub reference: bool,
    pub faults: Vec<FaultReport>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub duration_ms: f64,
    /// Number of calls the execution made (the test's own included).
    pub calls: usize,
    /// Lines this execution covered that no earlier execution had, per file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub new_lines: BTreeMap<String, Vec<u32>>,
    /// When this failing set is not minimal: the id of a failing execution with a subset of its faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimal_subset: Option<String>,
    pub replay: String,
    /// What the execution did that the test's verdict does not show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// A finding beyond the test's verdict: reported, never a failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
}

/// The kinds of [`Warning`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The execution made at least three times the calls of the fault-free run.
    RetryAmplification,
    /// A fault was injected and the test accepted a 200 whose body differs from the fault-free answer.
    MaskedFailure,
    /// The coordinator refused part of what services reported (its per-execution bounds).
    Truncated,
}

impl std::fmt::Display for WarningKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WarningKind::RetryAmplification => "retry amplification",
            WarningKind::MaskedFailure => "masked failure",
            WarningKind::Truncated => "truncated",
        })
    }
}

/// One injected fault and the call it was injected into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultReport {
    pub key: CallKey,
    pub from: String,
    pub to: String,
    pub method: String,
    pub path: String,
    /// `path/to/file.rs:line:col`, relative to the workspace root.
    pub site: CallSite,
    pub fault: Fault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
}

/// Why an execution failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
    /// Where it happened: the panic (or escaped error) in the service, or the failing assertion in the test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<CallSite>,
    /// The service that crashed, for `crash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Why, in the services' own words (fields `logs` and `answers`).
    #[serde(flatten)]
    pub said: Said,
}

impl Failure {
    /// A failure with nothing the services said attached (yet).
    pub fn new(class: FailureClass, message: String, location: Option<CallSite>, service: Option<String>) -> Failure {
        Failure { class, message, location, service, said: Said::default() }
    }
}

/// What the services said while an execution ran: why a service failed, in its own words.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Said {
    /// What each service in its own process wrote to its log while the execution ran (its last lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<ServiceLog>,
    /// The error answers (5xx) seen during the execution, with what their bodies said: those proxies passed
    /// on, and those the test's own calls got.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<ErrorAnswer>,
}

impl Said {
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.answers.is_empty()
    }
}

/// An error answer seen on the wire: `to` answered `from`'s `method path` with `status`, saying `body`
/// (its start, made printable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub from: String,
    pub to: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
}

/// The failure classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureClass {
    /// A service panicked or answered 500 from an unhandled error.
    Crash,
    /// The services degraded gracefully but the test's oracle refused the answer: fix the test.
    Rejected,
    /// A call with no time limit waited on a slow dependency: the execution could not finish.
    Hang,
    /// The execution did not finish within its deadline.
    Timeout,
    /// The harness itself failed (e.g. the system under test was unreachable).
    Error,
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureClass::Crash => "crash",
            FailureClass::Rejected => "rejected",
            FailureClass::Hang => "hang",
            FailureClass::Timeout => "timeout",
            FailureClass::Error => "error",
        })
    }
}

/// A pruned candidate and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrunedReport {
    pub id: String,
    pub faults: Vec<String>,
    pub reason: PruneReason,
}

/// One distinct problem: failing executions grouped by what went unhandled.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vulnerability {
    /// `V1`, `V2`, ... in order of first discovery.
    pub id: String,
    pub class: FailureClass,
    /// A one-line description.
    pub title: String,
    /// Fault family (`status`, `timeout`, `connect`, …) of the faults that trigger it; several, comma-separated
    /// (first seen first), when faults of several families do (`connect,status`).
    pub family: String,
    /// The faults that trigger it, e.g. `status:500`.
    pub faults: Vec<Fault>,
    /// The callees whose calls were faulted.
    pub callees: Vec<String>,
    /// Call sites where the triggering faults were injected.
    pub call_sites: Vec<CallSite>,
    /// Where it failed (panic or escaped-error locations, or test assertions).
    pub locations: Vec<CallSite>,
    pub message: String,
    /// The service that failed, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// What the services said in the first execution (fields `logs` and `answers`, see [`Said`]).
    #[serde(flatten)]
    pub said: Said,
    /// Ids of the executions that show it, the first being the smallest.
    pub executions: Vec<String>,
    /// The command that replays the first execution.
    pub replay: String,
}

/// Coverage before and after the fault runs (present when the run was built with coverage).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CoverageReport {
    /// Whether coverage guided the order of exploration.
    pub guided: bool,
    /// Per source file, relative to the workspace root.
    pub files: BTreeMap<String, FileCoverage>,
    /// Fault → lines it newly covered (first execution to cover them).
    #[serde(default)]
    pub fault_lines: Vec<FaultLines>,
    /// The smallest set of executions that reaches the same coverage: a fast CI subset.
    #[serde(default)]
    pub minimal_executions: Vec<String>,
    /// Why coverage is missing or partial, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What measuring coverage cost, when snapshots were taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<CoverageTiming>,
}

/// The cost of per-execution coverage: taking snapshots (reset and snapshot around each execution,
/// the hot path) and turning them into lines and regions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageTiming {
    /// Snapshots taken (one per execution; several service processes' snapshots of one execution count
    /// once).
    pub snapshots: usize,
    /// Milliseconds spent taking them, in all.
    pub snapshot_ms: f64,
    /// Milliseconds spent turning them into lines and regions, in all.
    pub processing_ms: f64,
}

/// Covered and instrumented line counts of one file.
pub use cloture_coverage::Counts;

/// Coverage of one source file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FileCoverage {
    /// By the functional test alone (the reference run).
    pub before: Counts,
    /// With the fault runs.
    pub after: Counts,
    pub newly_covered: Vec<u32>,
    /// Every instrumented line.
    pub lines: Vec<u32>,
    /// Lines covered by the reference run.
    pub covered_before: Vec<u32>,
    /// Newly covered line → the first execution that covered it.
    pub covered_by: BTreeMap<u32, String>,
    /// Code regions covered before and after (absent when only lines were measured). Finer than lines: the
    /// error exit of a `?` is a region of its own, uncovered while its line counts as covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<RegionChange>,
    /// Code regions the fault runs newly covered, in source order, each with the first execution that
    /// covered it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub newly_covered_regions: Vec<NewRegion>,
    /// Code regions no execution covered that start on a covered line (llvm-cov show's `^0`), in source
    /// order: the paths line coverage cannot show. Regions on uncovered lines are not listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncovered_regions: Vec<SourceRange>,
}

/// Covered and counted code regions of one file (llvm-cov counts code regions only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionCounts {
    pub covered: usize,
    pub total: usize,
}

impl RegionCounts {
    /// Covered regions as a percentage of all (0 for a file without any).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.covered as f64 / self.total as f64
        }
    }
}

/// A file's code regions by the functional test alone and with the fault runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionChange {
    pub before: RegionCounts,
    pub after: RegionCounts,
}

/// Where a region is in its file: `[line, column]` of its start and of its end (the column just past its
/// last character), from 1 as in llvm-cov.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceRange {
    pub start: (u32, u32),
    pub end: (u32, u32),
}

/// A region newly covered by the fault runs and the first execution that covered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRegion {
    pub start: (u32, u32),
    pub end: (u32, u32),
    pub execution: String,
}

impl NewRegion {
    pub fn range(&self) -> SourceRange {
        SourceRange { start: self.start, end: self.end }
    }
}

/// The lines one execution newly covered, named by its faults.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultLines {
    pub execution: String,
    pub faults: Vec<String>,
    pub lines: BTreeMap<String, Vec<u32>>,
}

impl FaultReport {
    /// `users → bookings GET /bookings/x status:500 at site` (a call seen only on the wire: its site is its
    /// name).
    pub fn describe(&self) -> String {
        if self.site.is_named() {
            return self.describe_call();
        }
        format!("{} at {}", self.describe_call(), self.site)
    }

    /// `users → bookings GET /bookings/x status:500`; a call seen only on the wire is named by its route:
    /// `users → bookings GET /bookings/{user} status:500`.
    pub fn describe_call(&self) -> String {
        if self.site.is_named() {
            return format!("{} {}", self.site, self.fault);
        }
        format!("{} → {} {} {} {}", self.from, self.to, self.method, self.path, self.fault)
    }
}

impl Summary {
    /// The counts of `executions` with `vulnerabilities` found; timing and stop fields left at their
    /// defaults for the caller to fill.
    pub fn of(executions: &[ExecutionReport], vulnerabilities: usize) -> Summary {
        Summary {
            executions: executions.len(),
            passed: executions.iter().filter(|e| e.outcome == Outcome::Pass).count(),
            failed: executions.iter().filter(|e| e.outcome == Outcome::Fail).count(),
            vulnerabilities,
            ..Summary::default()
        }
    }
}

/// Groups failing executions into vulnerabilities: one per unhandled transport fault kind (timeouts not
/// handled anywhere are one problem), one per place a bad answer crashed a service, one per oracle
/// assertion that refused a degraded answer. A crash whose place is unknown (a service cloture cannot
/// instrument answered 500) is grouped by the service, the faulted dependencies and the fault families.
pub fn group_vulnerabilities(executions: &[ExecutionReport], replay_command: &str) -> Vec<Vulnerability> {
    let mut groups: Vec<(Cause, Vec<&ExecutionReport>)> = Vec::new();
    // A failure with no fault injected, or of the harness itself, says nothing about failure handling.
    let finding = |e: &&ExecutionReport| e.outcome == Outcome::Fail && !e.reference && !e.faults.is_empty();
    for execution in executions.iter().filter(finding) {
        let Some(failure) = execution.failure.as_ref().filter(|f| f.class != FailureClass::Error) else { continue };
        let cause = Cause::of(execution, failure);
        match groups.iter_mut().find(|(known, _)| *known == cause) {
            Some((_, members)) => members.push(execution),
            None => groups.push((cause, vec![execution])),
        }
    }
    groups.into_iter().enumerate().map(|(index, (_, members))| vulnerability(index, members, replay_command)).collect()
}

/// How a failure's message ends when the test gave up before a service's own time limit on a slow call
/// ended: the test's limit and the service's collide (a `rejected` failure, grouped apart).
pub const LONGER_TEST_LIMIT: &str = "give the test a time limit longer than its services'";

/// How a failure's message ends when a service's waits on slow calls, each within its own limit, add up to
/// the test's time limit: the service has no time limit on its work as a whole (grouped apart, by service).
pub const OVERALL_LIMIT: &str =
    "give the service an overall time limit (a deadline for its whole answer) shorter than the test's";

impl Vulnerability {
    /// Where the services' own code failed as their logs show it (see [`ServiceLog::raised_at`]), when no
    /// location is known otherwise: per service whose log shows one.
    pub fn logged_at(&self) -> Vec<(&str, CallSite)> {
        if !self.locations.is_empty() {
            return Vec::new();
        }
        self.said.logs.iter().filter_map(|log| Some((log.service.as_str(), log.raised_at()?))).collect()
    }
}

/// Whether a failure's message says time limits are the problem (see [`LONGER_TEST_LIMIT`],
/// [`OVERALL_LIMIT`]).
fn timing(message: &str) -> bool {
    message.ends_with(LONGER_TEST_LIMIT) || message.ends_with(OVERALL_LIMIT)
}

/// What a failure is grouped by.
#[derive(PartialEq)]
enum Cause {
    /// A crash on transport faults of one family only: unhandled wherever it happens, one problem.
    UnhandledTransport(&'static str),
    /// A failure of a class at a place.
    At(FailureClass, Option<CallSite>),
    /// A crash without a known place: told apart by the service that failed, the dependencies whose calls
    /// were faulted and the fault families.
    Dependency { service: Option<String>, callees: BTreeSet<String>, families: BTreeSet<&'static str> },
    /// A service that waits forever on slow dependencies: one problem, whichever call it waits on.
    Hangs(Option<String>),
    /// The test's time limit is not longer than a service's: one problem, whichever call is slow.
    TimeLimits,
    /// A service's waits on slow calls add up past the test's limit: one problem per service.
    NoOverallLimit(Option<String>),
}

impl Cause {
    fn of(execution: &ExecutionReport, failure: &Failure) -> Cause {
        let families: BTreeSet<&'static str> = execution.faults.iter().map(|f| f.fault.family()).collect();
        let transport = families.len() == 1 && !families.contains("status") && !families.contains("grpc");
        match (failure.class, families.first()) {
            (FailureClass::Hang, _) => Cause::Hangs(failure.service.clone()),
            (FailureClass::Rejected, _) if failure.message.ends_with(LONGER_TEST_LIMIT) => Cause::TimeLimits,
            (FailureClass::Rejected, _) if failure.message.ends_with(OVERALL_LIMIT) => {
                Cause::NoOverallLimit(failure.service.clone())
            }
            // Without a place (a service cloture cannot instrument answered 500): what failed, and on what.
            (FailureClass::Crash, _) if failure.location.is_none() => Cause::Dependency {
                service: failure.service.clone(),
                callees: execution.faults.iter().map(|f| f.to.clone()).collect(),
                families,
            },
            (FailureClass::Crash, Some(family)) if transport => Cause::UnhandledTransport(family),
            (class, _) => Cause::At(class, failure.location.clone()),
        }
    }
}

/// The items `of` gives for each member, first occurrence first.
fn distinct<T: PartialEq>(members: &[&ExecutionReport], of: impl Fn(&ExecutionReport) -> Vec<T>) -> Vec<T> {
    let mut seen = Vec::new();
    for item in members.iter().flat_map(|member| of(member)) {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

fn join<T: std::fmt::Display>(items: &[T], separator: &str) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(separator)
}

/// Vulnerability `V{index + 1}` from the failing executions that show it.
fn vulnerability(index: usize, mut members: Vec<&ExecutionReport>, replay_command: &str) -> Vulnerability {
    members.sort_by_key(|e| e.faults.len());
    let first = members[0];
    let failure = first.failure.clone().expect("failing executions have a failure");
    let faults = distinct(&members, |e| e.faults.iter().map(|f| f.fault).collect());
    let callees = distinct(&members, |e| e.faults.iter().map(|f| f.to.clone()).collect());
    let call_sites = distinct(&members, |e| e.faults.iter().map(|f| f.site.clone()).collect());
    let locations = distinct(&members, |e| e.failure.iter().filter_map(|f| f.location.clone()).collect());
    let family = distinct(&members, |e| e.faults.iter().map(|f| f.fault.family()).collect()).join(",");
    let service = failure.service.clone().unwrap_or_else(|| "the system".to_string());
    let (callees_text, faults_text) = (callees.join(" or "), join(&faults, ", "));
    let title = match failure.class {
        FailureClass::Crash if faults.iter().all(|fault| fault.hold().is_some()) => {
            let how = if faults == [Fault::Slow] { String::new() } else { format!(" ({faults_text})") };
            format!("{service} crashes when {callees_text} is slow{how}")
        }
        FailureClass::Crash => format!("{service} crashes when {}", failing(&callees_text, &faults)),
        FailureClass::Rejected if failure.message.ends_with(LONGER_TEST_LIMIT) => {
            format!("the test gives up before the services' own time limits end when {callees_text} is slow")
        }
        FailureClass::Rejected if failure.message.ends_with(OVERALL_LIMIT) => {
            let caller = failure.service.as_deref().unwrap_or("a service");
            format!(
                "{caller} has no overall time limit: its waits add up past the test's when {} are slow together",
                callees.join(" and ")
            )
        }
        FailureClass::Rejected => {
            format!("the test refuses the degraded answer when {callees_text} fails with {faults_text}")
        }
        // Calls seen only on the wire: the caller's limits are not known, only that none ended the wait.
        FailureClass::Hang if locations.iter().all(CallSite::is_named) => format!(
            "{service} does not answer when {callees_text} is slow: no time limit shorter than the test's on {}",
            join(&locations, ", ")
        ),
        FailureClass::Hang => format!(
            "{service} waits forever when {callees_text} is slow: no time limit on the call{} at {}",
            if locations.len() > 1 { "s" } else { "" },
            join(&locations, ", ")
        ),
        FailureClass::Timeout => format!("the execution hangs when {callees_text} fails with {faults_text}"),
        FailureClass::Error => format!("the harness fails: {}", failure.message),
    };
    Vulnerability {
        id: format!("V{}", index + 1),
        class: failure.class,
        title,
        family,
        faults,
        callees,
        call_sites,
        locations,
        message: failure.message,
        service: failure.service,
        said: failure.said,
        executions: members.iter().map(|e| e.id.clone()).collect(),
        replay: replay_command.replace("{id}", &first.id),
    }
}

impl Report {
    /// Reads a report written by `Report::write`.
    pub fn read(path: &Path) -> Result<Report, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Io { what: format!("read report {}", path.display()), source })?;
        let report: Report = serde_json::from_str(&text)
            .map_err(|error| Error::BadReport { path: path.to_path_buf(), why: error.to_string() })?;
        if report.schema != SCHEMA {
            return Err(Error::BadReport {
                path: path.to_path_buf(),
                why: format!("schema `{}` is not `{SCHEMA}`", report.schema),
            });
        }
        Ok(report)
    }

    /// The execution with this id.
    pub fn execution(&self, id: &str) -> Option<&ExecutionReport> {
        self.executions.iter().find(|e| e.id == id)
    }

    /// The execution with this id of the report read from `path`, or an error naming a few known ids.
    pub fn recorded(&self, id: &str, path: &Path) -> Result<&ExecutionReport, Error> {
        self.execution(id).ok_or_else(|| {
            let mut known: Vec<&str> = self.executions.iter().map(|e| e.id.as_str()).collect();
            known.dedup();
            known.truncate(8);
            Error::UnknownExecution { id: id.to_string(), report: path.to_path_buf(), known: known.join(", ") }
        })
    }

    /// The summary a person reads in the terminal: what failed, where, how to replay, what next.
    pub fn terminal_summary(&self) -> String {
        let mut out = String::new();
        self.summary_header(&mut out);
        self.summary_verdict(&mut out);
        for v in &self.vulnerabilities {
            let _ = writeln!(out, "  {} [{}] {}", v.id, v.class, printable(&v.title));
            let _ = writeln!(out, "     faults at:  {}", printable(&join(&v.call_sites, ", ")));
            if !v.locations.is_empty() {
                let _ = writeln!(out, "     failed at:  {}", printable(&join(&v.locations, ", ")));
            }
            for (service, at) in v.logged_at() {
                let _ = writeln!(out, "     failed at:  {} (from the log of {service})", printable(&at.to_string()));
            }
            let _ = writeln!(out, "     message:    {}", one_line(&v.message));
            if let Some((_, why)) = v.message.rsplit_once(" — ").filter(|_| timing(&v.message)) {
                let _ = writeln!(out, "     why:        {}", printable(why));
            }
            for log in &v.said.logs {
                if let Some(line) = log.telling(1).first() {
                    let _ = writeln!(out, "     {} said: {}", log.service, one_line(line));
                }
            }
            let _ = writeln!(out, "     executions: {}", v.executions.join(" "));
            let _ = writeln!(out, "     replay:     {}", printable(&v.replay));
        }
        self.summary_warnings(&mut out);
        self.summary_coverage(&mut out);
        self.summary_advice(&mut out);
        out
    }

    /// Warnings beyond the tests' verdicts, each message once with the executions that show it.
    /// Each warning of the report once, with the ids of the executions that gave it, first given first.
    pub fn grouped_warnings(&self) -> Vec<(&Warning, Vec<&str>)> {
        let mut seen: Vec<(&Warning, Vec<&str>)> = Vec::new();
        for execution in &self.executions {
            for warning in &execution.warnings {
                match seen.iter_mut().find(|(known, _)| *known == warning) {
                    Some((_, ids)) => ids.push(&execution.id),
                    None => seen.push((warning, vec![&execution.id])),
                }
            }
        }
        seen
    }

    fn summary_warnings(&self, out: &mut String) {
        let seen = self.grouped_warnings();
        if seen.is_empty() {
            return;
        }
        let _ = writeln!(out, "\nwarnings (not failures):");
        for (warning, ids) in seen {
            let more = if ids.len() > 5 { format!(" and {} more", ids.len() - 5) } else { String::new() };
            let ids: Vec<&str> = ids.into_iter().take(5).collect();
            let _ = writeln!(out, "  {}\n     executions: {}{more}", one_line(&warning.message), ids.join(" "));
        }
    }

    /// Executions that failed in the harness (class `error`): not findings about the services.
    pub fn harness_errors(&self) -> impl Iterator<Item = &ExecutionReport> {
        self.executions.iter().filter(|e| e.failure.as_ref().is_some_and(|f| f.class == FailureClass::Error))
    }

    fn summary_header(&self, out: &mut String) {
        let s = &self.summary;
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let labels = if labels.is_empty() { String::new() } else { format!(" ({})", labels.join(", ")) };
        let stopped = s.stopped.as_ref().map(|why| format!(" — stopped early: {why}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "cloture: {} — {} execution{} ({} passed, {} failed), {} pruned, {} ms{}",
            printable(&format!("{}{labels}", self.name)),
            s.executions,
            if s.executions == 1 { "" } else { "s" },
            s.passed,
            s.failed,
            s.pruned,
            s.duration_ms,
            printable(&stopped)
        );
        if let Some(partition) = &self.config.partition {
            let _ =
                writeln!(out, "  partition {partition} of the plan: `cloture merge` unites the partitions' reports");
        }
        if let Some(note) = &self.config.note {
            let _ = writeln!(out, "  note: {}", printable(note));
        }
        if !s.nondeterministic.is_empty() {
            let _ = writeln!(
                out,
                "  {} call(s) differed between the two reference runs and were not faulted: {}",
                s.nondeterministic.len(),
                join(&s.nondeterministic, ", ")
            );
        }
    }

    /// What the run shows, in one line, then the heading of the vulnerabilities.
    fn summary_verdict(&self, out: &mut String) {
        let faulted = self.executions.iter().filter(|e| !e.reference && !e.faults.is_empty()).count();
        let errors: Vec<&ExecutionReport> = self.harness_errors().collect();
        for execution in &errors {
            let message = execution.failure.as_ref().map(|f| one_line(&f.message)).unwrap_or_default();
            let _ = writeln!(out, "  execution {} failed in the harness, not in the services: {message}", execution.id);
        }
        if !self.vulnerabilities.is_empty() {
            let count = self.vulnerabilities.len();
            let _ = writeln!(out, "\n{count} vulnerabilit{}:", plural_y(count));
            return;
        }
        // A replay runs one execution: what it came to is said after the summary.
        if self.name.contains(" (replay of ") {
            return;
        }
        let verdict = if faulted == 0 {
            match self.summary.failed {
                0 => {
                    "no fault was tried: nothing is known about failure handling yet (no call the test made could \
                     take the faults of the catalog or --faults: `timeout` is tried only where a call's time limit \
                     is known, which calls through a proxy lack; `slow` is tried everywhere)."
                }
                _ => "no fault was tried, and the test failed: see the messages above.",
            }
        } else if !errors.is_empty() {
            "no vulnerability among the executions that ran, but the harness failed: the results are incomplete."
        } else if !self.summary.complete {
            "every execution that ran passed, but the exploration stopped early: not every fault was tried."
        } else {
            "every execution passed: the services handle every fault tried."
        };
        let _ = writeln!(out, "  {verdict}");
    }

    fn summary_coverage(&self, out: &mut String) {
        let Some(coverage) = &self.coverage else { return };
        for (path, file) in &coverage.files {
            let regions_grew = file.regions.is_some_and(|r| r.after.covered > r.before.covered);
            if file.after.covered > file.before.covered || regions_grew {
                let regions = file
                    .regions
                    .map(|r| {
                        format!(
                            "; regions {}/{} → {}/{}",
                            r.before.covered, r.before.total, r.after.covered, r.after.total
                        )
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  coverage {}: {}/{} ({:.1}%) → {}/{} ({:.1}%){regions}",
                    printable(path),
                    file.before.covered,
                    file.before.lines,
                    file.before.percent(),
                    file.after.covered,
                    file.after.lines,
                    file.after.percent()
                );
            }
        }
        if let Some(note) = &coverage.note {
            let _ = writeln!(out, "  coverage: {}", printable(note));
        }
    }

    fn summary_advice(&self, out: &mut String) {
        for advice in self.advice() {
            let _ = writeln!(out, "\nnext: {}", advice.replace('`', ""));
        }
    }

    /// What to do next about the vulnerabilities, in the test's language and the mode's terms (no "failed
    /// at" lines where no place is known): one sentence per kind of problem, code between backticks.
    pub fn advice(&self) -> Vec<String> {
        let of = |class: FailureClass| self.vulnerabilities.iter().filter(move |v| v.class == class);
        let (injected, on_service) = self.oracle_names();
        let mut advice = Vec::new();
        let (hangs_at, hangs_unplaced): (Vec<&Vulnerability>, Vec<&Vulnerability>) =
            of(FailureClass::Hang).partition(|v| v.locations.iter().any(|l| !l.is_named()));
        if !hangs_at.is_empty() {
            advice.push(
                "give the calls under 'failed at' of each hang a time limit, and answer 503 when it expires."
                    .to_string(),
            );
        }
        for v in hangs_unplaced {
            advice.push(format!(
                "give {} calls to {} a time limit shorter than the test's, and answer 503 when it expires.",
                possessive(&serving(v)),
                v.callees.join(" and ")
            ));
        }
        let (crashes_at, crashes_unplaced): (Vec<&Vulnerability>, Vec<&Vulnerability>) =
            of(FailureClass::Crash).partition(|v| !v.locations.is_empty());
        let accept = format!("then make the test accept that answer when `{injected}`.");
        if !crashes_at.is_empty() {
            advice.push(format!(
                "handle these failures where they happen (the 'failed at' lines), e.g. answer 503 when a dependency \
                 fails, {accept}"
            ));
        }
        // Per failing service, the dependencies whose failures it does not handle.
        let mut unplaced: Vec<(String, Vec<&str>)> = Vec::new();
        for v in crashes_unplaced {
            let service = serving(v);
            let at = match unplaced.iter().position(|(known, _)| *known == service) {
                Some(at) => at,
                None => {
                    unplaced.push((service, Vec::new()));
                    unplaced.len() - 1
                }
            };
            let callees = &mut unplaced[at].1;
            for callee in &v.callees {
                if !callees.contains(&callee.as_str()) {
                    callees.push(callee);
                }
            }
        }
        if !unplaced.is_empty() {
            let calls: Vec<String> = unplaced
                .iter()
                .map(|(service, callees)| format!("{} calls to {}", possessive(service), callees.join(" and ")))
                .collect();
            advice.push(format!(
                "handle the failures of {} (what each service said is under each vulnerability), e.g. answer 503 \
                 when a dependency fails, {accept}",
                calls.join(", ")
            ));
        }
        let collisions = of(FailureClass::Rejected).any(|v| v.message.ends_with(LONGER_TEST_LIMIT));
        if collisions {
            advice.push(format!("{LONGER_TEST_LIMIT} (each such vulnerability's message gives both limits)."));
        }
        if of(FailureClass::Rejected).any(|v| v.message.ends_with(OVERALL_LIMIT)) {
            advice.push(format!("{OVERALL_LIMIT} (each such vulnerability's message gives the waits that add up)."));
        }
        let refused = of(FailureClass::Rejected).any(|v| !timing(&v.message));
        if advice.is_empty() && refused {
            advice.push(format!(
                "the services degrade gracefully but the test refuses their answer: accept it when `{injected}` (or \
                 `{on_service}`)."
            ));
        }
        advice
    }

    /// How the test asks whether a fault was injected, in its own language: a Rust test calls the
    /// library; an external test (replayed with `cloture replay`) in Python calls the `cloture` package, in
    /// Node.js `clients/node`; any other asks the coordinator.
    fn oracle_names(&self) -> (&'static str, &'static str) {
        let replay = &self.config.replay_command;
        if !replay.starts_with("cloture replay") {
            return ("cloture::fault_injected()", "cloture::fault_injected_on(service)");
        }
        // The test's own command: what follows --runner or --functional-test, not the services file.
        let test = replay.split(" --services ").next().unwrap_or(replay);
        if test.contains("python") || test.contains("pytest") || test.contains(".py") {
            return ("cloture.fault_injected()", "cloture.fault_injected_on(service)");
        }
        if test.contains("node ") || test.contains(".mjs") || test.contains(".js") {
            return ("await faultInjected()", "await faultInjectedOn(service)");
        }
        ("GET $CLOTURE_COORDINATOR/v1/executions/$CLOTURE_EXECUTION/injected", "GET …/injected?service=NAME")
    }
}

/// `bookings refuses the connection`, `bookings times out`, `bookings answers status:500, status:503`, or
/// `bookings fails with connect, status:500`.
fn failing(callees: &str, faults: &[Fault]) -> String {
    let all = |family: &str| faults.iter().all(|fault| fault.family() == family);
    if all("connect") {
        format!("{callees} refuses the connection")
    } else if all("timeout") {
        format!("{callees} times out")
    } else if faults.iter().all(|fault| matches!(fault.family(), "status" | "grpc")) {
        format!("{callees} answers {}", join(faults, ", "))
    } else {
        format!("{callees} fails with {}", join(faults, ", "))
    }
}

/// `users'`, `front's`.
fn possessive(name: &str) -> String {
    if name.ends_with('s') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

/// The service a vulnerability is about: the one that failed, else the callers of the faulted calls.
fn serving(v: &Vulnerability) -> String {
    if let Some(service) = &v.service {
        return service.clone();
    }
    let mut callers: Vec<&str> = Vec::new();
    for site in v.call_sites.iter().filter(|site| site.is_named()) {
        let caller = site.file.split(" → ").next().unwrap_or_default();
        if !callers.contains(&caller) {
            callers.push(caller);
        }
    }
    if callers.is_empty() {
        "the services".to_string()
    } else {
        callers.join(" and ")
    }
}

/// How fast an exploration got where it ended: what the search orders are compared by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Milestones {
    pub executions: usize,
    /// Executions (reference runs included) until the last newly covered line under the prefix.
    pub to_final_coverage: Option<usize>,
    /// Executions until every vulnerability had shown up once.
    pub to_all_vulnerabilities: Option<usize>,
}

impl Report {
    /// Milestones, counting coverage only in files whose path starts with `prefix`.
    pub fn milestones(&self, prefix: &str) -> Milestones {
        let position = |id: &str| self.executions.iter().position(|e| e.id == id).map(|i| i + 1);
        let to_final_coverage = self
            .executions
            .iter()
            .rposition(|e| e.new_lines.iter().any(|(file, lines)| file.starts_with(prefix) && !lines.is_empty()))
            .map(|i| i + 1);
        let to_all_vulnerabilities = self
            .vulnerabilities
            .iter()
            .map(|v| v.executions.iter().filter_map(|id| position(id)).min())
            .try_fold(0, |latest, first| first.map(|first| latest.max(first)))
            .filter(|_| !self.vulnerabilities.is_empty());
        Milestones { executions: self.executions.len(), to_final_coverage, to_all_vulnerabilities }
    }
}

fn plural_y(n: usize) -> &'static str {
    if n == 1 {
        "y"
    } else {
        "ies"
    }
}

/// The first line of `text`, at most 160 characters, made printable.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > 160 {
        printable(&format!("{}…", line.chars().take(160).collect::<String>()))
    } else {
        printable(line)
    }
}
