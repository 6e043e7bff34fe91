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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::CallKey;
use crate::context::{CallOutcome, CallRecord, Execution, Trace, TEST_SERVICE};
use crate::fault::Catalog;
use crate::graph::CallGraph;
use crate::plan::{execution_id, Candidate, FaultSet, Order, PlanConfig, Planner};
use crate::report::{
    group_vulnerabilities, ExecutionReport, Failure, FailureClass, FaultReport, Outcome, PrunedReport, Report,
    ReportConfig, Summary, SCHEMA,
};
use crate::server::CatchPanic;
use crate::Error;

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
    /// Set to stop after the current execution (e.g. on Ctrl-C); the report is still written.
    pub stop: Arc<AtomicBool>,
    /// Triggered to abandon the execution under way at once (a second Ctrl-C); implies `stop`.
    pub abort: Abort,
    /// Why `stop` was set, when not by an interruption (e.g. a service process exited).
    pub stop_reason: Arc<std::sync::Mutex<Option<String>>>,
    /// Workspace-relative source prefixes (e.g. `cinema/src/`) whose coverage is measured per execution
    /// when the program runs under cargo llvm-cov (used by [`crate::cli::run`], never by tests: resetting
    /// counters would disturb other tests of the same process).
    pub coverage_paths: Vec<String>,
    /// Most executions running at once (at least 1). Per-execution coverage needs one at a time: with an
    /// active probe the explorer runs one and says so in the report.
    pub jobs: usize,
    /// Only partition `k` of `n` (1-based) of the plan, for splitting the work between machines; the
    /// reports of all partitions are united by `cloture merge`.
    pub partition: Option<(usize, usize)>,
}

impl Config {
    /// The replay command with `{name}` filled in and `{id}` left to fill; without a report directory
    /// there is nothing to replay from, and it says so.
    pub fn replay_template(&self) -> String {
        if self.report_dir.is_none() {
            return "no replay: this exploration wrote no report (set Config::report_dir)".to_string();
        }
        self.replay_command.replace("{name}", &crate::cli::shell_quote(&self.name))
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
            stop: Arc::new(AtomicBool::new(false)),
            stop_reason: Arc::default(),
            abort: Abort::default(),
            coverage_paths: Vec::new(),
            jobs: 1,
            partition: None,
        }
    }
}

/// A switch that abandons the execution under way: whoever waits on it wakes up once it is triggered.
#[derive(Clone, Debug, Default)]
pub struct Abort {
    triggered: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
}

impl Abort {
    /// Abandons the execution under way and stops the exploration after it.
    pub fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Whether [`Abort::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// Resolves once triggered.
    pub async fn triggered(&self) {
        loop {
            let woken = self.wake.notified();
            if self.is_triggered() {
                return;
            }
            woken.await;
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

/// One finished execution, before it goes into the report.
struct Ran {
    report: ExecutionReport,
    trace: Trace,
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
pub async fn explore_with<T, F>(config: &Config, test: T, mut probe: Option<&mut dyn Probe>) -> Result<Report, Error>
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
    let started = Instant::now();
    let mut progress = Progress::new(config.progress);
    let mut executions: Vec<ExecutionReport> = Vec::new();
    let mut graph = CallGraph::default();
    let mut calls: HashMap<CallKey, FaultReport> = HashMap::new();
    let measured = probe.as_deref().is_some_and(|probe| probe.active());
    let jobs = if measured { 1 } else { config.jobs.max(1) };
    let note = (jobs < config.jobs).then(|| {
        format!(
            "ran one execution at a time instead of {}: per-execution coverage measures executions one by one",
            config.jobs
        )
    });
    // Results of executions run ahead of the planner, by execution id.
    let mut speculated: HashMap<String, Ran> = HashMap::new();

    settle().await;
    // Reference runs (both at once when running concurrently; the second is dropped if the first fails).
    let mut references = Vec::new();
    if jobs > 1 {
        let none = FaultSet::new();
        references = join_all(vec![run_once(config, &none, &test), run_once(config, &none, &test)]).await;
        if references[0].report.outcome == Outcome::Fail {
            references.truncate(1);
        }
    } else {
        for _ in 0..2 {
            if let Some(probe) = probe.as_deref_mut() {
                probe.before();
            }
            let mut ran = run_once(config, &FaultSet::new(), &test).await;
            if let Some(probe) = probe.as_deref_mut() {
                ran.report.new_lines = probe.after(&ran.report.id);
            }
            references.push(ran);
            if references[0].report.outcome == Outcome::Fail {
                break;
            }
        }
    }
    for ran in &mut references {
        ran.report.reference = true;
        remember_calls(&mut calls, &ran.trace);
        graph.add(&ran.trace.calls, ran.report.outcome == Outcome::Fail);
    }
    let keys = |trace: &Trace| -> HashSet<CallKey> { trace.calls.iter().map(|c| c.key).collect() };
    let nondeterministic: HashSet<CallKey> = match references.as_slice() {
        [first, second] => keys(&first.trace).symmetric_difference(&keys(&second.trace)).copied().collect(),
        _ => HashSet::new(),
    };
    // A test that fails in either fault-free run (a flaky one) gives nothing to compare faulty runs with.
    let reference_failure = references.iter().find_map(|ran| ran.report.failure.clone());
    let first_trace = references[0].trace.clone();
    executions.extend(references.into_iter().map(|ran| ran.report));
    let service_died = config.stop_reason.lock().is_ok_and(|reason| reason.is_some());
    if reference_failure.is_some() && (config.abort.is_triggered() || service_died) {
        // A reference run abandoned by a second Ctrl-C, or run while a service died, says nothing about the
        // test: the exploration was stopped, it did not find a test that fails without faults.
        let stopped = Some(stop_reason(config));
        let mut report = build_report(
            config,
            executions,
            Vec::new(),
            &graph,
            started,
            &nondeterministic,
            stopped,
            probe.as_deref_mut(),
        );
        report.config.jobs = jobs;
        report.config.note = note;
        write(config, &report)?;
        return Ok(report);
    }
    if let Some(failure) = reference_failure {
        let mut report = build_report(
            config,
            executions,
            Vec::new(),
            &graph,
            started,
            &nondeterministic,
            Some("the test fails without faults".into()),
            probe.as_deref_mut(),
        );
        report.config.jobs = jobs;
        report.config.note = note;
        let path = write(config, &report)?;
        return Err(Error::ReferenceFailed { message: failure.message, location: failure.location, report: path });
    }

    let mut planner = Planner::new(
        PlanConfig {
            max_faults: config.max_faults,
            order: config.order,
            reduce: config.reduce,
            partition: config.partition,
        },
        config.catalog.clone(),
        nondeterministic.clone(),
    );
    planner.observe(&FaultSet::new(), &first_trace.calls, false);
    let mut failed_sets: Vec<(FaultSet, String)> = Vec::new();
    let mut stopped: Option<String> = None;
    loop {
        if let Some(why) = budget_exhausted(config, executions.len(), started) {
            if planner.pending() > 0 {
                stopped = Some(why);
            }
            break;
        }
        let next = match probe.as_deref() {
            Some(probe) => planner.next(|candidate| probe.score(candidate, &calls)),
            None => planner.next(|_| 0.0),
        };
        let Some(candidate) = next else { break };
        if let Some(probe) = probe.as_deref_mut() {
            probe.chosen(&candidate, &calls);
        }
        let batch = room(config, jobs, executions.len());
        let ahead = if batch > 1 && !speculated.contains_key(&execution_id(&candidate.faults)) {
            let wanted = batch - 1 + speculated.len();
            match probe.as_deref() {
                Some(probe) => planner.upcoming(wanted, |candidate| probe.score(candidate, &calls)),
                None => planner.upcoming(wanted, |_| 0.0),
            }
        } else {
            Vec::new()
        };
        let ran = obtain(config, &test, batch, &mut speculated, probe.as_deref_mut(), &candidate.faults, ahead).await;
        let failed = ran.report.outcome == Outcome::Fail;
        remember_calls(&mut calls, &ran.trace);
        graph.add(&ran.trace.calls, failed);
        planner.observe(&candidate.faults, &ran.trace.calls, failed);
        if failed {
            failed_sets.push((candidate.faults.clone(), ran.report.id.clone()));
        }
        executions.push(ran.report);
        let coverage = probe.as_deref().and_then(|probe| probe.progress());
        progress.show(executions.len(), planner.pending(), &executions, coverage);
    }

    // Minimisation: a failing set with a failing proper subset is not minimal; run missing subsets.
    let mut index = 0;
    while index < failed_sets.len() && stopped.is_none() {
        let (faults, id) = failed_sets[index].clone();
        index += 1;
        if faults.len() < 2 {
            continue;
        }
        let subsets: Vec<FaultSet> = faults
            .keys()
            .map(|key| {
                let mut subset = faults.clone();
                subset.remove(key);
                subset
            })
            .collect();
        for (position, subset) in subsets.iter().enumerate() {
            let subset_id = execution_id(subset);
            let known = executions.iter().find(|e| e.id == subset_id).map(|e| e.outcome);
            let outcome = match known {
                Some(outcome) => outcome,
                None => {
                    if let Some(why) = budget_exhausted(config, executions.len(), started) {
                        stopped = Some(why);
                        break;
                    }
                    // The subsets after this one are what runs next if it passes.
                    let ahead = subsets[position + 1..]
                        .iter()
                        .filter(|other| !executions.iter().any(|e| e.id == execution_id(other)))
                        .cloned()
                        .collect();
                    let batch = room(config, jobs, executions.len());
                    let ran = obtain(config, &test, batch, &mut speculated, probe.as_deref_mut(), subset, ahead).await;
                    let outcome = ran.report.outcome;
                    remember_calls(&mut calls, &ran.trace);
                    graph.add(&ran.trace.calls, outcome == Outcome::Fail);
                    planner.mark_seen(subset);
                    if outcome == Outcome::Fail {
                        failed_sets.push((subset.clone(), ran.report.id.clone()));
                    }
                    executions.push(ran.report);
                    outcome
                }
            };
            if outcome == Outcome::Fail {
                if let Some(execution) = executions.iter_mut().find(|e| e.id == id) {
                    execution.minimal_subset = Some(subset_id);
                }
                break;
            }
        }
    }
    progress.finish();
    if stopped.is_none() && (config.stop.load(Ordering::Relaxed) || config.abort.is_triggered()) {
        stopped = Some(stop_reason(config));
    }
    let pruned = planner
        .pruned()
        .iter()
        .map(|(faults, reason)| PrunedReport {
            id: execution_id(faults),
            faults: faults.iter().map(|(key, fault)| describe(&calls, *key, *fault)).collect(),
            reason: reason.clone(),
        })
        .collect();
    let mut report = build_report(config, executions, pruned, &graph, started, &nondeterministic, stopped, probe);
    report.config.jobs = jobs;
    report.config.note = note;
    write(config, &report)?;
    Ok(report)
}

/// How many executions may run at once now: `jobs`, within what is left of the execution budget.
fn room(config: &Config, jobs: usize, executions: usize) -> usize {
    let left = config.max_executions.map_or(usize::MAX, |most| most.saturating_sub(executions));
    jobs.min(left).max(1)
}

/// The execution of `faults`: taken from an earlier speculative run, or run now — with up to `batch - 1` of
/// `ahead` (what the explorer expects to need next) alongside, whose results are kept in `speculated`.
/// The probe measures only executions run one at a time.
async fn obtain<T, F>(
    config: &Config,
    test: &T,
    batch: usize,
    speculated: &mut HashMap<String, Ran>,
    probe: Option<&mut (dyn Probe + '_)>,
    faults: &FaultSet,
    ahead: Vec<FaultSet>,
) -> Ran
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    let id = execution_id(faults);
    if let Some(ran) = speculated.remove(&id) {
        return ran;
    }
    let mut sets = vec![faults.clone()];
    for set in ahead {
        if sets.len() >= batch {
            break;
        }
        let set_id = execution_id(&set);
        if set_id != id && !speculated.contains_key(&set_id) && !sets.contains(&set) {
            sets.push(set);
        }
    }
    if sets.len() == 1 {
        let mut probe = probe;
        if let Some(probe) = probe.as_deref_mut() {
            probe.before();
        }
        let mut ran = run_once(config, faults, test).await;
        if let Some(probe) = probe {
            ran.report.new_lines = probe.after(&ran.report.id);
        }
        return ran;
    }
    let mut results = join_all(sets.iter().map(|set| run_once(config, set, test)).collect()).await.into_iter();
    let ran = results.next().expect("one result per fault set");
    for other in results {
        speculated.insert(other.report.id.clone(), other);
    }
    ran
}

/// Polls `futures` together on the current task until every one finished; their outputs in input order.
/// (The test's futures need not be `Send`, so they cannot be spawned.)
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|output| output.expect("every future finished")).collect()
}

/// Services spawned just before exploring register their names when their server task first runs; let
/// them run, so that the first calls already name their targets (call keys depend on the names).
async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

fn describe(calls: &HashMap<CallKey, FaultReport>, key: CallKey, fault: crate::Fault) -> String {
    match calls.get(&key) {
        Some(call) => format!("{} → {} {} {} {}", call.from, call.to, call.method, call.path, fault),
        None => format!("{key} {fault}"),
    }
}

fn stop_reason(config: &Config) -> String {
    if config.abort.is_triggered() {
        return "interrupted twice: the last execution was abandoned".to_string();
    }
    config.stop_reason.lock().ok().and_then(|reason| reason.clone()).unwrap_or_else(|| "interrupted".to_string())
}

fn budget_exhausted(config: &Config, executions: usize, started: Instant) -> Option<String> {
    if config.stop.load(Ordering::Relaxed) || config.abort.is_triggered() {
        return Some(stop_reason(config));
    }
    if config.max_executions.is_some_and(|most| executions >= most) {
        return Some(format!("execution budget of {} used up", config.max_executions.unwrap_or_default()));
    }
    if config.max_time.is_some_and(|most| started.elapsed() >= most) {
        return Some(format!("time budget of {:?} used up", config.max_time.unwrap_or_default()));
    }
    None
}

fn remember_calls(calls: &mut HashMap<CallKey, FaultReport>, trace: &Trace) {
    for call in &trace.calls {
        calls.entry(call.key).or_insert_with(|| fault_report(call, call.fault.unwrap_or(crate::Fault::Connect)));
    }
}

/// `fault` at `call`, as the report names it.
fn fault_report(call: &CallRecord, fault: crate::Fault) -> FaultReport {
    FaultReport {
        key: call.key,
        from: call.from.clone(),
        to: call.to.clone(),
        method: call.method.clone(),
        path: call.path.clone(),
        site: call.site.clone(),
        fault,
    }
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    config: &Config,
    executions: Vec<ExecutionReport>,
    pruned: Vec<PrunedReport>,
    graph: &CallGraph,
    started: Instant,
    nondeterministic: &HashSet<CallKey>,
    stopped: Option<String>,
    probe: Option<&mut (dyn Probe + '_)>,
) -> Report {
    let vulnerabilities = group_vulnerabilities(&executions, &config.replay_template());
    let mut nondeterministic: Vec<String> = nondeterministic.iter().map(CallKey::to_string).collect();
    nondeterministic.sort();
    let summary = Summary {
        executions: executions.len(),
        passed: executions.iter().filter(|e| e.outcome == Outcome::Pass).count(),
        failed: executions.iter().filter(|e| e.outcome == Outcome::Fail).count(),
        pruned: pruned.len(),
        duration_ms: started.elapsed().as_millis() as u64,
        complete: stopped.is_none(),
        stopped,
        nondeterministic,
        vulnerabilities: vulnerabilities.len(),
    };
    let mut report = Report {
        schema: SCHEMA.to_string(),
        name: config.name.clone(),
        labels: config.labels.clone(),
        config: ReportConfig {
            max_faults: config.max_faults,
            order: config.order.to_string(),
            reduce: config.reduce,
            max_executions: config.max_executions,
            max_time_ms: config.max_time.map(|t| t.as_millis() as u64),
            deadline_ms: config.deadline.as_millis() as u64,
            replay_command: config.replay_template(),
            jobs: config.jobs.max(1),
            partition: config.partition.map(|(k, n)| format!("{k}/{n}")),
            note: None,
        },
        summary,
        executions,
        vulnerabilities,
        pruned,
        call_graph: graph.data(),
        coverage: None,
    };
    if let Some(probe) = probe {
        probe.finish(&mut report);
    }
    report
}

fn write(config: &Config, report: &Report) -> Result<Option<PathBuf>, Error> {
    match &config.report_dir {
        Some(dir) => report.write(dir).map(Some),
        None => Ok(None),
    }
}

/// Runs one execution of `test` with `faults` and classifies it.
async fn run_once<T, F>(config: &Config, faults: &FaultSet, test: &T) -> Ran
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    let id = execution_id(faults);
    let execution = Execution::start(faults.iter().map(|(k, f)| (*k, *f)).collect());
    let started = Instant::now();
    let future = execution.root_context().scope(CatchPanic::new(test()));
    let result = tokio::select! {
        result = tokio::time::timeout(config.deadline, future) => Some(result),
        () = config.abort.triggered() => None,
    };
    // Let the services' handlers of this execution finish before looking at the trace.
    let quiet = result.is_some() && tokio::time::timeout(Duration::from_secs(1), execution.quiesce()).await.is_ok();
    let duration = started.elapsed();
    let trace = execution.trace();
    let failure = match result {
        Some(result) => classify(config, result, quiet, &trace),
        None => Some(Failure {
            class: FailureClass::Error,
            message: "abandoned: interrupted twice before it finished".to_string(),
            location: None,
            service: None,
        }),
    };
    let report = ExecutionReport {
        id: id.clone(),
        reference: false,
        faults: trace.injected().map(|(call, fault)| fault_report(call, fault)).collect(),
        outcome: if failure.is_some() { Outcome::Fail } else { Outcome::Pass },
        failure,
        duration_ms: duration.as_secs_f64() * 1000.0,
        calls: trace.calls.len(),
        new_lines: BTreeMap::new(),
        minimal_subset: None,
        replay: config.replay_template().replace("{id}", &id),
    };
    Ran { report, trace }
}

type TestResult<V> = Result<Result<V, crate::server::Panic>, tokio::time::error::Elapsed>;

fn classify<V: Verdict>(config: &Config, result: TestResult<V>, quiet: bool, trace: &Trace) -> Option<Failure> {
    if let Some(crash) = trace.crashes.first() {
        return Some(Failure {
            class: FailureClass::Crash,
            message: format!("{} crashed: {}", crash.service, crash.message),
            location: crash.location.clone(),
            service: Some(crash.service.clone()),
        });
    }
    let verdict = match result {
        Err(_) => {
            return Some(Failure {
                class: FailureClass::Timeout,
                message: format!(
                    "the execution did not finish within {:?}{}",
                    config.deadline,
                    if quiet { "" } else { " (a service is still handling a request)" }
                ),
                location: None,
                service: None,
            })
        }
        Ok(Err(panic)) => Err((panic.message, panic.location.map(|l| l.to_string()))),
        Ok(Ok(verdict)) => verdict.verdict().map_err(|message| (message, None)),
    };
    let (message, location) = match verdict {
        Ok(()) => return None,
        Err(failure) => failure,
    };
    // A 500 that no fault injected: some service failed without saying where.
    if let Some(call) = trace
        .calls
        .iter()
        .find(|c| c.fault.is_none() && c.outcome == CallOutcome::Status(500) && c.from == TEST_SERVICE)
    {
        return Some(Failure {
            class: FailureClass::Crash,
            message: format!("{} answered 500: {message}", call.to),
            location: None,
            service: Some(call.to.clone()),
        });
    }
    // The test could not reach the system at all: the harness failed, not the services.
    if let Some(call) =
        trace.calls.iter().find(|c| c.from == TEST_SERVICE && matches!(c.outcome, CallOutcome::Error(_)))
    {
        return Some(Failure {
            class: FailureClass::Error,
            message: format!("the test's request to {} failed: {message}", call.to),
            location,
            service: None,
        });
    }
    Some(Failure { class: FailureClass::Rejected, message, location, service: None })
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
    let previous = crate::report::Report::read(&path)?;
    let Some(recorded) = previous.execution(id) else {
        let mut known: Vec<&str> = previous.executions.iter().map(|e| e.id.as_str()).collect();
        known.dedup();
        known.truncate(8);
        return Err(Error::UnknownExecution { id: id.to_string(), report: path, known: known.join(", ") });
    };
    let faults: FaultSet = recorded.faults.iter().map(|f| (f.key, f.fault)).collect();
    settle().await;
    let started = Instant::now();
    let mut ran = run_once(config, &faults, &test).await;
    // The report keeps the faults that were injected; a planned fault whose call never happened is not
    // among them, so the id is the one asked for, not one recomputed from those faults.
    ran.report.id = id.to_string();
    ran.report.replay = config.replay_template().replace("{id}", id);
    let mut graph = CallGraph::default();
    graph.add(&ran.trace.calls, ran.report.outcome == Outcome::Fail);
    let mut replay_config = config.clone();
    replay_config.name = format!("{} (replay of {id})", config.name);
    // The replay command of the exploration replayed, not one made from the replay's own name.
    replay_config.replay_command = config.replay_template();
    let stopped = config.abort.is_triggered().then(|| stop_reason(config));
    Ok(build_report(&replay_config, vec![ran.report], Vec::new(), &graph, started, &HashSet::new(), stopped, None))
}

/// Progress on stderr: executions done / planned, failures. Quiet when stderr is not a terminal.
struct Progress {
    enabled: bool,
    shown: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new(wanted: bool) -> Progress {
        use std::io::IsTerminal;
        Progress { enabled: wanted && std::io::stderr().is_terminal(), shown: false, last: None }
    }

    fn show(&mut self, done: usize, pending: usize, executions: &[ExecutionReport], coverage: Option<String>) {
        if !self.enabled || self.last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        self.last = Some(Instant::now());
        let failed = executions.iter().filter(|e| e.outcome == Outcome::Fail).count();
        let coverage = coverage.map(|text| format!(", {text}")).unwrap_or_default();
        eprint!("\r\x1b[2Kcloture: {done}/{} executions, {failed} failed{coverage}", done + pending);
        self.shown = true;
    }

    fn finish(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}
