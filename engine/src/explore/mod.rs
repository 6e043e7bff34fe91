//! The explorer: runs the functional test once per fault set and builds the report.
//!
//! Reference run (twice, to find nondeterministic calls), then the planner's candidates one by one until
//! the space or the budget is exhausted, then minimisation of failing sets. Each execution runs the test
//! inside its own [`Execution`] context under a deadline, waits for the services' handlers of that
//! execution to finish, and is classified. It never stops at the first failure. I/O is limited to the
//! optional coverage probe and writing the report at the end (and when stopped early).
//!
//! With `jobs > 1` (and no per-execution coverage), executions run concurrently on the current task: next to
//! the candidate the planner chose, the ones it would choose next (if they teach it nothing new) run
//! speculatively, and their results wait until the planner really chooses them. Results are observed one
//! by one in the planner's order, so for a deterministic system the executions — and their order in the
//! report — are exactly those of `jobs = 1`; a speculation the planner never confirms is dropped.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::call::CallKey;
use crate::cancel::Cancel;
use crate::fault::Catalog;
use crate::plan::{Candidate, FaultSet, Order, Partition};
use crate::report::{FaultReport, Report};
use crate::text::shell_quote;
use crate::Error;

mod explorer;
mod progress;
mod run;

use explorer::Explorer;

/// What a functional test returns: `()` (it fails by panicking, e.g. `assert!`) or a `Result`.
pub trait Verdict {
    fn verdict(self) -> Result<(), String>;
}

impl Verdict for () {
    fn verdict(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> Verdict for Result<(), E> {
    fn verdict(self) -> Result<(), String> {
        self.map_err(|error| error.to_string())
    }
}

/// Settings of one exploration.
#[derive(Clone, Debug)]
pub struct Config {
    /// What is explored. In a test, give the test's name: the default replay command,
    /// `CLOTURE_REPLAY={id} cargo test {name}`, selects the test by it.
    pub name: String,
    /// Free-form facts about the system for the report (e.g. the edition).
    pub labels: BTreeMap<String, String>,
    /// Most faults in one execution.
    pub max_faults: usize,
    pub order: Order,
    /// Dynamic reduction (domination is always on).
    pub reduce: bool,
    /// Budget: most executions (reference runs included).
    pub max_executions: Option<usize>,
    /// Budget: most time for the whole exploration.
    pub max_time: Option<Duration>,
    /// Deadline of one execution; past it the execution fails with class `timeout`.
    pub deadline: Duration,
    pub catalog: Catalog,
    /// Where `report.json` and friends are written; `None` writes nothing.
    pub report_dir: Option<PathBuf>,
    /// The command that replays one execution, `{id}` standing for its id and `{name}` for `name`.
    pub replay_command: String,
    /// Show progress on stderr when it is a terminal.
    pub progress: bool,
    /// Stops the exploration after the execution under way (e.g. on Ctrl-C; the report is still written),
    /// or abandons that execution at once.
    pub cancel: Cancel,
    /// The workspace whose sources `report.html` shows; `None`: the workspace holding the current directory.
    pub workspace: Option<PathBuf>,
    /// The health of cloture's own endpoints (coordinator, proxies) of an external system
    /// ([`crate::external::System::health`]): an execution during which they could not accept connections
    /// is a harness `error`, never a finding.
    pub harness: Option<crate::net::HarnessHealth>,
    /// Workspace-relative source prefixes (e.g. `cinema/src/`) whose coverage is measured per execution
    /// when the program runs under cargo llvm-cov (used by [`crate::cli::run`], never by tests: resetting
    /// counters would disturb other tests of the same process).
    pub coverage_paths: Vec<String>,
    /// Most executions running at once (at least 1). Per-execution coverage needs one at a time: with an
    /// active probe the explorer runs one and says so in the report.
    pub jobs: usize,
    /// Only partition `k` of `n` (1-based) of the plan, for splitting the work between machines; the
    /// reports of all partitions are united by `cloture merge`.
    pub partition: Option<Partition>,
}

impl Config {
    /// The replay command with `{name}` filled in and `{id}` left to fill; without a report directory
    /// there is nothing to replay from, and it says so.
    pub fn replay_template(&self) -> String {
        if self.report_dir.is_none() {
            return "no replay: this exploration wrote no report (set Config::report_dir)".to_string();
        }
        self.replay_command.replace("{name}", &shell_quote(&self.name))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "exploration".to_string(),
            labels: BTreeMap::new(),
            max_faults: 2,
            order: Order::Coverage,
            reduce: true,
            max_executions: None,
            max_time: None,
            deadline: Duration::from_secs(10),
            catalog: Catalog::default(),
            report_dir: None,
            replay_command: "CLOTURE_REPLAY={id} cargo test {name}".to_string(),
            progress: false,
            cancel: Cancel::default(),
            workspace: None,
            harness: None,
            coverage_paths: Vec::new(),
            jobs: 1,
            partition: None,
        }
    }
}

/// Hooks around every execution, for per-execution coverage. The explorer works without one.
pub trait Probe {
    /// Called right before the execution starts.
    fn before(&mut self);
    /// Called after the execution and its handlers finished; returns the lines it newly covered.
    fn after(&mut self, execution_id: &str) -> BTreeMap<String, Vec<u32>>;
    /// Ranks a candidate for the coverage order (higher runs first).
    fn score(&self, candidate: &Candidate, calls: &HashMap<CallKey, FaultReport>) -> f64;
    /// Called when `candidate` was picked to run next.
    fn chosen(&mut self, candidate: &Candidate, calls: &HashMap<CallKey, FaultReport>);
    /// Finishes the report's coverage section.
    fn finish(&mut self, report: &mut Report);
    /// Whether the probe measures each execution, which needs executions one at a time.
    fn active(&self) -> bool {
        true
    }
    /// A short coverage figure for the progress line, e.g. `coverage 142/305 lines`.
    fn progress(&self) -> Option<String> {
        None
    }
}

/// Explores `test` with faults injected. The services must already be running in this process (or send
/// their calls through cloture's client and serve with [`crate::serve`]). When `CLOTURE_REPLAY` is set,
/// replays that one execution instead (see [`replay`]).
pub async fn explore<T, F>(config: &Config, test: T) -> Result<Report, Error>
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    explore_with(config, test, None).await
}

/// [`explore`] with a coverage probe.
pub async fn explore_with<T, F>(config: &Config, test: T, probe: Option<&mut dyn Probe>) -> Result<Report, Error>
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    if let Ok(id) = std::env::var("CLOTURE_REPLAY") {
        if !id.trim().is_empty() {
            return replay(config, id.trim(), test).await;
        }
    }
    Explorer::new(config, &test, probe).explore().await
}

/// Re-runs the one execution with id `id` from the report in `config.report_dir`, and returns a report
/// holding just that execution.
pub async fn replay<T, F>(config: &Config, id: &str, test: T) -> Result<Report, Error>
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    let dir = config.report_dir.clone().ok_or(Error::NoReportDir)?;
    let path = dir.join("report.json");
    let previous = Report::read(&path)?;
    let recorded = previous.recorded(id, &path)?;
    let faults: FaultSet = recorded.faults.iter().map(|f| (f.key, f.fault)).collect();
    Ok(Explorer::new(config, &test, None).replay(id, &faults).await)
}
