//! The Node.js client `clients/node` (`index.mjs`: oracles and reference values; `runner.mjs`: the persistent
//! runner) against the stdlib-only Python pair of `tests/python` (`front` calls `back`) behind cloture's
//! proxies: the Node runner, started once, finds front's unhandled timeout as Python's runner does; reference
//! values catch a fallback that hides a failure. Against a scripted coordinator: each kind of verdict, worded
//! on one line. Outside an exploration: the oracles answer as for a fault-free run, and the runner refuses to
//! start (2) or exits when the coordinator is gone (1). Skipped, saying so, when node (or python3, for the
//! pair) is missing.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloture::report::{FailureClass, Outcome, Report};
use cloture::{Config, Fault};
use common::{available, free_ports, outcomes, start_pair, tests_dir, workspace};

/// Whether node (and python3, for the services) can run; says why not when they cannot.
fn runnable(needs_python: bool) -> bool {
    if !available("node") {
        eprintln!("skipped: node is not installed");
        return false;
    }
    if needs_python && !available("python3") {
        eprintln!("skipped: python3 is not installed (the services are Python)");
        return false;
    }
    true
}

fn runner_script() -> String {
    workspace().join("clients/node/runner.mjs").display().to_string()
}

fn logs(name: &str) -> PathBuf {
    common::scratch("node-client", name)
}

/// An exploration of a fresh pair with the runner `command` (given `FRONT_URL=…` first): its report, how
/// often the runner started, and the reference values saved.
async fn explore_with_runner(name: &str, command: &str) -> (Report, usize, BTreeMap<String, serde_json::Value>) {
    let logs = logs(name);
    let (mut system, front) = start_pair(&logs).await;
    let runner = format!("env FRONT_URL={front} {command}");
    let config = Config { deadline: Duration::from_secs(20), ..Config::default() };
    let report = cloture::explore(&config, system.runner_test(&runner)).await;
    let starts = system.runner_starts();
    let references = system.coordinator.references();
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();
    (report.expect("the exploration completes"), starts, references)
}

#[tokio::test(flavor = "current_thread")]
async fn the_node_runner_starts_once_and_finds_the_unhandled_timeout_as_python_s_runner_does() {
    if !runnable(true) {
        return;
    }
    let python = tests_dir("python").join("filibuster_total.py");
    let path = workspace().join("clients/python/src").display().to_string();
    let by_python = format!("env PYTHONPATH={path} python3 -m cloture.runner {}:test_total", python.display());
    let (by_python, _, _) = explore_with_runner("python", &by_python).await;
    let node = format!("node {} {}:testTotal", runner_script(), tests_dir("node").join("total.mjs").display());
    let (by_node, starts, _) = explore_with_runner("node", &node).await;

    let summary = by_node.terminal_summary();
    assert_eq!(outcomes(&by_python), outcomes(&by_node), "{summary}");
    assert_eq!(by_node.summary.executions, 7, "{summary}");
    assert_eq!(starts, 1, "the Node runner ran every execution without being started again");
    let failing: Vec<_> = by_node.executions.iter().filter(|e| e.outcome == Outcome::Fail).collect();
    assert_eq!(failing.len(), 1, "{summary}");
    assert_eq!(failing[0].faults[0].fault, Fault::Slow, "{summary}");
    let failure = failing[0].failure.as_ref().expect("a failure");
    assert_eq!(failure.class, FailureClass::Crash, "{summary}");
    assert!(failure.message.contains("front answered 500"), "{}", failure.message);
    // The runner's words: the test, the assertion's text, and where in the test it failed.
    let said = "tests/node/total.mjs:testTotal: AssertionError: unexpected answer under a fault on back: 500";
    assert!(failure.message.contains(said), "{}", failure.message);
    assert!(failure.message.contains("(at tests/node/total.mjs:"), "{}", failure.message);
    assert_eq!(by_node.vulnerabilities.len(), 1, "{summary}");
}

#[tokio::test(flavor = "current_thread")]
async fn reference_values_of_the_node_client_catch_a_fallback_that_hides_a_failure() {
    if !runnable(true) {
        return;
    }
    let node = format!("node {} {}:testTotalOrZero", runner_script(), tests_dir("node").join("total.mjs").display());
    let (report, starts, references) = explore_with_runner("reference", &node).await;

    let summary = report.terminal_summary();
    assert_eq!(starts, 1, "{summary}");
    assert_eq!(references.get("front:total"), Some(&serde_json::json!({"total": 6})));
    // Every fault front handles becomes a 200 {"total": 0}: not the fault-free answer.
    common::assert_fallbacks_are_caught(&report);
}

// ---- The runner against a scripted coordinator: what it asks, and how it words each verdict ----

/// What the runner sent to the scripted coordinator: each request (`METHOD PATH`), the verdicts, and on how
/// many connections.
#[derive(Default)]
struct Exchanges {
    connections: usize,
    requests: Vec<String>,
    verdicts: Vec<serde_json::Value>,
    polls: u32,
}

/// A coordinator on `listener` that answers the first `next` with 204, then offers executions "1" to
/// `executions` one by one, then answers 410 — or closes the connection without answering, when it `vanishes`;
/// a fault was injected in execution "5" only.
fn scripted_coordinator(listener: TcpListener, executions: u32, vanishes: bool) -> Arc<Mutex<Exchanges>> {
    let exchanges = Arc::new(Mutex::new(Exchanges::default()));
    let shared = Arc::clone(&exchanges);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let exchanges = Arc::clone(&shared);
            exchanges.lock().expect("not poisoned").connections += 1;
            std::thread::spawn(move || serve_connection(stream, &exchanges, executions, vanishes));
        }
    });
    exchanges
}

/// Serves the requests of one kept-alive connection, until the runner closes it.
fn serve_connection(stream: TcpStream, exchanges: &Mutex<Exchanges>, executions: u32, vanishes: bool) {
    let mut reader = BufReader::new(stream.try_clone().expect("a second handle on the connection"));
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let (method, path) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            match header.trim_end().split_once(':') {
                Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                    length = value.trim().parse().expect("a length")
                }
                None => break,
                Some(_) => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut exchanges = exchanges.lock().expect("not poisoned");
        let (status, answer) = answer(&mut exchanges, &method, &path, &body, executions);
        if status == 410 && vanishes {
            return;
        }
        drop(exchanges);
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(answer.as_bytes())).is_err() {
            return;
        }
    }
}

/// The scripted coordinator's answer (status, body) to one request.
fn answer(exchanges: &mut Exchanges, method: &str, path: &str, body: &[u8], executions: u32) -> (u16, String) {
    exchanges.requests.push(format!("{method} {path}"));
    if (method, path) == ("GET", "/v1/runner/next") {
        exchanges.polls += 1;
        return match exchanges.polls - 1 {
            0 => (204, String::new()),
            n if n <= executions => (200, format!(r#"{{"execution": "{n}"}}"#)),
            _ => (410, r#"{"error": "the exploration is over"}"#.to_string()),
        };
    }
    if method == "POST" && path.starts_with("/v1/runner/") && path.ends_with("/verdict") {
        exchanges.verdicts.push(serde_json::from_slice(body).expect("a verdict is JSON"));
        return (204, String::new());
    }
    if let Some(id) = path.strip_prefix("/v1/executions/").and_then(|rest| rest.strip_suffix("/injected")) {
        return (200, format!(r#"{{"injected": {}}}"#, id == "5"));
    }
    (404, r#"{"error": "not found"}"#.to_string())
}

/// Runs `command` (its output piped) for at most 30 s; a process still running then is killed, by its pid.
fn run_bounded(mut command: Command) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("it starts");
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(Duration::from_secs(30)) {
        Ok(output) => output.expect("its output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{command:?} did not end within 30 s");
        }
    }
}

/// `node ARGS` from the engine's folder, with `coordinator` as CLOTURE_COORDINATOR (none when `None`).
fn node(args: &[&str], coordinator: Option<&str>) -> Output {
    let mut command = Command::new("node");
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR")).env_remove("CLOTURE_EXECUTION").stdin(Stdio::null());
    match coordinator {
        Some(url) => command.env("CLOTURE_COORDINATOR", url),
        None => command.env_remove("CLOTURE_COORDINATOR"),
    };
    run_bounded(command)
}

#[test]
fn the_runner_takes_every_execution_offered_and_words_each_verdict_on_one_line() {
    if !runnable(false) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let exchanges = scripted_coordinator(listener, 7, false);
    let started = Instant::now();
    let out = node(&[&runner_script(), "tests/node/verdicts.mjs"], Some(&url));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the exploration is over: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "it exited when told, not when its timers ended");

    let exchanges = exchanges.lock().expect("not poisoned");
    assert_eq!(exchanges.polls, 9, "204, seven offers, 410: {:?}", exchanges.requests);
    assert!(exchanges.requests.contains(&"GET /v1/executions/5/injected".to_string()), "{:?}", exchanges.requests);
    // 17 requests, on connections kept alive.
    assert!(exchanges.connections <= 3, "{} connections for {:?}", exchanges.connections, exchanges.requests);
    let verdicts: Vec<(bool, &str)> = exchanges
        .verdicts
        .iter()
        .map(|v| (v["passed"].as_bool().expect("passed"), v["message"].as_str().expect("a message")))
        .collect();
    assert_eq!(verdicts.len(), 7, "{verdicts:?}");
    let test = "tests/node/verdicts.mjs:default";
    assert_eq!(verdicts[0], (true, ""));
    assert_eq!(verdicts[1], (false, format!("{test} returned false").as_str()));
    assert_eq!(verdicts[2], (false, format!("{test}: threw 'a string, not an Error'").as_str()));
    let expected = [
        (3, format!("{test}: RangeError: rejected in a timer (at tests/node/verdicts.mjs:")),
        (4, format!("{test}: AssertionError: a fault was injected")),
        // Where in the test, not in Node's own code.
        (5, format!("{test}: TypeError: fetch failed (cause: connect ECONNREFUSED 127.0.0.1:")),
        (6, format!("{test}: Error: line one; line two of execution 7 (at tests/node/verdicts.mjs:")),
    ];
    for (index, start) in expected {
        assert!(!verdicts[index].0 && verdicts[index].1.starts_with(&start), "{:?}", verdicts[index]);
    }
    assert!(
        verdicts[4].1.ends_with(
            r#" (at tests/node/verdicts.mjs:23: assert.equal(await faultInjected(), false, "a fault was injected");)"#
        ),
        "{:?}",
        verdicts[4]
    );
    assert!(verdicts[5].1.contains(") (at tests/node/verdicts.mjs:26: await fetch("), "{:?}", verdicts[5]);
    assert!(verdicts.iter().all(|(_, message)| !message.contains('\n')), "{verdicts:?}");
}

#[test]
fn the_runner_exits_with_1_when_the_coordinator_goes_away() {
    if !runnable(false) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let exchanges = scripted_coordinator(listener, 1, true);
    let out = node(&[&runner_script(), "tests/node/verdicts.mjs"], Some(&url));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cloture-runner: the coordinator at {url} cannot be reached")), "{stderr}");
    let exchanges = exchanges.lock().expect("not poisoned");
    assert_eq!(exchanges.verdicts, [serde_json::json!({"passed": true, "message": ""})]);
    // The poll after the verdict, and once more on a new connection before giving up.
    assert_eq!(exchanges.polls, 4, "{:?}", exchanges.requests);
}

#[test]
fn outside_an_exploration_the_oracles_answer_fault_free_and_the_runner_says_why_it_cannot_run() {
    if !runnable(false) {
        return;
    }
    let index = url_of(&workspace().join("clients/node/index.mjs"));
    let script = format!(
        "import * as c from '{index}'; console.log(JSON.stringify([await c.faultInjected(), \
         await c.faultInjectedOn('back'), await c.isReferenceRun(), await c.matchesReference('x', {{a: 1}}), \
         c.execution(), c.inExploration()]))"
    );
    let oracles = node(&["--input-type=module", "-e", &script], None);
    assert_eq!(String::from_utf8_lossy(&oracles.stdout).trim(), "[false,false,true,true,null,false]");

    let total = "tests/node/total.mjs:testTotal";
    let outside = node(&[&runner_script(), total], None);
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert_eq!(outside.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CLOTURE_COORDINATOR is not set"), "{stderr}");

    let closed = format!("http://127.0.0.1:{}", free_ports(1)[0]);
    let gone = node(&[&runner_script(), total], Some(&closed));
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("the coordinator at {closed} cannot be reached")), "{stderr}");

    let missing = node(&[&runner_script(), "tests/node/total.mjs:testNothing"], Some(&closed));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot load the tests: tests/node/total.mjs exports no function testNothing"), "{stderr}");
}

/// `file://` URL of an absolute path (no characters that need encoding in this workspace's paths).
fn url_of(path: &Path) -> String {
    format!("file://{}", path.display())
}
