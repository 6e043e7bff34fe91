//! Proxy mode on services cloture cannot instrument: a pair of stdlib-only Python services (`front` calls
//! `back`), each call going through a cloture proxy. `front` handles error statuses and refused or reset
//! connections, but not a timeout: cloture finds exactly that bug.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloture::external::{ServicesFile, System};
use cloture::report::{FailureClass, Outcome};
use cloture::{Config, Fault};

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("address").port()).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn proxies_find_the_unhandled_timeout_in_a_python_service() {
    let dir = python();
    let logs = std::env::temp_dir().join(format!("cloture-proxy-{}", std::process::id()));
    // A port taken between choosing and binding it (tests run in parallel, and every connection takes an
    // ephemeral port) means new ports and another try.
    let mut attempt = 0;
    let (mut system, to_front) = loop {
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
        match System::start(&file, &logs, Default::default()).await {
            Ok(system) => break (system, to_front),
            Err(error) if attempt < 5 => eprintln!("retrying on other ports: {error}"),
            Err(error) => panic!("the pair did not start: {error}"),
        }
    };
    let command = format!("python3 {}/check.py http://127.0.0.1:{to_front}", dir.display());
    let config = Config { deadline: Duration::from_secs(20), ..Config::default() };
    let report = cloture::explore(&config, system.command_test(&command)).await;
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();
    let report = report.expect("the exploration completes");
    let summary = report.terminal_summary();
    // Reference runs, then the five faults for a call whose time limit a proxy cannot know (connect, slow
    // and three statuses: a timeout is what slow gives the caller) on the one call front makes.
    assert_eq!(report.summary.executions, 7, "{summary}");
    let failing: Vec<_> = report.executions.iter().filter(|e| e.outcome == Outcome::Fail).collect();
    assert_eq!(failing.len(), 1, "{summary}");
    assert_eq!(failing[0].faults[0].fault, Fault::Slow);
    assert_eq!((failing[0].faults[0].from.as_str(), failing[0].faults[0].to.as_str()), ("front", "back"));
    let failure = failing[0].failure.as_ref().expect("failure");
    assert_eq!(failure.class, FailureClass::Crash, "{summary}");
    assert!(failure.message.contains("front answered 500"), "{summary}");
    assert_eq!(report.vulnerabilities.len(), 1);
}
