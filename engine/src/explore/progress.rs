//! The progress line on stderr: executions done / planned, failures, coverage. Quiet when stderr is not a
//! terminal; redrawn at most every 100 ms.

use std::time::{Duration, Instant};

use crate::report::{ExecutionReport, Outcome};

pub(super) struct Progress {
    enabled: bool,
    shown: bool,
    last: Option<Instant>,
}

impl Progress {
    pub(super) fn new(wanted: bool) -> Progress {
        use std::io::IsTerminal;
        Progress { enabled: wanted && std::io::stderr().is_terminal(), shown: false, last: None }
    }

    pub(super) fn show(&mut self, pending: usize, executions: &[ExecutionReport], coverage: Option<String>) {
        if !self.enabled || self.last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        self.last = Some(Instant::now());
        let done = executions.len();
        let failed = executions.iter().filter(|e| e.outcome == Outcome::Fail).count();
        let coverage = coverage.map(|text| format!(", {text}")).unwrap_or_default();
        eprint!("\r\x1b[2Kcloture: {done}/{} executions, {failed} failed{coverage}", done + pending);
        self.shown = true;
    }

    pub(super) fn finish(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}
