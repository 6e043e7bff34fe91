//! Oracle functions for functional tests: did this execution inject a fault, and is this the answer the
//! fault-free run got?
//!
//! A test that must accept graceful degradation asks these, e.g. "a 503 is fine exactly when a fault was
//! injected", and "the exact fault-free answer is fine under faults: something recovered". They read the
//! current task's execution context, so they answer for the execution the calling test runs in and are
//! `false` (or `None`) outside any exploration.

use bytes::Bytes;
use http::StatusCode;

use crate::client::Response;
use crate::context::Context;

/// Whether a fault has been injected anywhere in the current execution so far.
pub fn fault_injected() -> bool {
    Context::current().is_some_and(|context| context.execution.fault_injected(None))
}

/// Whether a fault has been injected into a call to `service` in the current execution so far.
pub fn fault_injected_on(service: &str) -> bool {
    Context::current().is_some_and(|context| context.execution.fault_injected(Some(service)))
}

/// The answer the fault-free reference run got to the same call of the test (status and body), when known:
/// the test's own calls made with cloture's client, after the reference runs.
pub fn reference_answer(response: &Response) -> Option<(StatusCode, Bytes)> {
    let key = response.call_key()?;
    let answer = Context::current()?.execution.reference_answer(key)?;
    Some((StatusCode::from_u16(answer.status).ok()?, answer.body))
}

/// Whether `response` is exactly the answer the fault-free reference run got (status and body): under
/// faults, a retry or a fallback recovered.
pub fn is_reference_answer(response: &Response) -> bool {
    let body = response.bytes();
    reference_answer(response).is_some_and(|(status, reference)| {
        status == response.status() && reference == body.slice(..body.len().min(crate::trace::Answer::KEPT))
    })
}
