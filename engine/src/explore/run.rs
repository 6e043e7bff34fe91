//! One execution: the test run inside its own [`Execution`] under the deadline, raced against an abort,
//! then classified. Several run at once on the current task with `futures_util`'s `join_all` (the test's
//! futures need not be `Send`, so they cannot be spawned).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Config, Verdict};
use crate::call::CallSite;
use crate::context::Execution;
use crate::fault::Fault;
use crate::panic::{CatchPanic, Panic};
use crate::plan::{execution_id, FaultSet};
use crate::report::{ExecutionReport, Failure, FailureClass, FaultReport, Outcome, Said, Warning, WarningKind};
use crate::trace::{Answer, CallOutcome, CallRecord, TimeLimit, Trace, TEST_SERVICE};

/// One finished execution, before it goes into the report.
pub(super) struct Ran {
    pub report: ExecutionReport,
    pub trace: Trace,
}

impl Ran {
    pub fn failed(&self) -> bool {
        self.report.outcome == Outcome::Fail
    }

    /// Failed in a way no superset of its faults can tell more about (a crash, a hang, a timeout): what
    /// domination prunes supersets by. A `rejected` answer does not: more faults may reach calls (retry
    /// attempts) or code this execution did not.
    pub fn dominating(&self) -> bool {
        self.report.failure.as_ref().is_some_and(|failure| {
            matches!(failure.class, FailureClass::Crash | FailureClass::Hang | FailureClass::Timeout)
        })
    }

    /// Failed in the services, not in the harness: what minimisation works on.
    pub fn finding(&self) -> bool {
        self.report.failure.as_ref().is_some_and(|failure| failure.class != FailureClass::Error)
    }
}

/// What the first fault-free run did: what later executions are compared with.
pub(super) struct ReferenceRun {
    /// The answers the test's own calls got.
    pub answers: Arc<Vec<Answer>>,
    /// How many calls it made.
    pub calls: usize,
}

/// An execution making at least this many times the calls of the reference run is reported.
const AMPLIFICATION: usize = 3;

/// Runs one execution of `test` with `faults` and classifies it; with the reference run known, the test can
/// compare its answers with it and the execution is checked for warnings.
pub(super) async fn run_once<T, F>(
    config: &Config,
    faults: &FaultSet,
    test: &T,
    reference: Option<&ReferenceRun>,
) -> Ran
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    let id = execution_id(faults);
    let execution = Execution::start(faults.iter().map(|(k, f)| (*k, *f)).collect());
    if let Some(reference) = reference {
        execution.set_reference(Arc::clone(&reference.answers));
    }
    let troubles = config.harness.as_ref().map(crate::net::HarnessHealth::troubles);
    let started = Instant::now();
    let future = execution.root_context().scope(CatchPanic::new(test()));
    let result = tokio::select! {
        result = tokio::time::timeout(config.deadline, future) => Some(result),
        () = config.cancel.aborted() => None,
    };
    // Let the services' handlers of this execution finish before looking at the trace.
    let quiet = result.is_some() && tokio::time::timeout(Duration::from_secs(1), execution.quiesce()).await.is_ok();
    execution.release_virtual_time();
    let duration = started.elapsed();
    let trace = execution.trace();
    let harness_trouble =
        config.harness.as_ref().zip(troubles).map_or(0, |(health, before)| health.troubles() - before);
    let failure = match result {
        Some(result) if harness_trouble > 0 => classify(config, result, quiet, &trace).map(|failure| {
            let message = format!(
                "the harness could not accept connections ({harness_trouble} times: out of file descriptors?): {}",
                failure.message
            );
            Failure::new(FailureClass::Error, message, None, None)
        }),
        Some(result) => classify(config, result, quiet, &trace),
        None => Some(Failure::new(
            FailureClass::Error,
            "abandoned: interrupted twice before it finished".to_string(),
            None,
            None,
        )),
    };
    let failure = failure.map(|failure| Failure {
        said: Said { logs: execution.read_logs(), answers: error_answers(&trace) },
        ..failure
    });
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
        warnings: Vec::new(),
    };
    let mut ran = Ran { report, trace };
    if let Some(reference) = reference {
        ran.report.warnings = warnings(&ran, reference);
    }
    ran
}

/// What an execution did that its test's verdict does not show: calls multiplied by retries, and a 200 the
/// test accepted under faults whose body is not the fault-free one (a fallback hiding a failure).
fn warnings(ran: &Ran, reference: &ReferenceRun) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if ran.trace.truncated {
        let message = "truncated: the coordinator refused part of what services reported (its per-execution bounds, \
                       see docs/coordinator.md): this execution's record is incomplete"
            .to_string();
        warnings.push(Warning { kind: WarningKind::Truncated, message });
    }
    let calls = ran.trace.calls.len();
    if reference.calls > 0 && calls >= AMPLIFICATION * reference.calls {
        let message = format!(
            "retry amplification: {calls} calls, {:.1}x the {} of the fault-free run",
            calls as f64 / reference.calls as f64,
            reference.calls
        );
        warnings.push(Warning { kind: WarningKind::RetryAmplification, message });
    }
    if ran.report.outcome == Outcome::Pass && !ran.report.faults.is_empty() {
        for answer in ran.trace.answers.iter().filter(|answer| answer.status == 200) {
            let Some(expected) = reference.answers.iter().find(|known| known.key == answer.key) else { continue };
            let call = ran.trace.calls.iter().find(|call| call.key == answer.key);
            // A gRPC error travels as an HTTP 200: the call's outcome says whether it succeeded.
            let succeeded = call.is_none_or(|call| call.outcome == CallOutcome::Status(200));
            if expected.status == 200 && expected.body != answer.body && succeeded {
                let what = call.map(|call| format!("{} {}", call.method, call.path)).unwrap_or_default();
                let message = format!(
                    "masked failure: the test accepted a 200 to {what} whose body differs from the fault-free answer"
                );
                warnings.push(Warning { kind: WarningKind::MaskedFailure, message });
            }
        }
    }
    warnings
}

type TestResult<V> = Result<Result<V, Panic>, tokio::time::error::Elapsed>;

fn classify<V: Verdict>(config: &Config, result: TestResult<V>, quiet: bool, trace: &Trace) -> Option<Failure> {
    let failure = |class, message, location, service| Some(Failure::new(class, message, location, service));
    if let Some(crash) = trace.crashes.first() {
        let message = format!("{} crashed: {}", crash.service, crash.message);
        return failure(FailureClass::Crash, message, crash.location.clone(), Some(crash.service.clone()));
    }
    let hanging = hanging_call(trace);
    let (message, location) = match (result, hanging) {
        (Err(_), Some(call)) => {
            let message = match call.limit {
                TimeLimit::None => waits_forever(call),
                // A limit longer than the deadline: no missing limit, but limits that collide.
                TimeLimit::Within(limit) => {
                    let message = format!(
                        "the execution did not finish within {:?}: {}'s time limit on the call to {} ({limit:?}) is \
                         not shorter than the deadline, so a slow {} outlasts the test",
                        config.deadline, call.from, call.to, call.to
                    );
                    return failure(FailureClass::Timeout, message, None, None);
                }
                TimeLimit::Unknown => format!(
                    "{} did not answer within the deadline when {} was slow (call at {})",
                    call.from, call.to, call.site
                ),
            };
            return failure(FailureClass::Hang, message, Some(call.site.clone()), Some(call.from.clone()));
        }
        (Err(_), None) => {
            let busy = if quiet { "" } else { " (a service is still handling a request)" };
            let message = format!("the execution did not finish within {:?}{busy}", config.deadline);
            return failure(FailureClass::Timeout, message, None, None);
        }
        (Ok(Err(panic)), _) => (panic.message, panic.location),
        (Ok(Ok(verdict)), _) => match verdict.verdict() {
            Ok(()) => return None,
            Err(message) => (message, None),
        },
    };
    let answered_by_test = |call: &&CallRecord| call.from == TEST_SERVICE;
    // A 500 (or a gRPC UNKNOWN or INTERNAL, what a gRPC server answers for an exception its handler let
    // escape) that no fault injected: some service failed without saying where.
    let unexplained = |call: &&CallRecord| {
        call.fault.is_none() && matches!(call.outcome, CallOutcome::Status(500) | CallOutcome::Grpc(2 | 13))
    };
    if let Some(call) = trace.calls.iter().filter(answered_by_test).find(unexplained) {
        let answered = match call.outcome {
            CallOutcome::Grpc(code) => crate::fault::Fault::Grpc(code).to_string(),
            _ => "500".to_string(),
        };
        let message = format!(
            "{} answered {answered}{}{}: {message}",
            call.to,
            answer_body(trace, call.key),
            gave_up_on_slow(trace)
        );
        return failure(FailureClass::Crash, message, None, Some(call.to.clone()));
    }
    // The test gave up while a slow call was still held: a hang it cut short, or time limits that collide.
    if let Some(call) = hanging {
        return Some(gave_up(call, message, location));
    }
    // The test gave up on its call while a service still waited, within its own limit, on a slow one.
    if let Some((hint, service)) = collided_limits(trace) {
        return failure(FailureClass::Rejected, format!("{message} — {hint}"), location, Some(service));
    }
    // The test could not reach the system at all: the harness failed, not the services.
    // Its own time limit ending a slow answer is not the harness failing: only a refused or broken request is.
    let unreachable = |call: &&CallRecord| {
        matches!(
            call.outcome,
            CallOutcome::Transport(crate::trace::Transport::Connect | crate::trace::Transport::Request)
        )
    };
    if let Some(call) = trace.calls.iter().filter(answered_by_test).find(unreachable) {
        let message = format!("the test's request to {} failed: {message}", call.to);
        return failure(FailureClass::Error, message, location, None);
    }
    failure(FailureClass::Rejected, message, location, None)
}

/// ` (body: …)`: what the test's call `key` was answered, when its body was seen (by the entry proxy of
/// an external system), made printable and bounded.
fn answer_body(trace: &Trace, key: crate::call::CallKey) -> String {
    let Some(answer) = trace.answers.iter().find(|answer| answer.key == key) else { return String::new() };
    let text = body_text(&answer.body);
    if text.is_empty() {
        return String::new();
    }
    format!(" (body: {text})")
}

/// The error answers (5xx) seen during the execution (passed on by proxies, or got by the test's own
/// calls), each with the start of its body: why a service failed as its caller saw it.
fn error_answers(trace: &Trace) -> Vec<crate::report::ErrorAnswer> {
    let error = |answer: &&Answer| answer.status >= 500;
    let answers = trace.answers.iter().filter(error).filter_map(|answer| {
        let call = trace.calls.iter().find(|call| call.key == answer.key && call.fault.is_none())?;
        Some(crate::report::ErrorAnswer {
            from: call.from.clone(),
            to: call.to.clone(),
            method: call.method.clone(),
            path: call.path.clone(),
            status: answer.status,
            body: body_text(&answer.body),
        })
    });
    answers.take(ERROR_ANSWERS).collect()
}

/// The most error answers kept per execution.
const ERROR_ANSWERS: usize = 8;

/// The start of a body on one line, made printable and bounded.
fn body_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::text::bounded(&crate::text::printable(&text), 200)
}

/// The test failed (its own time limit, most likely) while `call`, held by a `slow` fault, still waited.
fn gave_up(call: &CallRecord, message: String, location: Option<CallSite>) -> Failure {
    match call.limit {
        TimeLimit::Within(limit) => Failure::new(
            FailureClass::Rejected,
            format!(
                "{message} — the test gave up before {}'s time limit on the call to {} ({limit:?}) ended: {}",
                call.from,
                call.to,
                crate::report::LONGER_TEST_LIMIT
            ),
            location,
            None,
        ),
        TimeLimit::None => Failure::new(
            FailureClass::Hang,
            format!("{} (the test gave up: {message})", waits_forever(call)),
            Some(call.site.clone()),
            Some(call.from.clone()),
        ),
        // Seen on the wire: the caller did not give up before the test did, whatever its limit is.
        TimeLimit::Unknown => Failure::new(
            FailureClass::Hang,
            format!(
                "{} did not answer before the test gave up while {} was slow (call {}): {} has no time limit on \
                 that call, or one not shorter than the test's (the test gave up: {message})",
                call.from, call.to, call.site, call.from
            ),
            Some(call.site.clone()),
            Some(call.from.clone()),
        ),
    }
}

/// When the test's own call timed out after `t` (its time limit, as seen by a proxy or cloture's client)
/// while a service gave up on calls held by `slow`, each after its own limit: either one limit is about the
/// test's (they collide), or the service's waits add up to it (it has no overall limit). With the numbers.
fn collided_limits(trace: &Trace) -> Option<(String, String)> {
    let gave_up = |call: &&CallRecord| call.outcome == CallOutcome::Transport(crate::trace::Transport::Timeout);
    let test = trace.calls.iter().filter(|call| call.from == TEST_SERVICE).find(gave_up)?;
    let TimeLimit::Within(test_limit) = test.limit else { return None };
    let held: Vec<(&CallRecord, Duration)> = slow_waits_given_up(trace).collect();
    // A service's limit this close to the test's ends at the same time, give or take scheduling.
    let about = |limit: Duration| limit + COLLISION_SLACK >= test_limit;
    if let Some((call, limit)) = held.iter().find(|(_, limit)| about(*limit)) {
        let hint = format!(
            "the test gave up on its call to {} after {test_limit:?} while {} waited on slow {} for {limit:?} (its own \
             time limit): {}",
            test.to,
            call.from,
            call.to,
            crate::report::LONGER_TEST_LIMIT
        );
        return Some((hint, call.from.clone()));
    }
    let service = &held.first()?.0.from;
    let waits: Vec<&(&CallRecord, Duration)> = held.iter().filter(|(call, _)| call.from == *service).collect();
    let total: Duration = waits.iter().map(|(_, limit)| *limit).sum();
    if waits.len() < 2 || !about(total) {
        return None;
    }
    let each: Vec<String> = waits.iter().map(|(call, limit)| format!("slow {} for {limit:?}", call.to)).collect();
    let hint = format!(
        "the test gave up on its call to {} after {test_limit:?} while {service} waited on {}, {total:?} in all: each \
         wait is within its own limit, but together they are not: {}",
        test.to,
        each.join(" then "),
        crate::report::OVERALL_LIMIT
    );
    Some((hint, service.clone()))
}

/// The calls held by `slow` whose callers gave up on them, each with the time limit that ended the wait.
fn slow_waits_given_up(trace: &Trace) -> impl Iterator<Item = (&CallRecord, Duration)> {
    let given_up = CallOutcome::Transport(crate::trace::Transport::Timeout);
    trace.calls.iter().filter(move |call| call.fault == Some(Fault::Slow) && call.outcome == given_up).filter_map(
        |call| match call.limit {
            TimeLimit::Within(limit) => Some((call, limit)),
            _ => None,
        },
    )
}

/// ` after front gave up on slow back at 500ms (its time limit)`: the time limits that ended the waits on
/// `slow` calls, as the proxies saw their callers give up (none: empty).
fn gave_up_on_slow(trace: &Trace) -> String {
    let said: Vec<String> = slow_waits_given_up(trace)
        .map(|(call, limit)| format!("{} gave up on slow {} at {limit:?}", call.from, call.to))
        .collect();
    if said.is_empty() {
        return String::new();
    }
    format!(" after {} (its time limit)", said.join(" and "))
}

/// How much shorter than the test's a service's time limit may be and still end at about the same moment.
const COLLISION_SLACK: Duration = Duration::from_millis(100);

/// `users waits forever when bookings is slow: no time limit on the call at …`.
fn waits_forever(call: &CallRecord) -> String {
    format!("{} waits forever when {} is slow: no time limit on the call at {}", call.from, call.to, call.site)
}

/// A call held by a `slow` fault that was still waiting when the deadline came: no time limit (of its own
/// or around it) ended the wait, so the execution hung.
fn hanging_call(trace: &Trace) -> Option<&CallRecord> {
    trace.calls.iter().find(|call| call.fault == Some(Fault::Slow) && call.outcome == CallOutcome::Pending)
}

/// `fault` at `call`, as the report names it.
pub(super) fn fault_report(call: &CallRecord, fault: Fault) -> FaultReport {
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

/// Services spawned just before exploring register their names when their server task first runs; let
/// them run, so that the first calls already name their targets (call keys depend on the names).
pub(super) async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::CallKey;

    /// The test's call to `front` (by the entry proxy), with this outcome.
    fn test_call(outcome: CallOutcome) -> CallRecord {
        CallRecord {
            key: CallKey(1),
            parent: CallKey::ROOT,
            from: TEST_SERVICE.into(),
            to: "front".into(),
            method: "GRPC".into(),
            path: "/shop.Prices/Quote".into(),
            site: CallSite::named(TEST_SERVICE, "front", "GRPC", "/shop.Prices/Quote"),
            fault: None,
            outcome,
            limit: TimeLimit::Unknown,
        }
    }

    fn failed_with(trace: &Trace) -> Option<Failure> {
        classify(&Config::default(), Ok(Ok(Err::<(), String>("the test failed".into()))), true, trace)
    }

    #[test]
    fn an_unexplained_grpc_unknown_or_internal_to_the_test_is_a_crash_of_the_service_that_answered_it() {
        for (code, name) in [(2, "grpc:UNKNOWN"), (13, "grpc:INTERNAL")] {
            let trace = Trace { calls: vec![test_call(CallOutcome::Grpc(code))], ..Trace::default() };
            let failure = failed_with(&trace).expect("a failure");
            assert_eq!(failure.class, FailureClass::Crash);
            assert_eq!(failure.service.as_deref(), Some("front"));
            assert!(failure.message.starts_with(&format!("front answered {name}: ")), "{}", failure.message);
        }
        // UNAVAILABLE is how a service says a dependency failed: a degraded answer, not a crash.
        let trace = Trace { calls: vec![test_call(CallOutcome::Grpc(14))], ..Trace::default() };
        assert_eq!(failed_with(&trace).expect("a failure").class, FailureClass::Rejected);
    }

    #[test]
    fn only_a_refused_or_broken_request_of_the_test_is_the_harness_failing_not_its_own_time_limit() {
        let failing = |transport| {
            let trace = Trace { calls: vec![test_call(CallOutcome::Transport(transport))], ..Trace::default() };
            failed_with(&trace).expect("a failure").class
        };
        assert_eq!(failing(crate::trace::Transport::Connect), FailureClass::Error);
        assert_eq!(failing(crate::trace::Transport::Request), FailureClass::Error);
        assert_eq!(failing(crate::trace::Transport::Timeout), FailureClass::Rejected, "the system was reached");
    }

    #[test]
    fn a_grpc_error_carried_by_an_http_200_is_no_masked_failure() {
        let answer =
            |body: &'static [u8]| Answer { key: CallKey(1), status: 200, body: bytes::Bytes::from_static(body) };
        let reference = ReferenceRun { answers: Arc::new(vec![answer(b"\0\0\0\0\x02\x08\x07")]), calls: 1 };
        let ran = |outcome: CallOutcome| {
            let trace = Trace { calls: vec![test_call(outcome)], answers: vec![answer(b"")], ..Trace::default() };
            let mut report = crate::report::ExecutionReport {
                id: "x".into(),
                reference: false,
                faults: Vec::new(),
                outcome: Outcome::Pass,
                failure: None,
                duration_ms: 1.0,
                calls: 1,
                new_lines: BTreeMap::new(),
                minimal_subset: None,
                replay: String::new(),
                warnings: Vec::new(),
            };
            report.faults.push(fault_report(&trace.calls[0], Fault::Connect));
            Ran { report, trace }
        };
        assert!(warnings(&ran(CallOutcome::Grpc(14)), &reference).is_empty(), "UNAVAILABLE is not a success");
        let masked = warnings(&ran(CallOutcome::Status(200)), &reference);
        assert_eq!(masked.iter().map(|w| w.kind).collect::<Vec<_>>(), [WarningKind::MaskedFailure]);
    }
}
