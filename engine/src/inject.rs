//! Outbound calls inside an execution: the one place a call is registered, its fault decided and its result
//! recorded. [`crate::Client`] and every integration with a third-party client (tower layer, reqwest
//! middleware) go through [`Outbound`], so they inject the same faults the same way and record the same
//! [`CallRecord`](crate::trace::CallRecord)s; each only turns the decision into its own stack's answers.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use crate::call::{CallIdentity, CallKey};
use crate::context::{Context, Execution};
use crate::fault::Fault;
use crate::propagate;
use crate::registry;
use crate::trace::{CallOutcome, TimeLimit};

/// Where a call is made and what it asks for: everything but the context that names a call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call<'a> {
    /// The call site's source file (as `Location::caller()` gives it), line and column.
    pub file: &'a str,
    pub line: u32,
    pub column: u32,
    /// `GET`, `POST`…; `GRPC` for a gRPC call.
    pub method: &'a str,
    /// `host:port` of the callee, named through the service registry.
    pub authority: &'a str,
    /// The path (a gRPC call's is `/package.Service/Method`).
    pub path: &'a str,
    /// The caller's own time limit on the call, as far as its stack lets it be read.
    pub limit: TimeLimit,
}

/// What to do with a call cloture observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Injection {
    /// Make the request with the context headers; first wait this long, inside the caller's time limits,
    /// when the callee is to be slow (`slow`, `delay:D`).
    Send { hold: Option<Duration> },
    /// Make no request: answer at once as this fault says (`connect`, `timeout`, `status:NNN`, `grpc:CODE`).
    Answer(Fault),
}

/// One call registered in the current task's execution, until its outcome is recorded.
pub(crate) struct Outbound {
    execution: Arc<Execution>,
    index: usize,
    key: CallKey,
    fault: Option<Fault>,
    target: Arc<str>,
    /// The calling service.
    from: Arc<str>,
    /// Its context's parent: where a partial report of a held call is attached.
    parent: CallKey,
}

impl Outbound {
    /// Registers `call` in the execution of the current task's context and decides its fault; `None`
    /// outside an execution (the call is then an ordinary call).
    pub fn begin(call: &Call<'_>) -> Option<Outbound> {
        let context = Context::current()?;
        Some(Outbound::begin_in(&context, call))
    }

    /// Registers `call` in `context`'s execution and decides its fault.
    pub fn begin_in(context: &Context, call: &Call<'_>) -> Outbound {
        let target = registry::service_name(call.authority);
        let identity = CallIdentity {
            file: call.file,
            line: call.line,
            column: call.column,
            method: call.method,
            target: &target,
            path: call.path,
        };
        let execution = &context.execution;
        let decision = execution.decide(&context.service, context.parent, &identity, call.limit);
        Outbound {
            execution: Arc::clone(execution),
            index: decision.index,
            key: decision.key,
            fault: decision.fault,
            target,
            from: Arc::clone(&context.service),
            parent: context.parent,
        }
    }

    /// What to do with the call. A fault that holds the call pauses the clock of an in-process exploration
    /// (see [`Execution::hold_virtually`]), so the hold costs no real time.
    pub fn injection(&self) -> Injection {
        match self.fault {
            None => Injection::Send { hold: None },
            Some(fault) => match fault.hold() {
                Some(hold) => {
                    if !self.execution.hold_virtually() {
                        self.report_hold();
                    }
                    Injection::Send { hold: Some(hold) }
                }
                None => Injection::Answer(fault),
            },
        }
    }

    /// A service of another process holds this call: it tells the coordinator now, as the answer may never
    /// come (a partial report; the full one follows when the service answers).
    fn report_hold(&self) {
        if let Some(report) = self.execution.partial_report(&self.from, self.parent) {
            let id = self.execution.id;
            tokio::spawn(async move { crate::coordinator::report(id, &report).await });
        }
    }

    /// The callee's service name (its address when no service is registered there).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The call's key: the parent of the calls its callee makes.
    pub fn key(&self) -> CallKey {
        self.key
    }

    /// A call of the functional test itself got this answer: kept, to compare with the reference run's.
    pub fn test_answered(&self, status: u16, body: &bytes::Bytes) {
        if self.from.as_ref() == crate::trace::TEST_SERVICE {
            self.execution.answered(self.key, status, body);
        }
    }

    /// Adds the context headers the callee reads: cloture's own, and its entry in W3C `tracestate`.
    pub fn propagate(&self, headers: &mut HeaderMap) {
        propagate::inject(headers, self.execution.id, self.key, self.execution.plan_header());
    }

    /// Records how the call ended.
    pub fn finish(&self, outcome: CallOutcome) {
        self.execution.complete(self.index, outcome);
    }
}

/// How a call ended that got a response: its gRPC status when the callee answered a gRPC error in the
/// headers ("trailers only", as gRPC servers answer errors), else its HTTP status.
pub(crate) fn answered(status: http::StatusCode, headers: &HeaderMap) -> CallOutcome {
    let grpc = headers.get("grpc-status").and_then(|code| code.to_str().ok()).and_then(|code| code.parse::<u8>().ok());
    match grpc {
        Some(code) if code != 0 => CallOutcome::Grpc(code),
        _ => CallOutcome::Status(status.as_u16()),
    }
}

/// How a call failed that got no response, read from its error's chain of causes: no connection (refused,
/// reset before an answer), no answer in time, or anything else.
#[cfg(any(feature = "tower", feature = "reqwest"))]
pub(crate) fn failed(error: &(dyn std::error::Error + 'static)) -> CallOutcome {
    use crate::trace::Transport;
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionRefused, ConnectionReset, TimedOut};
    let mut cause = Some(error);
    let mut transport = Transport::Request;
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            match io.kind() {
                TimedOut => return CallOutcome::Transport(Transport::Timeout),
                ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe => transport = Transport::Connect,
                _ => {}
            }
        }
        if let Some(client) = error.downcast_ref::<hyper_util::client::legacy::Error>() {
            if client.is_connect() {
                transport = Transport::Connect;
            }
        }
        // Timeouts of tower, tokio and tonic are their own types: their text says what they are.
        let text = error.to_string().to_ascii_lowercase();
        if text.contains("timed out") || text.contains("timeout expired") || text.contains("deadline has elapsed") {
            return CallOutcome::Transport(Transport::Timeout);
        }
        cause = error.source();
    }
    CallOutcome::Transport(transport)
}

/// Waits out a hold decided for a call, then runs the call: the wait happens inside whatever time limit the
/// caller set around the returned future, which ends it if there is one. In an exploration the wait is
/// virtual (see [`Outbound::injection`]).
pub(crate) async fn held<F: std::future::Future>(hold: Option<Duration>, call: F) -> F::Output {
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    call.await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::trace::TEST_SERVICE;

    fn call(limit: TimeLimit) -> Call<'static> {
        Call {
            file: "shop/src/orders.rs",
            line: 12,
            column: 9,
            method: "GET",
            authority: "127.0.0.1:1",
            path: "/stock",
            limit,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_outside_any_execution_is_not_registered() {
        assert!(Outbound::begin(&call(TimeLimit::None)).is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_planned_fault_is_answered_and_recorded_with_the_time_limit() {
        let reference = Execution::start(HashMap::new());
        let service = reference.root_context().with_service("orders");
        let key = Outbound::begin_in(&service, &call(TimeLimit::Unknown)).key();
        let execution = Execution::start(HashMap::from([(key, Fault::Status(503))]));
        let context = execution.root_context().with_service("orders");
        let outbound = Outbound::begin_in(&context, &call(TimeLimit::Unknown));
        assert_eq!(outbound.key(), key, "the same call gets the same key in another execution");
        assert_eq!(outbound.injection(), Injection::Answer(Fault::Status(503)));
        let trace = execution.trace();
        assert_eq!(trace.calls[0].outcome, CallOutcome::Status(503));
        assert_eq!(trace.calls[0].limit, TimeLimit::Unknown);
        assert_eq!(trace.calls[0].site.to_string(), "shop/src/orders.rs:12:9");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_tests_own_calls_are_sent_and_completed() {
        let execution = Execution::start(HashMap::new());
        let context = execution.root_context();
        assert_eq!(&*context.service, TEST_SERVICE);
        let outbound = Outbound::begin_in(&context, &call(TimeLimit::Within(Duration::from_secs(1))));
        assert_eq!(outbound.injection(), Injection::Send { hold: None });
        let mut headers = HeaderMap::new();
        outbound.propagate(&mut headers);
        assert_eq!(propagate::extract(&headers).map(|found| found.parent), Some(outbound.key()));
        outbound.finish(CallOutcome::Status(200));
        assert_eq!(execution.trace().calls[0].outcome, CallOutcome::Status(200));
    }
}
