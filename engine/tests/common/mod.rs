//! What the tests of external systems share: free loopback ports, the stdlib-only Python pair of
//! `tests/python` (`front` calls `back`) behind cloture's proxies, and what each execution of a report came
//! to. Each test file uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cloture::external::{ServicesFile, System};
use cloture::report::{FailureClass, Outcome, Report};
use cloture::Fault;

/// Whether `program --version` runs.
pub fn available(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|out| out.status.success())
}

/// The workspace's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the engine is in the workspace").to_path_buf()
}

/// `engine/tests/LANGUAGE`: the services and tests written in that language.
pub fn tests_dir(language: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(language)
}

/// `n` loopback ports free a moment ago (bound and released: one may be taken meanwhile, so starting on
/// them is retried).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("address").port()).collect()
}

/// A folder under the temporary one for test `name` of `suite`, unique to this process.
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cloture-{suite}-{name}-{}", std::process::id()))
}

/// The pair behind proxies (front → back, test → front), its logs in `logs`; the URL of the entry proxy.
pub async fn start_pair(logs: &Path) -> (System, String) {
    let dir = tests_dir("python");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ports = free_ports(4);
        let (back, front, to_back, to_front) = (ports[0], ports[1], ports[2], ports[3]);
        let file: ServicesFile = serde_json::from_value(serde_json::json!({
            "services": [
                { "name": "back", "command": format!("python3 {}/back.py {back}", dir.display()), "port": back },
                { "name": "front", "command": format!("python3 {}/front.py {front}", dir.display()), "port": front,
                  "env": { "BACK_URL": format!("http://127.0.0.1:{to_back}") } },
            ],
            "proxies": [
                { "from": "front", "to": "back", "listen": to_back, "upstream": format!("127.0.0.1:{back}") },
                { "from": "test", "to": "front", "listen": to_front, "upstream": format!("127.0.0.1:{front}") },
            ],
        }))
        .expect("a valid services file");
        // A port taken between choosing and binding it means new ports and another try.
        match System::start(&file, logs, Default::default()).await {
            Ok(system) => return (system, format!("http://127.0.0.1:{to_front}")),
            Err(error) if attempt < 5 => eprintln!("retrying on other ports: {error}"),
            Err(error) => panic!("the pair did not start: {error}"),
        }
    }
}

/// What one execution came to: its faults (`from->to`, fault), outcome and failure class.
pub type ExecutionOutcome = (Vec<(String, Fault)>, Outcome, Option<FailureClass>);

/// What each execution of a report came to.
pub fn outcomes(report: &Report) -> Vec<ExecutionOutcome> {
    report
        .executions
        .iter()
        .map(|e| {
            let faults = e.faults.iter().map(|f| (format!("{}->{}", f.from, f.to), f.fault)).collect();
            (faults, e.outcome, e.failure.as_ref().map(|f| f.class))
        })
        .collect()
}

/// front's `/total-or-zero` answers 200 {"total": 0} under every fault it handles: each is caught as not the
/// fault-free answer (`rejected`), and the reference runs pass.
pub fn assert_fallbacks_are_caught(report: &Report) {
    let summary = report.terminal_summary();
    let hidden: Vec<_> = report
        .executions
        .iter()
        .filter(|e| e.failure.as_ref().is_some_and(|f| f.message.contains("not the fault-free answer")))
        .collect();
    assert!(!hidden.is_empty(), "{summary}");
    for execution in hidden {
        assert_eq!(execution.failure.as_ref().expect("failed").class, FailureClass::Rejected, "{summary}");
        assert!(matches!(execution.faults[0].fault, Fault::Connect | Fault::Status(_)), "{summary}");
    }
    assert!(report.executions.iter().filter(|e| e.reference).all(|e| e.outcome == Outcome::Pass), "{summary}");
}
