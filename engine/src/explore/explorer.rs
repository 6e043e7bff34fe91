//! The explorer as a small state machine over one exploration's state: reference runs, then pick → run →
//! observe until the plan or the budget is exhausted, then minimisation, then the report.
//!
//! With `jobs > 1` (and no per-execution coverage), next to the candidate the planner chose, the ones it
//! would choose next run speculatively on the current task; their results wait in `speculated` until the
//! planner really chooses them, and are observed one by one in the planner's order. So for a deterministic
//! system the executions, and their order in the report, are exactly those of `jobs = 1`; a speculation
//! the planner never confirms is dropped.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::progress::Progress;
use futures_util::future::join_all;

use super::run::{fault_report, run_once, settle, Ran, ReferenceRun};
use super::{Config, Probe, Verdict};
use crate::call::CallKey;
use crate::fault::Fault;
use crate::graph::CallGraph;
use crate::plan::{execution_id, Candidate, FaultSet, PlanConfig, Planner, Shares};
use crate::report::{
    group_vulnerabilities, ExecutionReport, FailureClass, FaultReport, Outcome, PrunedReport, Report, ReportConfig,
    Summary, SCHEMA,
};
use crate::trace::Trace;
use crate::Error;

/// The state of one exploration.
pub(super) struct Explorer<'a, 'p, T> {
    config: &'a Config,
    test: &'a T,
    /// Measures each execution's coverage and ranks candidates; absent without coverage.
    probe: Option<&'p mut (dyn Probe + 'p)>,
    started: Instant,
    /// Executions run at once: `config.jobs`, or one under per-execution coverage.
    jobs: usize,
    progress: Progress,
    /// Everything run so far, reference runs first, in the order observed.
    executions: Vec<ExecutionReport>,
    graph: CallGraph,
    /// Every call seen, by key, as the report names a fault there.
    calls: HashMap<CallKey, FaultReport>,
    /// Call keys that differed between the two reference runs: never faulted.
    nondeterministic: HashSet<CallKey>,
    /// Results of executions run ahead of the planner, by execution id.
    speculated: HashMap<String, Ran>,
    /// Failing fault sets with their execution ids, to minimise.
    failed_sets: Vec<(FaultSet, String)>,
    /// Why the exploration ended early, once it did.
    stopped: Option<String>,
    /// What the first fault-free run did, once known: the answers later executions are compared with.
    reference: Option<ReferenceRun>,
}

impl<'a, 'p, T, F> Explorer<'a, 'p, T>
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    pub fn new(config: &'a Config, test: &'a T, probe: Option<&'p mut (dyn Probe + 'p)>) -> Self {
        let measured = probe.as_deref().is_some_and(|probe| probe.active());
        Explorer {
            config,
            test,
            probe,
            started: Instant::now(),
            jobs: if measured { 1 } else { config.jobs.max(1) },
            progress: Progress::new(config.progress),
            executions: Vec::new(),
            graph: CallGraph::default(),
            calls: HashMap::new(),
            nondeterministic: HashSet::new(),
            speculated: HashMap::new(),
            failed_sets: Vec::new(),
            stopped: None,
            reference: None,
        }
    }

    /// The whole exploration: writes the report (also when stopped early) and returns it.
    pub async fn explore(mut self) -> Result<Report, Error> {
        settle().await;
        if self.config.cancel.is_stopped() {
            // Stopped before anything ran (e.g. a signal during start-up): an empty, incomplete report.
            self.stopped = Some(self.config.cancel.describe());
            return self.finish(Vec::new());
        }
        let reference = self.reference_runs().await;
        if let Some(failure) = reference.failure {
            // A reference run abandoned by a second Ctrl-C, or run while a service died, says nothing about
            // the test: the exploration was stopped, it did not find a test that fails without faults.
            if self.config.cancel.is_aborted() || self.config.cancel.reason().is_some() {
                self.stopped = Some(self.config.cancel.describe());
                return self.finish(Vec::new());
            }
            self.stopped = Some("the test fails without faults".into());
            let report = self.report(Vec::new());
            let path = self.write(&report)?;
            return Err(Error::ReferenceFailed { message: failure.message, location: failure.location, report: path });
        }
        let mut planner = self.plan(&reference.trace);
        while let Some(candidate) = self.pick(&mut planner) {
            let ahead = self.ahead(&planner, &candidate);
            let ran = self.run(&candidate.faults, ahead).await;
            let ran = self.confirm(ran).await;
            planner.observe(&candidate.faults, &ran.trace.calls, ran.dominating());
            self.observe(&candidate.faults, ran);
            let coverage = self.probe.as_deref().and_then(|probe| probe.progress());
            self.progress.show(planner.pending(), &self.executions, coverage);
        }
        self.minimise(&mut planner).await;
        self.progress.finish();
        let pruned = self.pruned(&planner);
        self.finish(pruned)
    }

    /// Re-runs the one fault set of execution `id` and returns a report holding just that execution.
    pub async fn replay(mut self, id: &str, faults: &FaultSet) -> Report {
        settle().await;
        let mut ran = run_once(self.config, faults, self.test, None).await;
        // The report keeps the faults that were injected; a planned fault whose call never happened is not
        // among them, so the id is the one asked for, not one recomputed from those faults.
        ran.report.id = id.to_string();
        ran.report.replay = self.config.replay_template().replace("{id}", id);
        self.graph.add(&ran.trace.calls, ran.failed());
        self.executions.push(ran.report);
        self.stopped = self.config.cancel.is_aborted().then(|| self.config.cancel.describe());
        let mut config = self.config.clone();
        config.name = format!("{} (replay of {id})", self.config.name);
        // The replay command of the exploration replayed, not one made from the replay's own name.
        config.replay_command = self.config.replay_template();
        self.assemble(&config, Vec::new())
    }

    /// Step 1: the test without faults, twice (at once when running concurrently); the second run is
    /// skipped when the first fails. Returns the first run's trace and the first failure.
    async fn reference_runs(&mut self) -> Reference {
        let none = FaultSet::new();
        let mut references = Vec::new();
        if self.jobs > 1 {
            references = join_all(vec![
                run_once(self.config, &none, self.test, None),
                run_once(self.config, &none, self.test, None),
            ])
            .await;
            references.truncate(if references[0].failed() { 1 } else { 2 });
        } else {
            for _ in 0..2 {
                references.push(self.measured(&none).await);
                if references[0].failed() {
                    break;
                }
            }
        }
        let keys = |trace: &Trace| -> HashSet<CallKey> { trace.calls.iter().map(|c| c.key).collect() };
        if let [first, second] = references.as_slice().iter().filter(|ran| !ran.failed()).collect::<Vec<_>>()[..] {
            // Both complete (neither failed nor was abandoned): only then do their calls compare.
            self.nondeterministic = keys(&first.trace).symmetric_difference(&keys(&second.trace)).copied().collect();
        }
        // A test that fails in either fault-free run (a flaky one) gives nothing to compare faulty runs with.
        let failure = references.iter().find_map(|ran| ran.report.failure.clone());
        let trace = references[0].trace.clone();
        self.reference = Some(ReferenceRun { answers: Arc::new(trace.answers.clone()), calls: trace.calls.len() });
        for mut ran in references {
            ran.report.reference = true;
            self.absorb(ran);
        }
        Reference { trace, failure }
    }

    /// Step 2: the planner, seeded with the calls of the first reference run.
    fn plan(&self, reference: &Trace) -> Planner {
        let config = PlanConfig {
            max_faults: self.config.max_faults,
            order: self.config.order,
            reduce: self.config.reduce,
            partition: self.config.partition,
        };
        let mut planner = Planner::new(config, self.config.catalog.clone(), self.nondeterministic.clone());
        planner.observe(&FaultSet::new(), &reference.calls, false);
        planner
    }

    /// Step 3: the next candidate, unless the plan or the budget is exhausted.
    fn pick(&mut self, planner: &mut Planner) -> Option<Candidate> {
        if self.stopped.is_some() {
            return None;
        }
        if let Some(why) = self.budget_exhausted() {
            if planner.pending() > 0 {
                self.stopped = Some(why);
            }
            return None;
        }
        let calls = &self.calls;
        let candidate = match self.probe.as_deref() {
            Some(probe) => planner.next(|candidate| probe.score(candidate, calls)),
            None => planner.next(|_| 0.0),
        }?;
        if let Some(probe) = self.probe.as_deref_mut() {
            probe.chosen(&candidate, calls);
        }
        Some(candidate)
    }

    /// The fault sets the planner would pick after `candidate`, to run alongside it when there is room.
    fn ahead(&self, planner: &Planner, candidate: &Candidate) -> Vec<FaultSet> {
        let batch = self.room();
        if batch <= 1 || self.speculated.contains_key(&execution_id(&candidate.faults)) {
            return Vec::new();
        }
        let wanted = batch - 1 + self.speculated.len();
        match self.probe.as_deref() {
            Some(probe) => planner.upcoming(wanted, |candidate| probe.score(candidate, &self.calls)),
            None => planner.upcoming(wanted, |_| 0.0),
        }
    }

    /// Step 4: the execution of `faults`, taken from an earlier speculative run, or run now with up to
    /// `room() - 1` of `ahead` alongside (kept in `speculated`). Only lone executions are measured.
    async fn run(&mut self, faults: &FaultSet, ahead: Vec<FaultSet>) -> Ran {
        let id = execution_id(faults);
        if let Some(ran) = self.speculated.remove(&id) {
            return ran;
        }
        let batch = self.room();
        let mut sets = vec![faults.clone()];
        for set in ahead {
            if sets.len() >= batch {
                break;
            }
            let set_id = execution_id(&set);
            if set_id != id && !self.speculated.contains_key(&set_id) && !sets.contains(&set) {
                sets.push(set);
            }
        }
        if sets.len() == 1 {
            return self.measured(faults).await;
        }
        let (config, test, reference) = (self.config, self.test, self.reference.as_ref());
        let mut results = join_all(sets.iter().map(|set| run_once(config, set, test, reference))).await.into_iter();
        let ran = results.next().expect("one result per fault set");
        for other in results {
            self.speculated.insert(other.report.id.clone(), other);
        }
        ran
    }

    /// One execution alone, measured by the probe when there is one.
    async fn measured(&mut self, faults: &FaultSet) -> Ran {
        if let Some(probe) = self.probe.as_deref_mut() {
            probe.before();
        }
        let mut ran = run_once(self.config, faults, self.test, self.reference.as_ref()).await;
        if let Some(probe) = self.probe.as_deref_mut() {
            ran.report.new_lines = probe.after(&ran.report.id);
        }
        ran
    }

    /// Step 5a: a failure with no fault injected says nothing about failure handling. The fault-free test
    /// runs again: when it passes, the test is flaky; when it fails too, the system or the harness broke and
    /// the exploration stops. Either way the execution is a harness `error`, never a finding.
    async fn confirm(&mut self, mut ran: Ran) -> Ran {
        if !ran.failed() || !ran.report.faults.is_empty() || self.config.cancel.is_stopped() {
            return ran;
        }
        let Some(failure) = ran.report.failure.as_mut() else { return ran };
        if failure.class == FailureClass::Error {
            return ran;
        }
        let again = run_once(self.config, &FaultSet::new(), self.test, None).await;
        let what = one_line(&failure.message);
        failure.class = FailureClass::Error;
        failure.message = match again.report.failure {
            None => format!("flaky test: it failed with no fault injected ({what}), and passed when run again"),
            Some(now) => {
                let why = format!(
                    "the fault-free test fails now too ({}): the system or the harness broke",
                    one_line(&now.message)
                );
                self.stopped.get_or_insert(why.clone());
                format!("{why}; this execution failed with no fault injected ({what})")
            }
        };
        ran
    }

    /// Step 5b: takes a finished execution in (its calls, the graph, the failing sets, the report).
    fn observe(&mut self, faults: &FaultSet, ran: Ran) {
        if ran.finding() {
            self.failed_sets.push((faults.clone(), ran.report.id.clone()));
        }
        self.absorb(ran);
    }

    fn absorb(&mut self, ran: Ran) {
        for call in &ran.trace.calls {
            self.calls.entry(call.key).or_insert_with(|| fault_report(call, call.fault.unwrap_or(Fault::Connect)));
        }
        self.graph.add(&ran.trace.calls, ran.failed());
        self.executions.push(ran.report);
    }

    /// Step 6: a failing set with a failing proper subset is not minimal; runs the subsets not run yet and
    /// marks each failing set with its first failing subset.
    async fn minimise(&mut self, planner: &mut Planner) {
        let mut index = 0;
        while index < self.failed_sets.len() && self.stopped.is_none() {
            let (faults, id) = self.failed_sets[index].clone();
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
            for position in 0..subsets.len() {
                let Some(outcome) = self.subset_outcome(planner, &subsets, position).await else { return };
                if outcome == Outcome::Fail {
                    if let Some(execution) = self.executions.iter_mut().find(|e| e.id == id) {
                        execution.minimal_subset = Some(execution_id(&subsets[position]));
                    }
                    break;
                }
            }
        }
    }

    /// The outcome of `subsets[position]`: known, or run now (`None` when the budget ran out first).
    async fn subset_outcome(
        &mut self,
        planner: &mut Planner,
        subsets: &[FaultSet],
        position: usize,
    ) -> Option<Outcome> {
        let subset = &subsets[position];
        let subset_id = execution_id(subset);
        if let Some(known) = self.executions.iter().find(|e| e.id == subset_id) {
            return Some(known.outcome);
        }
        if let Some(why) = self.budget_exhausted() {
            self.stopped = Some(why);
            return None;
        }
        // The subsets after this one are what runs next if it passes.
        let ahead = subsets[position + 1..]
            .iter()
            .filter(|other| !self.executions.iter().any(|e| e.id == execution_id(other)))
            .cloned()
            .collect();
        let ran = self.run(subset, ahead).await;
        let ran = self.confirm(ran).await;
        let outcome = if ran.finding() { Outcome::Fail } else { Outcome::Pass };
        planner.mark_seen(subset);
        self.observe(subset, ran);
        Some(outcome)
    }

    /// The pruned candidates, as the report names them.
    fn pruned(&self, planner: &Planner) -> Vec<PrunedReport> {
        let describe = |key: &CallKey, fault: &Fault| match self.calls.get(key) {
            Some(call) => FaultReport { fault: *fault, ..call.clone() }.describe_call(),
            None => format!("{key} {fault}"),
        };
        planner
            .pruned()
            .iter()
            .map(|(faults, reason)| PrunedReport {
                id: execution_id(faults),
                faults: faults.iter().map(|(key, fault)| describe(key, fault)).collect(),
                reason: reason.clone(),
            })
            .collect()
    }

    /// Step 7: the report, written.
    fn finish(mut self, pruned: Vec<PrunedReport>) -> Result<Report, Error> {
        if self.stopped.is_none() && self.config.cancel.is_stopped() {
            self.stopped = Some(self.config.cancel.describe());
        }
        let report = self.report(pruned);
        self.write(&report)?;
        Ok(report)
    }

    fn report(&mut self, pruned: Vec<PrunedReport>) -> Report {
        let mut report = self.assemble(self.config, pruned);
        report.config.jobs = self.jobs;
        report.config.note = (self.jobs < self.config.jobs).then(|| {
            format!(
                "ran one execution at a time instead of {}: per-execution coverage measures executions one by one",
                self.config.jobs
            )
        });
        report
    }

    fn assemble(&mut self, config: &Config, pruned: Vec<PrunedReport>) -> Report {
        let executions = std::mem::take(&mut self.executions);
        let vulnerabilities = group_vulnerabilities(&executions, &config.replay_template());
        let mut nondeterministic: Vec<CallKey> = self.nondeterministic.iter().copied().collect();
        nondeterministic.sort();
        let summary = Summary {
            pruned: pruned.len(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            complete: self.stopped.is_none() && !executions.iter().any(is_harness_error),
            stopped: self.stopped.clone(),
            nondeterministic,
            ..Summary::of(&executions, vulnerabilities.len())
        };
        let mut report = Report {
            schema: SCHEMA.to_string(),
            name: config.name.clone(),
            labels: config.labels.clone(),
            config: report_config(config),
            summary,
            executions,
            vulnerabilities,
            pruned,
            call_graph: self.graph.data(),
            coverage: None,
        };
        if let Some(probe) = self.probe.as_deref_mut() {
            probe.finish(&mut report);
        }
        report
    }

    /// Writes the report where asked; when that fails, into a directory of its own under the system's
    /// temporary directory, and says so in the error, which carries the report.
    fn write(&self, report: &Report) -> Result<Option<PathBuf>, Error> {
        let Some(dir) = &self.config.report_dir else { return Ok(None) };
        let root = self.config.workspace.clone().unwrap_or_else(crate::files::workspace_root);
        let error = match report.write(dir, &root) {
            Ok(path) => return Ok(Some(path)),
            Err(error) => error,
        };
        let fallback = std::env::temp_dir().join(format!("cloture-report-{}", std::process::id()));
        let fallback = report.write(&fallback, &root).ok().and_then(|path| path.parent().map(PathBuf::from));
        Err(Error::ReportNotWritten { why: error.to_string(), fallback, summary: report.terminal_summary() })
    }

    /// How many executions may run at once now: `jobs`, within what is left of the execution budget.
    fn room(&self) -> usize {
        let left = self.config.max_executions.map_or(usize::MAX, |most| most.saturating_sub(self.executions.len()));
        self.jobs.min(left).max(1)
    }

    fn budget_exhausted(&self) -> Option<String> {
        let config = self.config;
        if config.cancel.is_stopped() {
            return Some(config.cancel.describe());
        }
        if let Some(most) = config.max_executions.filter(|&most| self.executions.len() >= most) {
            return Some(format!("execution budget of {most} used up"));
        }
        if let Some(most) = config.max_time.filter(|&most| self.started.elapsed() >= most) {
            return Some(format!("time budget of {most:?} used up"));
        }
        None
    }
}

fn is_harness_error(execution: &ExecutionReport) -> bool {
    execution.failure.as_ref().is_some_and(|failure| failure.class == FailureClass::Error)
}

/// The first line of `text`, at most 200 characters.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    crate::text::bounded(line, 200)
}

/// What the reference runs tell: the calls of the first, and the first failure.
struct Reference {
    trace: Trace,
    failure: Option<crate::report::Failure>,
}

fn report_config(config: &Config) -> ReportConfig {
    ReportConfig {
        max_faults: config.max_faults,
        order: config.order,
        reduce: config.reduce,
        max_executions: config.max_executions,
        max_time_ms: config.max_time.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        deadline_ms: u64::try_from(config.deadline.as_millis()).unwrap_or(u64::MAX),
        replay_command: config.replay_template(),
        jobs: config.jobs.max(1),
        partition: config.partition.map(Shares::from),
        note: None,
    }
}
