//! Process lifetime under signals (audit defects D1 and D2): `cloture explore` stopped by SIGTERM, by
//! Ctrl-C during start-up, or killed outright leaves no service or test command running, and (when it can)
//! writes its report marked incomplete. Loopback only; every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn python() -> bool {
    Command::new("python3").arg("--version").output().is_ok_and(|out| out.status.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cloture-signals-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A process is gone when it no longer exists or is a zombie waiting to be reaped.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_pid(path: &Path) -> i32 {
    wait_until(Duration::from_secs(20), "a pid file", || {
        std::fs::read_to_string(path).is_ok_and(|t| t.trim().parse::<i32>().is_ok())
    });
    std::fs::read_to_string(path).expect("pid file").trim().parse().expect("a pid")
}

/// `cloture explore` with `services` (JSON) and `test`, reports in `dir`.
fn cloture(dir: &Path, services: serde_json::Value, test: &str) -> Child {
    let file = dir.join("services.json");
    std::fs::write(&file, services.to_string()).expect("services file");
    Command::new(env!("CARGO_BIN_EXE_cloture"))
        .args(["explore", "--functional-test", test, "--deadline", "60", "--quiet", "--services"])
        .arg(&file)
        .arg("--report-dir")
        .arg(dir.join("report"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cloture starts")
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on the pid of a child this test started.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

fn exit_code(child: &mut Child) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            return status.code();
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("cloture did not end within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn incomplete_report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report/report.json")).expect("a report was written");
    let report: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(report["summary"]["complete"], false, "{report:#}");
    report
}

/// A service that writes its pid, then sleeps without ever listening: never ready.
fn never_ready(pid_file: &Path) -> serde_json::Value {
    let command = format!("sh -c 'echo $$ > {}; exec sleep 300'", pid_file.display());
    serde_json::json!({ "services": [{ "name": "a", "command": command, "port": free_port() }] })
}

#[test]
fn d1_sigterm_ends_the_services_and_the_test_command_and_writes_an_incomplete_report() {
    ends_everything_on(libc::SIGTERM, "SIGTERM");
}

#[test]
fn d1_sighup_ends_the_services_and_the_test_command_and_writes_an_incomplete_report() {
    ends_everything_on(libc::SIGHUP, "SIGHUP");
}

fn ends_everything_on(sent: i32, name: &str) {
    if !python() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = scratch(name);
    let port = free_port();
    let back = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/back.py");
    let service_pid = dir.join("service.pid");
    let command = format!("sh -c 'echo $$ > {}; exec python3 {} {port}'", service_pid.display(), back.display());
    let services = serde_json::json!({ "services": [{ "name": "back", "command": command, "port": port }] });
    // The test command hangs, as a test under way would when the signal comes.
    let test_pid = dir.join("test.pid");
    let mut cloture = cloture(&dir, services, &format!("echo $$ > {}; exec sleep 300", test_pid.display()));
    let (service, test) = (read_pid(&service_pid), read_pid(&test_pid));
    signal(&cloture, sent);
    assert_eq!(exit_code(&mut cloture), Some(128 + sent));
    wait_until(Duration::from_secs(2), "the service ended", || !alive(service));
    assert!(!alive(test), "the test command ended");
    let report = incomplete_report(&dir);
    assert!(report["summary"]["stopped"].as_str().unwrap_or_default().contains(name), "{report:#}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn d2_ctrl_c_during_start_up_ends_the_services_already_started() {
    let dir = scratch("start");
    let pid_file = dir.join("service.pid");
    let mut cloture = cloture(&dir, never_ready(&pid_file), "true");
    let service = read_pid(&pid_file);
    signal(&cloture, libc::SIGINT);
    assert_eq!(exit_code(&mut cloture), Some(128 + libc::SIGINT));
    assert!(!alive(service), "the service started before the signal was stopped");
    let report = incomplete_report(&dir);
    assert_eq!(report["summary"]["executions"], 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn d1_services_end_within_two_seconds_when_cloture_is_killed_outright() {
    let dir = scratch("kill");
    let pid_file = dir.join("service.pid");
    let mut cloture = cloture(&dir, never_ready(&pid_file), "true");
    let service = read_pid(&pid_file);
    signal(&cloture, libc::SIGKILL);
    let _ = cloture.wait();
    wait_until(Duration::from_secs(2), "the service ended with cloture", || !alive(service));
    std::fs::remove_dir_all(&dir).ok();
}
