//! The runner's side of the coordinator: a persistent test process takes executions and gives verdicts.
//!
//! A *runner* (docs/runner.md) is a functional test that starts once and runs the test once per execution
//! as cloture asks, saving the start-up of a process per execution. It long-polls `GET /v1/runner/next` for
//! the next execution's id, runs the test with that execution as its own, and posts
//! `POST /v1/runner/{id}/verdict` with `{"passed": bool, "message": "..."}`. The explorer offers one
//! execution at a time ([`Jobs::offer`]) and waits for its verdict; when the exploration is over, `next`
//! answers 410 and the runner exits.

use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{oneshot, watch};

/// A runner's verdict on one execution: `Ok` passes, `Err` fails with the runner's message.
pub type RunnerVerdict = Result<(), String>;

/// The one execution offered to the runner, and who waits for its verdict.
struct Job {
    execution: u64,
    taken: bool,
    reply: Option<oneshot::Sender<RunnerVerdict>>,
}

#[derive(Default)]
struct Slot {
    job: Option<Job>,
    over: bool,
}

/// Executions offered to a runner, one at a time.
pub(crate) struct Jobs {
    slot: Mutex<Slot>,
    /// Bumped whenever a job is offered or the exploration ends: wakes the runner's long poll.
    wake: watch::Sender<u64>,
}

/// What `GET /v1/runner/next` answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Execution(u64),
    /// Nothing within the poll's wait: ask again.
    Nothing,
    /// The exploration is over: the runner exits.
    Over,
}

/// Why a verdict was not taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotTaken {
    /// No execution with this id is offered.
    NotOffered,
    /// The execution was offered but no runner took it with `next` yet.
    NotTaken,
}

/// The body of `POST /v1/runner/{id}/verdict`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerdictBody {
    pub passed: bool,
    #[serde(default)]
    pub message: String,
}

impl Jobs {
    pub(crate) fn new() -> Jobs {
        Jobs { slot: Mutex::new(Slot::default()), wake: watch::channel(0).0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // Each update is a single assignment: a poisoned slot is still consistent.
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wake(&self) {
        self.wake.send_modify(|generation| *generation += 1);
    }

    /// Offers `execution` to the runner (replacing any earlier offer, whose waiter gets nothing); the
    /// receiver gets its verdict.
    pub(crate) fn offer(&self, execution: u64) -> oneshot::Receiver<RunnerVerdict> {
        let (reply, verdict) = oneshot::channel();
        self.lock().job = Some(Job { execution, taken: false, reply: Some(reply) });
        self.wake();
        verdict
    }

    /// Withdraws the offer of `execution` (its verdict is not wanted any more).
    pub(crate) fn withdraw(&self, execution: u64) {
        let mut slot = self.lock();
        if slot.job.as_ref().is_some_and(|job| job.execution == execution) {
            slot.job = None;
        }
    }

    /// Whether a runner took the offer of `execution` with `next`.
    pub(crate) fn taken(&self, execution: u64) -> bool {
        self.lock().job.as_ref().is_some_and(|job| job.execution == execution && job.taken)
    }

    /// The exploration is over: `next` answers 410 from now on.
    pub(crate) fn end(&self) {
        self.lock().over = true;
        self.wake();
    }

    /// The next execution for a runner, waiting at most `wait` for one to be offered.
    pub(crate) async fn next(&self, wait: Duration) -> Next {
        // Subscribed before looking: an offer made after the look wakes the wait below.
        let mut woken = self.wake.subscribe();
        let until = tokio::time::Instant::now() + wait;
        loop {
            {
                let mut slot = self.lock();
                if slot.over {
                    return Next::Over;
                }
                if let Some(job) = slot.job.as_mut().filter(|job| !job.taken) {
                    job.taken = true;
                    return Next::Execution(job.execution);
                }
            }
            match tokio::time::timeout_at(until, woken.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Next::Nothing,
            }
        }
    }

    /// Takes the runner's verdict on `execution`.
    pub(crate) fn verdict(&self, execution: u64, verdict: RunnerVerdict) -> Result<(), NotTaken> {
        let mut slot = self.lock();
        let job = slot.job.as_mut().filter(|job| job.execution == execution).ok_or(NotTaken::NotOffered)?;
        if !job.taken {
            return Err(NotTaken::NotTaken);
        }
        if let Some(reply) = job.reply.take() {
            // The explorer stopped waiting (the deadline passed): nothing to tell.
            let _ = reply.send(verdict);
        }
        slot.job = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn an_offer_reaches_a_waiting_runner_and_its_verdict_the_explorer() {
        let jobs = std::sync::Arc::new(Jobs::new());
        let waiting = {
            let jobs = std::sync::Arc::clone(&jobs);
            tokio::spawn(async move { jobs.next(Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        let verdict = jobs.offer(7);
        assert_eq!(waiting.await.unwrap(), Next::Execution(7));
        assert_eq!(jobs.verdict(8, Ok(())), Err(NotTaken::NotOffered));
        jobs.verdict(7, Err("expected 200".into())).unwrap();
        assert_eq!(verdict.await.unwrap(), Err("expected 200".to_string()));
        assert_eq!(jobs.verdict(7, Ok(())), Err(NotTaken::NotOffered), "a verdict is taken once");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_offer_is_taken_once_and_a_verdict_needs_it_taken() {
        let jobs = Jobs::new();
        let _verdict = jobs.offer(1);
        assert_eq!(jobs.verdict(1, Ok(())), Err(NotTaken::NotTaken));
        assert_eq!(jobs.next(Duration::from_millis(1)).await, Next::Execution(1));
        assert!(jobs.taken(1));
        assert_eq!(jobs.next(Duration::from_millis(1)).await, Next::Nothing);
        jobs.withdraw(1);
        assert_eq!(jobs.verdict(1, Ok(())), Err(NotTaken::NotOffered));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_end_of_the_exploration_ends_the_runner_s_poll() {
        let jobs = Jobs::new();
        jobs.end();
        assert_eq!(jobs.next(Duration::from_secs(5)).await, Next::Over);
    }
}
