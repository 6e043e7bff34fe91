//! The execution context: which execution a piece of work belongs to, and that execution's live record.
//!
//! The functional test and every request handler run inside a task-local [`Context`] naming the execution,
//! the service doing the work and the key of the call being handled (the parent of any call it makes).
//! Contexts cross service boundaries in two request headers; in one process the execution id is resolved
//! through a registry of live executions, so services need no handle to the engine. Faults are looked up
//! per execution: concurrent executions (and concurrent tests) never see each other's faults.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::call::{CallIdentity, CallKey, CallSite};
use crate::fault::Fault;
use crate::registry;
use crate::trace::{
    plan_text, Answer, CallOutcome, CallRecord, Crash, RemoteReport, TimeLimit, Trace, Transport, TEST_SERVICE,
};

tokio::task_local! {
    static CONTEXT: Context;
}

/// What the current task is doing on behalf of which execution.
#[derive(Clone)]
pub struct Context {
    pub(crate) execution: Arc<Execution>,
    pub(crate) service: Arc<str>,
    pub(crate) parent: CallKey,
}

impl Context {
    pub(crate) fn current() -> Option<Context> {
        CONTEXT.try_with(Context::clone).ok()
    }

    /// Runs `future` inside this context.
    pub async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        CONTEXT.scope(self, future).await
    }

    /// The same execution and parent, as seen from service `service` (for benchmarks and tests that act
    /// as a service without running a server).
    pub fn with_service(&self, service: &str) -> Context {
        Context { service: Arc::from(service), ..self.clone() }
    }
}

/// The live record of one execution: its fault plan and everything observed.
pub struct Execution {
    pub(crate) id: u64,
    /// The plan as header text, made once.
    plan_text: Option<String>,
    /// In the registry of this process (false for the stand-in of an execution run by another process).
    registered: bool,
    plan: HashMap<CallKey, Fault>,
    trace: Mutex<Trace>,
    in_flight: AtomicUsize,
    idle: Notify,
    /// The thread the explorer runs this execution on (its runtime's, for a current-thread runtime).
    thread: std::thread::ThreadId,
    /// This execution paused tokio's clock to hold a call virtually (see [`Execution::hold_virtually`]).
    paused: std::sync::atomic::AtomicBool,
    /// The answers the fault-free reference run's test calls got.
    reference: OnceLock<Arc<Vec<Answer>>>,
    /// Where what the services in their own processes wrote is read from, once the execution is over.
    log_readers: Mutex<Vec<LogReader>>,
}

/// Reads what services wrote to their logs during an execution (see [`Execution::read_logs_when_over`]).
pub(crate) type LogReader = Box<dyn FnOnce() -> Vec<crate::trace::ServiceLog> + Send>;

thread_local! {
    /// Executions on this thread that hold calls virtually: the clock is paused while there is one.
    static VIRTUAL_HOLDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Bounds on what one execution takes in from other processes, through the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Intake {
    /// Most calls in the execution's trace after a report or a lookup is taken in.
    pub calls: usize,
    /// Most reports taken in.
    pub reports: usize,
}

/// The bound of an [`Intake`] that a report or lookup would have crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Crossed {
    Calls(usize),
    Reports(usize),
}

impl std::fmt::Display for Crossed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Crossed::Calls(bound) => write!(f, "its bound of {bound} calls"),
            Crossed::Reports(bound) => write!(f, "its bound of {bound} reports"),
        }
    }
}

/// The decision for one call, handed to the client.
pub(crate) struct Decision {
    pub key: CallKey,
    pub index: usize,
    pub fault: Option<Fault>,
}

fn executions() -> &'static Mutex<HashMap<u64, Weak<Execution>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, Weak<Execution>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn next_execution_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    // Mixed with the process id so that ids from two processes sharing services do not collide.
    (u64::from(std::process::id()) << 40) | NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Execution {
    /// Creates and registers an execution that injects `plan`. It is unregistered when the last `Arc` drops.
    pub fn start(plan: HashMap<CallKey, Fault>) -> Arc<Execution> {
        let execution = Execution::new(next_execution_id(), plan, true);
        executions().lock().expect("execution registry poisoned").insert(execution.id, Arc::downgrade(&execution));
        execution
    }

    /// A stand-in for execution `id` of another process, for one request handled here: it injects `plan`
    /// and records what this process observes, to be reported to the coordinator.
    pub(crate) fn remote(id: u64, plan: HashMap<CallKey, Fault>) -> Arc<Execution> {
        Execution::new(id, plan, false)
    }

    fn new(id: u64, plan: HashMap<CallKey, Fault>, registered: bool) -> Arc<Execution> {
        Arc::new(Execution {
            id,
            registered,
            plan_text: plan_text(&plan),
            plan,
            trace: Mutex::new(Trace::default()),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            thread: std::thread::current().id(),
            paused: std::sync::atomic::AtomicBool::new(false),
            reference: OnceLock::new(),
            log_readers: Mutex::new(Vec::new()),
        })
    }

    /// The execution's process-unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The fault plan as header text (`key=fault,...`), so that services in other processes can decide
    /// without asking anyone; `None` for an empty plan.
    pub(crate) fn plan_header(&self) -> Option<&str> {
        self.plan_text.as_deref()
    }

    /// Takes in what a service of another process observed while handling one request of this execution,
    /// unless the execution already took its bound of reports or the report's calls would carry it past
    /// its bound of calls: then nothing is taken in and the record is marked truncated.
    pub(crate) fn absorb(&self, report: RemoteReport, intake: Intake) -> Result<(), Crossed> {
        let mut trace = self.lock();
        if trace.reports >= intake.reports {
            return Err(self.truncate(&mut trace, Crossed::Reports(intake.reports)));
        }
        if trace.calls.len().saturating_add(report.calls.len()) > intake.calls {
            return Err(self.truncate(&mut trace, Crossed::Calls(intake.calls)));
        }
        trace.reports += 1;
        for call in trace.calls.iter_mut().rev() {
            if call.key == report.parent {
                call.to = report.service.clone();
                if call.outcome == CallOutcome::Pending && !report.partial {
                    call.outcome = CallOutcome::Status(report.status);
                }
                break;
            }
        }
        // A call a partial report brought is replaced by its next record.
        for call in report.calls {
            let provisional = trace.provisional.remove(&call.key);
            if report.partial {
                trace.provisional.insert(call.key);
            }
            match trace.calls.iter_mut().find(|known| provisional && known.key == call.key) {
                Some(known) => *known = call,
                None => trace.calls.push(call),
            }
        }
        trace.crashes.extend(report.crashes);
        Ok(())
    }

    /// Marks the record incomplete, saying so once.
    fn truncate(&self, trace: &mut Trace, crossed: Crossed) -> Crossed {
        if !trace.truncated {
            trace.truncated = true;
            tracing::warn!(
                execution = self.id,
                "the execution reached {crossed}: further data from other processes is refused"
            );
        }
        crossed
    }

    /// Whether data from other processes was refused because this execution reached its bounds: its
    /// record is incomplete.
    pub fn truncated(&self) -> bool {
        self.lock().truncated
    }

    pub(crate) fn lookup(id: u64) -> Option<Arc<Execution>> {
        executions().lock().expect("execution registry poisoned").get(&id).and_then(Weak::upgrade)
    }

    /// The context the functional test runs in.
    pub fn root_context(self: &Arc<Self>) -> Context {
        Context { execution: Arc::clone(self), service: Arc::from(TEST_SERVICE), parent: CallKey::ROOT }
    }

    /// Registers a call about to be made and decides whether to inject a fault into it.
    pub(crate) fn decide(
        &self,
        from: &str,
        parent: CallKey,
        identity: &CallIdentity<'_>,
        limit: TimeLimit,
    ) -> Decision {
        self.decide_in(&mut self.lock(), from, parent, identity, limit)
    }

    fn decide_in(
        &self,
        trace: &mut Trace,
        from: &str,
        parent: CallKey,
        identity: &CallIdentity<'_>,
        limit: TimeLimit,
    ) -> Decision {
        let count = trace.counts.entry(identity.fingerprint(parent)).or_insert(0);
        let key = CallKey::derive(parent, identity, *count);
        *count += 1;
        // The test's own requests are the system's inputs, not inter-service calls: never faulted.
        let fault = if from == TEST_SERVICE { None } else { self.plan.get(&key).copied() };
        trace.calls.push(CallRecord {
            key,
            parent,
            from: from.to_string(),
            to: identity.target.to_string(),
            method: identity.method.to_string(),
            path: identity.path.to_string(),
            site: identity.site(),
            fault,
            outcome: fault.and_then(Fault::answer).unwrap_or(CallOutcome::Pending),
            limit,
        });
        Decision { key, index: trace.calls.len() - 1, fault }
    }

    /// Call `index` is shown as made at `site` (a call seen only on the wire, named by its route); its key
    /// stays what its identity gave.
    pub(crate) fn name_site(&self, index: usize, site: CallSite) {
        if let Some(call) = self.lock().calls.get_mut(index) {
            call.site = site;
        }
    }

    pub(crate) fn complete(&self, index: usize, outcome: CallOutcome) {
        if let Some(call) = self.lock().calls.get_mut(index) {
            call.outcome = outcome;
        }
    }

    /// The caller of held call `index` gave up on it after `after` (seen by a proxy: the caller closed its
    /// connection): the call timed out, and the caller's time limit on it, unknown until then, is that long.
    pub(crate) fn gave_up(&self, index: usize, after: Duration) {
        if let Some(call) = self.lock().calls.get_mut(index) {
            call.outcome = CallOutcome::Transport(Transport::Timeout);
            if call.limit == TimeLimit::Unknown {
                call.limit = TimeLimit::Within(Duration::from_millis(after.as_millis() as u64));
            }
        }
    }

    /// The callee reports which service received a call.
    pub(crate) fn received(&self, key: CallKey, service: &str) {
        let mut trace = self.lock();
        if let Some(call) = trace.calls.iter_mut().rev().find(|call| call.key == key) {
            if call.to != service {
                // The callee was not registered yet when the call was made (its server task had not run):
                // learn its name so later calls get stable keys.
                if call.to.contains(':') {
                    registry::register_service(service, &call.to);
                }
                call.to = service.to_string();
            }
        }
    }

    pub(crate) fn crashed(&self, service: &str, message: String, location: Option<CallSite>) {
        self.lock().crashes.push(Crash { service: service.to_string(), message, location });
    }

    /// A call of this execution is about to be held (`slow`, `delay:D`). When the call is made on the
    /// explorer's own current-thread runtime (an in-process service), tokio's clock is paused until the
    /// execution ends: whenever every task waits, time jumps to the next timer, so the hold ends at the
    /// caller's time limit (its own, or any timeout around the call) or at the deadline, without waiting for
    /// real. Services of the same runtime answer over loopback at once, so nothing real is skipped. Anywhere
    /// else (another thread or runtime, a service in another process) the hold is real, bounded by the
    /// deadline. Returns whether the hold is virtual.
    pub(crate) fn hold_virtually(&self) -> bool {
        let here = std::thread::current().id() == self.thread
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !self.registered || !here {
            return false;
        }
        if !self.paused.swap(true, Ordering::AcqRel) {
            VIRTUAL_HOLDS.with(|holds| {
                if holds.get() == 0 {
                    tokio::time::pause();
                }
                holds.set(holds.get() + 1);
            });
        }
        true
    }

    /// Ends this execution's virtual holds: the clock runs again once no execution on this thread holds.
    pub(crate) fn release_virtual_time(&self) {
        if std::thread::current().id() != self.thread || !self.paused.swap(false, Ordering::AcqRel) {
            return;
        }
        VIRTUAL_HOLDS.with(|holds| {
            holds.set(holds.get().saturating_sub(1));
            if holds.get() == 0 {
                tokio::time::resume();
            }
        });
    }

    /// For a service of another process: what this execution recorded so far, as a partial report to the
    /// coordinator (sent when the service holds a call, which may never end).
    pub(crate) fn partial_report(&self, service: &str, parent: CallKey) -> Option<RemoteReport> {
        if self.registered {
            return None;
        }
        let trace = self.lock();
        let calls = trace.calls.clone();
        Some(RemoteReport {
            service: service.to_string(),
            parent,
            status: 0,
            partial: true,
            calls,
            crashes: Vec::new(),
        })
    }

    /// The paths of the requests `service` received most recently in this execution (as far as they were
    /// seen), among its last calls: bounded, as every call through a proxy asks.
    pub(crate) fn received_paths(&self, service: &str) -> Vec<String> {
        let trace = self.lock();
        let recent = trace.calls.iter().rev().take(RECENT_CALLS);
        recent.filter(|call| call.to == service).take(RECEIVED_PATHS).map(|call| call.path.clone()).collect()
    }

    /// `read` gives what services in their own processes wrote to their logs during this execution; it is
    /// called by [`Execution::read_logs`], once the execution is over and its handlers are done, so that what
    /// they write after the test ended (a time limit that ended a held call) is in.
    pub(crate) fn read_logs_when_over(&self, read: LogReader) {
        self.log_readers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(read);
    }

    /// What the services wrote to their logs during this execution, read now (once; call it when the
    /// execution is over, and only when what they said is needed: it reads files).
    pub fn read_logs(&self) -> Vec<crate::trace::ServiceLog> {
        let readers = std::mem::take(&mut *self.log_readers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        readers.into_iter().flat_map(|read| read()).collect()
    }

    /// The call `key` got this answer: every answer to the functional test's own calls (at the entry
    /// proxy, or through cloture's client), and error answers (5xx) a proxy passed on to a service.
    pub(crate) fn answered(&self, key: CallKey, status: u16, body: &bytes::Bytes) {
        let body = body.slice(..body.len().min(Answer::KEPT));
        self.lock().answers.push(Answer { key, status, body });
    }

    /// The answers of the fault-free reference run, for the test to compare with.
    pub(crate) fn set_reference(&self, answers: Arc<Vec<Answer>>) {
        let _ = self.reference.set(answers);
    }

    /// The fault-free reference run's answer to the test's call `key`, when known.
    pub(crate) fn reference_answer(&self, key: CallKey) -> Option<Answer> {
        self.reference.get()?.iter().find(|answer| answer.key == key).cloned()
    }

    /// Whether any fault was injected so far in this execution (into calls to `service`, when given).
    pub fn fault_injected(&self, service: Option<&str>) -> bool {
        self.lock().injected().any(|(call, _)| service.is_none_or(|name| call.to == name))
    }

    /// Registers the request of a functional test that cloture did not send (an external test command):
    /// the root call into `service`. Returns its key, the parent of the calls its handler makes; refused
    /// (and the record marked truncated) when the execution already holds `max_calls` calls.
    pub(crate) fn external_root(
        &self,
        service: &str,
        method: &str,
        path: &str,
        max_calls: usize,
    ) -> Result<CallKey, Crossed> {
        let identity = CallIdentity { file: "external test", line: 0, column: 0, method, target: service, path };
        let mut trace = self.lock();
        if trace.calls.len() >= max_calls {
            return Err(self.truncate(&mut trace, Crossed::Calls(max_calls)));
        }
        Ok(self.decide_in(&mut trace, TEST_SERVICE, CallKey::ROOT, &identity, TimeLimit::Unknown).key)
    }

    /// Whether this execution made a call with this key.
    pub(crate) fn has_call(&self, key: CallKey) -> bool {
        self.lock().calls.iter().any(|call| call.key == key)
    }

    /// A copy of everything observed so far.
    pub fn trace(&self) -> Trace {
        self.lock().clone()
    }

    /// Counts a request handler of this execution as running until the returned guard drops: also when the
    /// handler's future is dropped before it finishes (the caller hung up), so [`Execution::quiesce`] never
    /// waits for a handler that is gone.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self)
    }

    /// Waits until no request handler of this execution is running any more.
    pub async fn quiesce(&self) {
        loop {
            let idle = self.idle.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Trace> {
        // A poisoned trace still holds valid data: a panic cannot leave a half-pushed record.
        self.trace.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How far back [`Execution::received_paths`] looks, in calls, and how many paths it gives at most.
const RECENT_CALLS: usize = 4096;
const RECEIVED_PATHS: usize = 64;

/// A running request handler of an execution; see [`Execution::enter`].
pub(crate) struct InFlight<'a>(&'a Execution);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        self.release_virtual_time();
        if !self.registered {
            return;
        }
        if let Ok(mut registry) = executions().lock() {
            registry.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_handler_dropped_before_it_finishes_is_not_waited_for() {
        let execution = Execution::start(HashMap::new());
        let handler = async {
            let _in_flight = execution.enter();
            std::future::pending::<()>().await
        };
        // The handler starts, then is dropped unfinished, as hyper drops it when the caller hangs up.
        assert!(tokio::time::timeout(Duration::from_millis(10), handler).await.is_err());
        assert!(tokio::time::timeout(Duration::from_secs(1), execution.quiesce()).await.is_ok());
    }
}
