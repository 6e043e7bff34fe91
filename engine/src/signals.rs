//! Signals that end an exploration: SIGINT (Ctrl-C), SIGTERM (CI cancelling a job, `timeout`, systemd,
//! `kill`) and SIGHUP (a closed terminal). A first Ctrl-C stops the exploration after the execution under
//! way; SIGTERM, SIGHUP or a second Ctrl-C abandon that execution at once. Either way the report is written,
//! marked incomplete, and the services and the test command are ended. Programs install this first thing,
//! so that start-up (waiting for services to be ready) is covered too.

use crate::cancel::{signal_name, Cancel};

/// Listens for the ending signals until dropped, driving a [`Cancel`] (which remembers the first signal).
#[must_use = "signals are only handled while the listener lives"]
pub struct Listener {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Listener {
    /// Starts listening (inside a tokio runtime). A handle that a listener already drives gets no second
    /// one: the returned listener is then inert.
    pub fn start(cancel: Cancel) -> std::io::Result<Listener> {
        if cancel.mark_listened() {
            return Ok(Listener { task: None });
        }
        let mut signals = Signals::new()?;
        let task = tokio::spawn(async move {
            while let Some(signal) = signals.next().await {
                let first = cancel.signal().is_none();
                cancel.signalled(signal);
                if !cancel.is_aborted() {
                    eprintln!(
                        "\ncloture: {}; finishing the current execution and writing the report (again to abandon it)",
                        signal_name(signal)
                    );
                } else {
                    let again = if first { "" } else { " again" };
                    eprintln!(
                        "\ncloture: {}{again}; abandoning the current execution, writing the report",
                        signal_name(signal)
                    );
                }
            }
        });
        Ok(Listener { task: Some(task) })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[cfg(unix)]
struct Signals {
    streams: Vec<(i32, tokio::signal::unix::Signal)>,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let kinds = [
            (libc::SIGINT, SignalKind::interrupt()),
            (libc::SIGTERM, SignalKind::terminate()),
            (libc::SIGHUP, SignalKind::hangup()),
        ];
        let streams =
            kinds.into_iter().map(|(number, kind)| Ok((number, signal(kind)?))).collect::<std::io::Result<_>>()?;
        Ok(Signals { streams })
    }

    /// The next signal received.
    async fn next(&mut self) -> Option<i32> {
        let waits = self.streams.iter_mut().map(|(number, stream)| {
            let number = *number;
            Box::pin(async move { stream.recv().await.map(|()| number) })
        });
        futures_util::future::select_all(waits).await.0
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn next(&mut self) -> Option<i32> {
        tokio::signal::ctrl_c().await.ok().map(|()| 2)
    }
}
