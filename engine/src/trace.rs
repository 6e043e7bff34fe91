//! What an execution observed, as data: the calls made (with their typed outcomes), the crashes, and the
//! wire format of both between processes (the report a service sends to the coordinator, the plan header).
//!
//! Pure: no task-locals, no registries. [`crate::context`] records into these types while an execution
//! runs; the planner, the graph and the report read them afterwards.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::call::{CallKey, CallSite};
use crate::fault::Fault;

/// Header carrying the execution id between services.
pub const EXECUTION_HEADER: &str = "x-cloture-execution";
/// Header carrying the key of the call that delivered a request: the parent of the calls its handler makes.
pub const PARENT_HEADER: &str = "x-cloture-parent";
/// Header carrying the execution's fault plan (`key=fault,...`) to services in other processes.
pub const PLAN_HEADER: &str = "x-cloture-plan";
/// The service name under which the functional test's own calls are recorded.
pub const TEST_SERVICE: &str = "test";

/// How a call ended, as the caller saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Still running when the record was taken.
    Pending,
    /// A response with this status arrived (or was injected).
    Status(u16),
    /// The call failed below HTTP: no response arrived.
    #[serde(rename = "error")]
    Transport(Transport),
}

/// How a call failed below HTTP. The planner compares these values, never their text: an injected fault
/// and a real failure of the same kind are the same answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// No connection: refused, or closed before any answer.
    Connect,
    /// No answer within the caller's time limit.
    Timeout,
    /// Any other failure to send the request or read the answer.
    Request,
}

impl From<Fault> for CallOutcome {
    /// The answer the caller sees when `fault` is injected.
    fn from(fault: Fault) -> CallOutcome {
        match fault {
            Fault::Connect => CallOutcome::Transport(Transport::Connect),
            Fault::Timeout => CallOutcome::Transport(Transport::Timeout),
            Fault::Status(code) => CallOutcome::Status(code),
        }
    }
}

/// One outbound call, as recorded by the caller's client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRecord {
    pub key: CallKey,
    pub parent: CallKey,
    pub from: String,
    /// The target service, resolved from the address; replaced by the name the callee reports if it differs.
    pub to: String,
    pub method: String,
    pub path: String,
    pub site: CallSite,
    pub fault: Option<Fault>,
    pub outcome: CallOutcome,
}

/// A service that panicked or answered 500 from an unhandled error while handling a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    pub service: String,
    pub message: String,
    /// The panic or the `?` that let the error escape, when known.
    pub location: Option<CallSite>,
}

/// What one execution observed.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub calls: Vec<CallRecord>,
    pub crashes: Vec<Crash>,
    /// The coordinator refused reports or lookups of this execution once it reached its bounds (calls or
    /// reports taken in from other processes, see docs/coordinator.md): what they carried is missing.
    pub truncated: bool,
    /// Calls made so far per call fingerprint (call identity under a parent), for call keys.
    pub(crate) counts: HashMap<u64, u32>,
    /// Reports taken in from other processes.
    pub(crate) reports: usize,
}

impl Trace {
    /// Faults actually injected, in call order.
    pub fn injected(&self) -> impl Iterator<Item = (&CallRecord, Fault)> {
        self.calls.iter().filter_map(|call| call.fault.map(|fault| (call, fault)))
    }
}

/// What a service in another process observed while handling one request of an execution; it sends this
/// to the coordinator before answering, so the trace is complete when the test gets its answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteReport {
    pub service: String,
    /// The key of the call that delivered the request.
    pub parent: CallKey,
    /// The status the service answered with.
    pub status: u16,
    #[serde(default)]
    pub calls: Vec<CallRecord>,
    #[serde(default)]
    pub crashes: Vec<Crash>,
}

/// The plan as header text (`key=fault,...`, sorted); `None` for an empty plan.
pub(crate) fn plan_text(plan: &HashMap<CallKey, Fault>) -> Option<String> {
    if plan.is_empty() {
        return None;
    }
    let mut entries: Vec<String> = plan.iter().map(|(key, fault)| format!("{key}={fault}")).collect();
    entries.sort();
    Some(entries.join(","))
}

/// Parses a plan header (`key=fault,...`).
pub(crate) fn parse_plan(text: &str) -> Result<HashMap<CallKey, Fault>, String> {
    let mut plan = HashMap::new();
    for entry in text.split(',').filter(|e| !e.is_empty()) {
        let (key, fault) = entry.split_once('=').ok_or_else(|| format!("plan entry `{entry}` is not key=fault"))?;
        let fault: Fault = fault.parse().map_err(|e: crate::Error| e.to_string())?;
        plan.insert(key.parse::<CallKey>()?, fault);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_fault_is_the_same_outcome_as_the_real_failure_of_its_kind() {
        assert_eq!(CallOutcome::from(Fault::Timeout), CallOutcome::Transport(Transport::Timeout));
        assert_eq!(CallOutcome::from(Fault::Connect), CallOutcome::Transport(Transport::Connect));
        assert_eq!(CallOutcome::from(Fault::Status(503)), CallOutcome::Status(503));
    }

    #[test]
    fn transport_outcomes_keep_their_wire_form() {
        let text = serde_json::to_string(&CallOutcome::Transport(Transport::Timeout)).expect("serialises");
        assert_eq!(text, r#"{"error":"timeout"}"#);
        let back: CallOutcome = serde_json::from_str(r#"{"error":"connect"}"#).expect("parses");
        assert_eq!(back, CallOutcome::Transport(Transport::Connect));
        assert_eq!(serde_json::to_string(&CallOutcome::Status(500)).expect("serialises"), r#"{"status":500}"#);
    }
}
