//! The Python package `clients/python` (module `cloture`, and `filibuster.assertions` for tests written
//! for Filibuster) against the stdlib-only pair of `tests/python` (`front` calls `back`) behind cloture's
//! proxies: a Filibuster test finds front's unhandled timeout, as a command per execution and through the
//! persistent runner alike; pytest's runner (the package's plugin, `pytest --cloture-runner`) finds what the
//! plain runner finds, starting once, and leaves a plain pytest run as it was; reference values catch a
//! fallback that hides a failure; a runner busy past the deadline is killed and started again; the entry proxy
//! keeps the test's answers, so a 200 hiding a failure is warned about. The package is installed with pytest
//! (its `pytest` extra) into a fresh virtual environment when a package registry is reachable (setuptools
//! and pytest are fetched), else taken from `clients/python/src` on `PYTHONPATH`. Skipped, saying so, when
//! python3 is missing; the pytest tests fail, saying so, when pytest cannot be imported.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use cloture::report::{FailureClass, Outcome, Report};
use cloture::{Config, Fault};
use common::{free_ports, outcomes, start_pair, tests_dir, workspace};

/// How commands run Python with the package: `env VARS… PYTHON`.
struct PythonEnv {
    /// `PYTHONPATH=…` when the package could not be installed.
    path: Option<String>,
    python: PathBuf,
}

impl PythonEnv {
    /// `env VARS… PYTHON ARGS`, with `vars` added.
    fn command(&self, vars: &[(&str, String)], args: &str) -> String {
        let mut command = "env".to_string();
        for (name, value) in vars {
            command.push_str(&format!(" {name}={value}"));
        }
        if let Some(path) = &self.path {
            command.push_str(&format!(" PYTHONPATH={path}"));
        }
        format!("{command} {} {args}", self.python.display())
    }

    /// Runs `PYTHON ARGS` outside any exploration; its output.
    fn run(&self, args: &[impl AsRef<std::ffi::OsStr>]) -> std::process::Output {
        let mut command = Command::new(&self.python);
        command.args(args).env_remove("CLOTURE_COORDINATOR").env_remove("CLOTURE_EXECUTION");
        if let Some(path) = &self.path {
            command.env("PYTHONPATH", path);
        }
        command.output().expect("python runs")
    }
}

/// The package installed with pytest (its `pytest` extra) into a fresh virtual environment (once per run of
/// this test binary), or without pytest when that cannot be installed, or on `PYTHONPATH` when pip cannot
/// build it (no registry reachable).
fn python_env() -> &'static PythonEnv {
    static ENV: OnceLock<PythonEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-client-venv");
        let _ = std::fs::remove_dir_all(&venv);
        let created = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success());
        let python = venv.join("bin/python");
        let package = workspace().join("clients/python");
        let install = |what: &str| {
            Command::new(&python)
                .args(["-m", "pip", "install", "-q", "--retries", "1", "--timeout", "20", what])
                .status()
                .is_ok_and(|s| s.success())
        };
        let with_pytest = format!("{}[pytest]", package.display());
        if created && (install(&with_pytest) || install(&package.display().to_string())) {
            return PythonEnv { path: None, python };
        }
        eprintln!("the package could not be installed into a virtual environment: using clients/python/src");
        PythonEnv { path: Some(package.join("src").display().to_string()), python: PathBuf::from("python3") }
    })
}

#[tokio::test(flavor = "current_thread")]
async fn a_test_written_for_filibuster_finds_the_unhandled_timeout_as_a_command_and_through_the_runner() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let python = python_env();
    let logs = logs("filibuster");
    let (mut system, front) = start_pair(&logs).await;
    let test = tests_python().join("filibuster_total.py");
    let vars = [("FRONT_URL", front)];
    let config = Config { deadline: Duration::from_secs(20), ..Config::default() };

    let command = python.command(&vars, &test.display().to_string());
    let by_command = cloture::explore(&config, system.command_test(&command)).await;
    let runner = python.command(&vars, &format!("-m cloture.runner {}:test_total", test.display()));
    let by_runner = cloture::explore(&config, system.runner_test(&runner)).await;
    let starts = system.runner_starts();
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();

    for report in [by_command.expect("the exploration completes"), by_runner.expect("the exploration completes")] {
        let summary = report.terminal_summary();
        assert_eq!(report.summary.executions, 7, "{summary}");
        let failing: Vec<_> = report.executions.iter().filter(|e| e.outcome == Outcome::Fail).collect();
        assert_eq!(failing.len(), 1, "{summary}");
        assert_eq!(failing[0].faults[0].fault, Fault::Slow, "{summary}");
        let failure = failing[0].failure.as_ref().expect("a failure");
        assert_eq!(failure.class, FailureClass::Crash, "{summary}");
        assert!(failure.message.contains("front answered 500"), "{summary}");
        // Why, in front's own words: the body of its 500 (seen by the entry proxy), and its log meanwhile.
        assert!(failure.message.contains(r#"(body: {"error": "internal server error"})"#), "{}", failure.message);
        // front's own 0.5 s limit ended its wait, as the proxy saw front give up.
        assert!(failure.message.contains("after front gave up on slow back at "), "{}", failure.message);
        assert!(failure.message.contains("; log of front: "), "{}", failure.message);
        assert!(failure.message.contains("TimeoutError"), "{}", failure.message);
        assert_eq!(report.vulnerabilities.len(), 1, "{summary}");
    }
    assert_eq!(starts, 1, "the runner ran every execution without being started again");
}

#[tokio::test(flavor = "current_thread")]
async fn the_same_executions_come_out_of_a_command_and_a_runner() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let python = python_env();
    let logs = logs("same");
    let (mut system, front) = start_pair(&logs).await;
    let test = tests_python().join("filibuster_total.py");
    let vars = [("FRONT_URL", front)];
    let config = Config { deadline: Duration::from_secs(20), ..Config::default() };
    let command = python.command(&vars, &test.display().to_string());
    let by_command = cloture::explore(&config, system.command_test(&command)).await.expect("it completes");
    let runner = python.command(&vars, &format!("-m cloture.runner {}", test.display()));
    let by_runner = cloture::explore(&config, system.runner_test(&runner)).await.expect("it completes");
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();
    assert_eq!(outcomes(&by_command), outcomes(&by_runner));
}

// ---- The pytest plugin: `pytest --cloture-runner` (clients/python/src/cloture/pytest_plugin.py) ----

/// Why pytest cannot be imported by the test's Python, or `None` when it can.
fn pytest_missing(python: &PythonEnv) -> Option<String> {
    let out = python.run(&["-c", "import pytest"]);
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).trim().to_string())
}

/// Fails, saying why, when pytest is missing: the pytest runner would go untested without anyone noticing.
fn require_pytest(python: &PythonEnv) {
    if let Some(why) = pytest_missing(python) {
        panic!(
            "PYTEST IS NOT INSTALLED, so cloture's pytest plugin cannot be tested: pip could not install \
             clients/python[pytest] into the test's virtual environment (is PyPI reachable?): {why}"
        );
    }
}

/// `-m pytest` with the plugin (named with `-p`, so that it loads also from `PYTHONPATH`), no cache written
/// into the source tree, on `tests` (node ids or files of `engine/tests/python`).
fn pytest_args(tests: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["-m", "pytest", "-p", "no:cacheprovider", "-p", "cloture.pytest_plugin"].map(String::from).into();
    args.extend(tests.iter().map(|test| tests_python().join(test).display().to_string()));
    args
}

/// An exploration of a fresh pair with a runner (`python ARGS`): its report and how often the runner started.
async fn explore_with_runner(name: &str, args: &str) -> (Report, usize) {
    let logs = logs(name);
    let (mut system, front) = start_pair(&logs).await;
    let runner = python_env().command(&[("FRONT_URL", front)], args);
    let config = Config { deadline: Duration::from_secs(20), ..Config::default() };
    let report = cloture::explore(&config, system.runner_test(&runner)).await;
    let starts = system.runner_starts();
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();
    (report.expect("the exploration completes"), starts)
}

#[tokio::test(flavor = "current_thread")]
async fn the_pytest_runner_starts_once_and_finds_what_the_plain_runner_finds() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    require_pytest(python_env());
    let test = tests_python().join("filibuster_total.py");
    let plain = format!("-m cloture.runner {}:test_total", test.display());
    let (by_plain, _) = explore_with_runner("plain", &plain).await;
    // With a test whose fixtures of session and function scope pass only when every execution has its own.
    let pytest = pytest_args(&["filibuster_total.py::test_total", "pytest_fixtures.py"]).join(" ");
    let pytest = format!("{pytest} --cloture-runner");
    let (by_pytest, starts) = explore_with_runner("pytest", &pytest).await;

    let summary = by_pytest.terminal_summary();
    assert_eq!(outcomes(&by_plain), outcomes(&by_pytest), "{summary}");
    assert_eq!(by_pytest.summary.executions, 7, "{summary}");
    assert_eq!(starts, 1, "the pytest runner ran every execution without being started again");
    let failing: Vec<_> = by_pytest.executions.iter().filter_map(|e| e.failure.as_ref()).collect();
    assert_eq!(failing.len(), 1, "{summary}");
    // The node id and the assertion's own text, located in the test, as the plain runner words it.
    let said = "filibuster_total.py::test_total: AssertionError: unexpected answer under a fault on back: 500";
    assert!(failing[0].message.contains(said), "{}", failing[0].message);
    assert!(failing[0].message.contains("(at tests/python/filibuster_total.py:"), "{}", failing[0].message);
}

#[test]
fn a_plain_pytest_run_is_unchanged_by_the_plugin() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let python = python_env();
    require_pytest(python);
    let run = |extra: &[&str]| {
        let mut args = pytest_args(&["pytest_fixtures.py"]);
        args.extend(extra.iter().map(|arg| arg.to_string()));
        python.run(&args)
    };
    let plain = run(&[]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert!(plain.status.success(), "{stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(!stdout.contains("cloture.pytest_plugin:"), "the plugin spoke in a plain run: {stdout}");
    if python.path.is_none() {
        // Installed, the package brings the plugin to every pytest run (its `pytest11` entry point).
        let help = python.run(&["-m", "pytest", "-p", "no:cacheprovider", "--help"]);
        assert!(String::from_utf8_lossy(&help.stdout).contains("--cloture-runner"), "the plugin is not installed");
    }
    // The option outside an exploration: refused, saying why.
    let outside = run(&["--cloture-runner"]);
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert_eq!(outside.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("CLOTURE_COORDINATOR is not set"), "{stderr}");
}

#[tokio::test(flavor = "current_thread")]
async fn reference_values_catch_a_fallback_that_hides_a_failure() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let python = python_env();
    let logs = logs("reference");
    let (mut system, front) = start_pair(&logs).await;
    let test = tests_python().join("reference_total.py");
    let runner =
        python.command(&[("FRONT_URL", front)], &format!("-m cloture.runner {}:test_total_or_zero", test.display()));
    let config = Config { deadline: Duration::from_secs(20), ..Config::default() };
    let report = cloture::explore(&config, system.runner_test(&runner)).await;
    let references = system.coordinator.references();
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();

    let report = report.expect("the exploration completes");
    assert_eq!(references.get("front:total"), Some(&serde_json::json!({"total": 6})));
    // Every fault front handles becomes a 200 {"total": 0}: not the fault-free answer.
    common::assert_fallbacks_are_caught(&report);
}

#[tokio::test(flavor = "current_thread")]
async fn a_runner_busy_past_the_deadline_is_killed_and_started_again() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let python = python_env();
    let logs = logs("deadline");
    let (mut system, front) = start_pair(&logs).await;
    let test = tests_python().join("reference_total.py");
    let spec = format!("-m cloture.runner {}:test_slow_when_faulted", test.display());
    let runner = python.command(&[("FRONT_URL", front)], &spec);
    let config =
        Config { deadline: Duration::from_secs(2), max_executions: Some(4), reduce: false, ..Config::default() };
    let report = cloture::explore(&config, system.runner_test(&runner)).await;
    let starts = system.runner_starts();
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();

    let report = report.expect("the exploration completes");
    let summary = report.terminal_summary();
    assert_eq!(report.executions.len(), 4, "{summary}");
    let (references, faulted): (Vec<_>, Vec<_>) = report.executions.iter().partition(|e| e.reference);
    assert!(references.iter().all(|e| e.outcome == Outcome::Pass), "{summary}");
    for execution in &faulted {
        let class = execution.failure.as_ref().map(|f| f.class);
        assert!(matches!(class, Some(FailureClass::Timeout | FailureClass::Hang)), "{summary}");
    }
    // Started for the first execution, and again after the first hang (the second hang ends the run).
    assert_eq!(starts, 2, "{summary}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_entry_proxy_s_answers_show_a_200_that_hides_a_failure_to_a_test_that_accepts_anything() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let logs = logs("masked");
    let (mut system, front) = start_pair(&logs).await;
    let command =
        format!("python3 -c \"import urllib.request; urllib.request.urlopen('{front}/total-or-zero').read()\"");
    let config = Config { deadline: Duration::from_secs(20), ..Config::default() };
    let report = cloture::explore(&config, system.command_test(&command)).await;
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();

    let report = report.expect("the exploration completes");
    let summary = report.terminal_summary();
    let masked: Vec<_> = report
        .executions
        .iter()
        .filter(|e| e.warnings.iter().any(|w| w.kind == cloture::report::WarningKind::MaskedFailure))
        .collect();
    // connect and the three statuses: front answers 200 {"total": 0}; the fault-free answer was {"total": 6}.
    assert_eq!(masked.len(), 4, "{summary}");
    assert!(masked.iter().all(|e| e.outcome == Outcome::Pass && !e.faults.is_empty()), "{summary}");
}

// Proxy mode tells why: front's /both calls back and other and crashes on an error status from either.

/// The trio behind proxies through the `cloture` command line (front → back, front → other, test → front):
/// the services file's path and the entry proxy's URL.
fn trio_file(dir: &Path) -> (PathBuf, String) {
    let python = tests_python();
    let ports = free_ports(6);
    let (back, other, front, to_back, to_other, to_front) =
        (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);
    let service = |name: &str, script: &str, port: u16| serde_json::json!({ "name": name, "command": format!("python3 {}/{script} {port}", python.display()), "port": port });
    let mut front_service = service("front", "front.py", front);
    front_service["env"] = serde_json::json!({
        "BACK_URL": format!("http://127.0.0.1:{to_back}"),
        "OTHER_URL": format!("http://127.0.0.1:{to_other}"),
    });
    let proxy = |from: &str, to: &str, listen: u16, upstream: u16| serde_json::json!({ "from": from, "to": to, "listen": listen, "upstream": format!("127.0.0.1:{upstream}") });
    let file = serde_json::json!({
        "services": [service("back", "back.py", back), service("other", "back.py", other), front_service],
        "proxies": [proxy("front", "back", to_back, back), proxy("front", "other", to_other, other),
                    proxy("test", "front", to_front, front)],
    });
    let path = dir.join("trio.json");
    std::fs::write(&path, file.to_string()).expect("services file written");
    (path, format!("http://127.0.0.1:{to_front}"))
}

fn cloture(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cloture")).args(args).env_remove("RUST_LOG").output().expect("cloture runs")
}

#[test]
fn in_proxy_mode_a_crash_on_each_dependency_is_its_own_vulnerability_in_the_service_s_words() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = logs("trio");
    std::fs::create_dir_all(&dir).expect("a folder");
    let (services, front) = trio_file(&dir);
    let test = format!("python3 {}/check.py {front} /both 12", tests_python().display());
    let report_dir = dir.join("report");
    let (services, report_dir) = (services.display().to_string(), report_dir.display().to_string());
    let common =
        ["--functional-test", &test, "--services", &services, "--report-dir", &report_dir, "--max-faults", "1"];
    let explored = cloture(&[&["explore"][..], &common].concat());
    let summary = String::from_utf8_lossy(&explored.stdout).to_string();
    assert_eq!(explored.status.code(), Some(0), "{summary}{}", String::from_utf8_lossy(&explored.stderr));
    let report = Report::read(&Path::new(&report_dir).join("report.json")).expect("a report");

    // One vulnerability per faulted dependency: back's statuses and other's statuses, each a crash of front.
    let mut callees: Vec<Vec<String>> = report.vulnerabilities.iter().map(|v| v.callees.clone()).collect();
    callees.sort();
    assert_eq!(callees, [vec!["back".to_string()], vec!["other".to_string()]], "{summary}");
    for v in &report.vulnerabilities {
        assert_eq!(v.class, FailureClass::Crash, "{summary}");
        assert_eq!(v.family, "status", "{summary}");
        assert_eq!(v.executions.len(), 3, "one per status: {summary}");
        // Why, in front's words: its log during the execution, and the 500 the entry proxy passed on.
        let front_log = v.said.logs.iter().find(|log| log.service == "front").expect("front's log");
        assert!(
            front_log.lines.iter().any(|line| line.contains("urllib.error.HTTPError: HTTP Error")),
            "{front_log:?}"
        );
        let answer = v.said.answers.iter().find(|a| a.to == "front").expect("front's 500");
        assert_eq!((answer.status, answer.body.as_str()), (500, r#"{"error": "internal server error"}"#));
        // Named as the wire shows the call.
        assert_eq!(v.call_sites.len(), 1, "{summary}");
        assert_eq!(v.call_sites[0].to_string(), format!("front → {} GET /numbers", v.callees[0]), "{summary}");
    }
    assert!(summary.contains("handle the failures of front's calls to "), "{summary}");
    assert_eq!(summary.matches("front said: urllib.error.HTTPError: HTTP Error 5").count(), 2, "{summary}");
    // Where front's own code raised, from its traceback (the frames in Python's library left out).
    let numbers_line = std::fs::read_to_string(tests_python().join("front.py"))
        .expect("front.py")
        .lines()
        .position(|line| line.contains("with urllib.request.urlopen(request, timeout=0.5)"))
        .expect("front calls urlopen")
        + 1;
    let raised = format!("tests/python/front.py:{numbers_line}:0 (from the log of front)");
    assert_eq!(summary.matches(&format!("failed at:  {raised}")).count(), 2, "{summary}");
    assert!(!summary.contains("'failed at'"), "{summary}");

    // A replay writes its own logs: the exploration's are left as they were.
    let front_log = Path::new(&report_dir).join("services/front.log");
    let before = std::fs::read(&front_log).expect("front's log");
    let id = &report.vulnerabilities[0].executions[0];
    let replayed = cloture(&[&["replay", id.as_str()][..], &common].concat());
    assert_eq!(replayed.status.code(), Some(0), "{}", String::from_utf8_lossy(&replayed.stderr));
    let said = String::from_utf8_lossy(&replayed.stdout);
    assert!(said.contains(&format!("logs of this replay: {report_dir}/replays/{id}")), "{said}");
    assert_eq!(std::fs::read(&front_log).expect("front's log"), before);
    let replay_log = std::fs::read_to_string(Path::new(&report_dir).join("replays").join(id).join("front.log"));
    assert!(replay_log.expect("the replay's log of front").contains("HTTPError"));

    // A replay of an execution the report does not have starts nothing.
    let unknown = cloture(&[&["replay", "0000000000ff"][..], &common].concat());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("0000000000ff"));
    assert!(!Path::new(&report_dir).join("replays/0000000000ff").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_test_whose_time_limit_is_not_longer_than_a_service_s_is_told_so_with_both_limits() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    // front gives back and other 0.5 s each; the test gives front 0.5 s too.
    let (report, summary) = explore_trio_slowly("collide", "/both 12 0.5", &["--max-faults", "1"]);

    // Slow back and slow other: one problem, the test's time limit, not a hang and not a crash.
    assert_eq!(report.vulnerabilities.len(), 1, "{summary}");
    let v = &report.vulnerabilities[0];
    assert_eq!(v.class, FailureClass::Rejected, "{summary}");
    assert_eq!(v.executions.len(), 2, "{summary}");
    assert!(v.title.starts_with("the test gives up before the services' own time limits end"), "{summary}");
    assert!(v.message.ends_with(cloture::report::LONGER_TEST_LIMIT), "{}", v.message);
    assert!(v.message.contains("the test gave up on its call to front after"), "{}", v.message);
    assert!(v.message.contains("while front waited on slow"), "{}", v.message);
    assert!(summary.contains("     why:        the test gave up on its call to front after"), "{summary}");
    assert!(summary.contains("next: give the test a time limit longer than its services'"), "{summary}");
    // front's limit is learnt from when it gave up: its 0.5 s.
    let learnt =
        v.message.split(" for ").last().and_then(|rest| rest.split("ms").next()).and_then(|ms| ms.parse().ok());
    assert!(learnt.is_some_and(|ms: f64| (450.0..1500.0).contains(&ms)), "{}", v.message);
}

/// An exploration of the trio with only `slow` faults and `check.py ENTRY CHECK` as the test (`CHECK`: the
/// path, the total and the test's time limit), through the command line with `flags`: the report and the
/// summary.
fn explore_trio_slowly(name: &str, check: &str, flags: &[&str]) -> (Report, String) {
    let dir = logs(name);
    std::fs::create_dir_all(&dir).expect("a folder");
    let (services, front) = trio_file(&dir);
    let test = format!("python3 {}/check.py {front} {check}", tests_python().display());
    let report_dir = dir.join("report").display().to_string();
    let services = services.display().to_string();
    let args = ["explore", "--functional-test", &test, "--services", &services, "--report-dir", &report_dir];
    let explored = cloture(&[&args[..], &["--faults", "slow"], flags].concat());
    let summary = String::from_utf8_lossy(&explored.stdout).to_string();
    assert_eq!(explored.status.code(), Some(0), "{summary}{}", String::from_utf8_lossy(&explored.stderr));
    let report = Report::read(&Path::new(&report_dir).join("report.json")).expect("a report");
    std::fs::remove_dir_all(&dir).ok();
    (report, summary)
}

fn python_available() -> bool {
    common::available("python3")
}

fn tests_python() -> PathBuf {
    tests_dir("python")
}

fn logs(name: &str) -> PathBuf {
    common::scratch("python-client", name)
}

#[test]
fn waits_that_each_keep_their_limit_but_add_up_past_the_test_s_are_told_apart() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    // front waits at most 0.5 s on back, then at most 0.5 s on other; the test waits 0.9 s.
    let (report, summary) = explore_trio_slowly("add-up", "/partial 12 0.9", &[]);

    // One slow dependency: front answers 503 in time. Both: 1 s of waits, each within its limit.
    assert_eq!(report.vulnerabilities.len(), 1, "{summary}");
    let v = &report.vulnerabilities[0];
    assert_eq!(v.class, FailureClass::Rejected, "{summary}");
    let faults: Vec<Vec<Fault>> = report
        .executions
        .iter()
        .filter(|e| v.executions.contains(&e.id))
        .map(|e| e.faults.iter().map(|f| f.fault).collect())
        .collect();
    assert_eq!(faults, [vec![Fault::Slow, Fault::Slow]], "{summary}");
    assert!(v.title.starts_with("front has no overall time limit"), "{summary}");
    assert!(v.message.ends_with(cloture::report::OVERALL_LIMIT), "{}", v.message);
    assert!(v.message.contains("while front waited on slow back for"), "{}", v.message);
    assert!(v.message.contains("then slow other for"), "{}", v.message);
    assert!(summary.contains("next: give the service an overall time limit"), "{summary}");
    assert!(!summary.contains("give the test a time limit longer"), "{summary}");
}
