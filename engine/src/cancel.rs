//! The one cancellation handle of an exploration: *stop* after the execution under way (a first Ctrl-C, a
//! signal, a service that died), or *abort* it at once (a second Ctrl-C), with the reason to report.
//!
//! Whoever may cancel (signal handlers, the supervisor of service processes) holds a clone; the explorer
//! checks it between executions and races the execution under way against [`Cancel::aborted`].

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// A shared stop/abort switch with the reason it was thrown. Clones share the state.
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    stopped: AtomicBool,
    aborted: AtomicBool,
    /// Why, when not by an interruption: the first reason given wins.
    reason: Mutex<Option<String>>,
    /// The first ending signal received (0: none).
    signal: AtomicI32,
    /// A [`crate::signals::Listener`] drives this handle.
    listened: AtomicBool,
    wake: Notify,
}

impl Cancel {
    /// Stops the exploration after the execution under way (an interruption).
    pub fn stop(&self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        self.state.wake.notify_waiters();
    }

    /// Stops the exploration after the execution under way, saying why (e.g. a service process exited).
    pub fn stop_because(&self, reason: impl Into<String>) {
        let mut known = self.state.reason.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        known.get_or_insert_with(|| reason.into());
        drop(known);
        self.stop();
    }

    /// Abandons the execution under way at once and stops the exploration.
    pub fn abort(&self) {
        self.state.aborted.store(true, Ordering::SeqCst);
        self.stop();
    }

    /// An ending signal arrived. A first Ctrl-C (SIGINT) stops after the execution under way; SIGTERM,
    /// SIGHUP, or any second signal abandons it at once (whoever sends SIGTERM may follow with SIGKILL).
    pub fn signalled(&self, signal: i32) {
        let first = self.state.signal.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        if first && signal == libc::SIGINT {
            self.stop();
        } else {
            self.abort();
        }
    }

    /// The first ending signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        Some(self.state.signal.load(Ordering::SeqCst)).filter(|&signal| signal != 0)
    }

    /// The conventional exit status of a program ended by a signal: 128 + the first one's number.
    pub fn signal_exit_status(&self) -> Option<u8> {
        self.signal().and_then(|signal| u8::try_from(128 + signal).ok())
    }

    /// Marks the handle as driven by a signal listener; returns whether it already was.
    pub(crate) fn mark_listened(&self) -> bool {
        self.state.listened.swap(true, Ordering::SeqCst)
    }

    /// Whether the exploration is to stop (stopped or aborted).
    pub fn is_stopped(&self) -> bool {
        self.state.stopped.load(Ordering::SeqCst)
    }

    /// Whether the execution under way is to be abandoned.
    pub fn is_aborted(&self) -> bool {
        self.state.aborted.load(Ordering::SeqCst)
    }

    /// The reason given to [`Cancel::stop_because`], if any.
    pub fn reason(&self) -> Option<String> {
        self.state.reason.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// What to report as the reason the exploration stopped early.
    pub fn describe(&self) -> String {
        match (self.signal(), self.is_aborted()) {
            (Some(signal @ (libc::SIGTERM | libc::SIGHUP)), _) => {
                format!("{}: the execution under way was abandoned", signal_name(signal))
            }
            (_, true) => "interrupted twice: the last execution was abandoned".to_string(),
            (_, false) => self.reason().unwrap_or_else(|| "interrupted".to_string()),
        }
    }

    /// Resolves once the exploration is to stop ([`Cancel::stop`] or [`Cancel::abort`]).
    pub async fn stopped(&self) {
        loop {
            let woken = self.state.wake.notified();
            if self.is_stopped() {
                return;
            }
            woken.await;
        }
    }

    /// Resolves once [`Cancel::abort`] was called.
    pub async fn aborted(&self) {
        loop {
            let woken = self.state.wake.notified();
            if self.is_aborted() {
                return;
            }
            woken.await;
        }
    }
}

/// How an ending signal is named to people: `terminated (SIGTERM)`, `hung up (SIGHUP)`, `interrupted`.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGTERM => "terminated (SIGTERM)",
        libc::SIGHUP => "hung up (SIGHUP)",
        _ => "interrupted",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_first_reason_given_is_the_one_reported() {
        let cancel = Cancel::default();
        assert!(!cancel.is_stopped());
        cancel.stop_because("service `users` exited");
        cancel.clone().stop_because("service `movies` exited");
        assert!(cancel.is_stopped() && !cancel.is_aborted());
        assert_eq!(cancel.describe(), "service `users` exited");
    }

    #[test]
    fn a_first_ctrl_c_stops_and_a_second_aborts() {
        let cancel = Cancel::default();
        cancel.signalled(libc::SIGINT);
        assert!(cancel.is_stopped() && !cancel.is_aborted());
        assert_eq!(cancel.describe(), "interrupted");
        cancel.signalled(libc::SIGINT);
        assert!(cancel.is_aborted());
        assert_eq!((cancel.signal(), cancel.signal_exit_status()), (Some(libc::SIGINT), Some(130)));
    }

    #[test]
    fn sigterm_abandons_the_execution_at_once_and_names_itself() {
        let cancel = Cancel::default();
        cancel.signalled(libc::SIGTERM);
        assert!(cancel.is_aborted());
        assert_eq!((cancel.signal(), cancel.signal_exit_status()), (Some(libc::SIGTERM), Some(143)));
        assert_eq!(cancel.describe(), "terminated (SIGTERM): the execution under way was abandoned");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_abort_wakes_whoever_waits_for_it_and_implies_a_stop() {
        let cancel = Cancel::default();
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.aborted().await }
        });
        tokio::task::yield_now().await;
        cancel.abort();
        assert!(tokio::time::timeout(Duration::from_secs(1), waiter).await.is_ok());
        assert!(cancel.is_stopped());
        assert_eq!(cancel.describe(), "interrupted twice: the last execution was abandoned");
    }
}
