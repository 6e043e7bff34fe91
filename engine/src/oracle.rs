//! Oracle functions for functional tests: did this execution inject a fault?
//!
//! A test that must accept graceful degradation asks these, e.g. "a 503 is fine exactly when a fault was
//! injected". They read the current task's execution context, so they answer for the execution the calling
//! test runs in and are `false` outside any exploration.

use crate::context::Context;

/// Whether a fault has been injected anywhere in the current execution so far.
pub fn fault_injected() -> bool {
    Context::current().is_some_and(|context| context.execution.fault_injected(None))
}

/// Whether a fault has been injected into a call to `service` in the current execution so far.
pub fn fault_injected_on(service: &str) -> bool {
    Context::current().is_some_and(|context| context.execution.fault_injected(Some(service)))
}
