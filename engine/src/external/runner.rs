//! The functional test as a *runner*: one process, started once, that runs the test once per execution as
//! cloture asks (docs/runner.md), instead of a command started per execution.
//!
//! The runner talks to the coordinator: it long-polls for the next execution and posts its verdict. Here
//! the explorer's side: each execution is offered to the runner and its verdict awaited; a runner that
//! exits is started again for the next execution (the execution it left fails, with the end of its log); a
//! runner still busy when the execution's deadline passes (or when a second Ctrl-C abandons it) is killed
//! with its process group and started again for the next one. At the end of the exploration the runner is
//! told so (its poll answers 410) and given a moment to exit, then signalled like a service.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Child;

use super::process::{self, signal_group};
use super::{log_tail, MESSAGE_LENGTH};
use crate::coordinator::{Coordinator, COORDINATOR_ENV};
use crate::text::{bounded, printable};

/// How long a runner told that the exploration is over may take to exit before it is signalled.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// The runner process of an exploration, started when the first execution needs it.
pub(super) struct Runner {
    command: String,
    log: PathBuf,
    process: tokio::sync::Mutex<Option<Child>>,
    /// Set when an execution was abandoned while the runner ran it: the next one starts a new runner.
    abandoned: Arc<AtomicBool>,
    starts: std::sync::atomic::AtomicUsize,
}

impl Runner {
    pub(super) fn new(command: &str, log: PathBuf) -> Runner {
        Runner {
            command: command.to_string(),
            log,
            process: tokio::sync::Mutex::new(None),
            abandoned: Arc::new(AtomicBool::new(false)),
            starts: Default::default(),
        }
    }

    /// How many times the runner was started (1 when it never had to be restarted).
    pub(super) fn starts(&self) -> usize {
        self.starts.load(Ordering::Relaxed)
    }

    /// Runs the test once in execution `id` through the runner: its verdict, or why there is none.
    pub(super) async fn run(&self, coordinator: &Coordinator, id: u64) -> Result<(), String> {
        let mut process = self.process.lock().await;
        if self.abandoned.swap(false, Ordering::AcqRel) {
            // Killed with its group when the execution was abandoned; dropping reaps it.
            *process = None;
        }
        if process.as_mut().is_some_and(|child| child.try_wait().ok().flatten().is_some()) {
            *process = None;
        }
        if process.is_none() {
            let env = [(COORDINATOR_ENV.to_string(), coordinator.url())];
            let first = self.starts.load(Ordering::Relaxed) == 0;
            let child = process::spawn_runner(&self.command, &self.log, first, env)
                .map_err(|e| format!("cannot start the runner: {e}"))?;
            self.starts.fetch_add(1, Ordering::Relaxed);
            *process = Some(child);
        }
        let child = process.as_mut().expect("started just above");
        let verdict = coordinator.offer_to_runner(id);
        let mut abandon = Abandon { coordinator, id, group: child.id(), flag: Arc::clone(&self.abandoned) };
        let exited = tokio::select! {
            verdict = verdict => {
                abandon.group = None;
                return verdict
                    .unwrap_or_else(|_| Err("the runner's verdict was lost".to_string()))
                    .map_err(|message| failure_message(&message));
            }
            status = child.wait() => status,
        };
        abandon.group = None;
        coordinator.withdraw_from_runner(id);
        let took = if coordinator.runner_took(id) { "while running the test" } else { "before taking the execution" };
        *process = None;
        let status = exited.map_or_else(|e| format!("cannot be waited for: {e}"), |status| status.to_string());
        Err(format!("the runner exited ({status}) {took}{}", log_tail(&self.log)))
    }

    /// Tells the runner the exploration is over, lets it exit, and ends its process group.
    pub(super) async fn stop(&self, coordinator: &Coordinator) {
        coordinator.end_runner();
        let Some(mut child) = self.process.lock().await.take() else { return };
        if tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_ok() {
            // Whatever it left behind in its group goes too.
            if let Some(group) = child.id() {
                signal_group(group, libc::SIGKILL);
            }
            return;
        }
        let group = child.id();
        if let Some(group) = group {
            signal_group(group, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
            tracing::warn!("the runner ignored SIGTERM for 5 s; killing it");
            if let Some(group) = group {
                signal_group(group, libc::SIGKILL);
            }
            let _ = child.kill().await;
        }
    }
}

/// A runner's failure message, made printable and bounded.
fn failure_message(message: &str) -> String {
    let message = message.trim();
    if message.is_empty() {
        return "the runner said the test failed".to_string();
    }
    bounded(&printable(message), MESSAGE_LENGTH)
}

/// While armed (`group` set), dropping it means the execution was abandoned with the runner on it (the
/// deadline passed, or a second Ctrl-C): the runner's process group is killed, the offer withdrawn, and
/// the next execution starts a new runner.
struct Abandon<'a> {
    coordinator: &'a Coordinator,
    id: u64,
    group: Option<u32>,
    flag: Arc<AtomicBool>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        let Some(group) = self.group else { return };
        self.coordinator.withdraw_from_runner(self.id);
        signal_group(group, libc::SIGKILL);
        self.flag.store(true, Ordering::Release);
    }
}
