//! The one place that starts processes for an external system: service commands, the functional test's
//! command and its runner, each with `sh -c` in a process group of its own.
//!
//! Lifetime: a process group is signalled as a whole (the command and whatever it started); on Linux each
//! started process also gets a parent-death signal, so that services end even when cloture is killed
//! with SIGKILL and cannot stop them. Output of the test command is kept bounded: the last
//! [`KEPT_OUTPUT`] bytes of each stream; a background process that escaped the command's process group
//! and still holds its output does not keep the execution open once the command has exited.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use crate::coordinator::COORDINATOR_ENV;
use crate::text::bounded;

/// How much of each output stream of a test command is kept per execution: its end.
pub const KEPT_OUTPUT: usize = 64 * 1024;
/// The longest failure message made from a test command's output.
pub const MESSAGE_LENGTH: usize = 1024;
/// How long the output of an exited test command is still read (background processes may hold it open).
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// `sh -c command` in a process group of its own, ended with its parent on Linux, killed when dropped.
fn shell(command: &str) -> Command {
    let mut process = Command::new("sh");
    process.arg("-c").arg(command).stdin(Stdio::null()).process_group(0).kill_on_drop(true);
    end_with_parent(&mut process);
    process
}

/// Linux: the process receives SIGTERM when cloture dies, however it dies (SIGKILL included). The signal
/// follows `exec`, so a service started with `exec` gets it itself.
#[cfg(target_os = "linux")]
fn end_with_parent(process: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec and only makes async-signal-safe system
    // calls (prctl, getppid, raise) on plain integers.
    unsafe {
        process.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // cloture died between fork and prctl: the signal will never come, act on it now.
            if libc::getppid() != parent as libc::pid_t {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn end_with_parent(_: &mut Command) {}

/// Starts a service's command (`exec`ed by the shell, so that the service is the group leader), its output
/// going to `log`.
pub(super) fn spawn_service(
    command: &str,
    log: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Child, String> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err_file = log_file.try_clone().map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let mut process = shell(&format!("exec {command}"));
    process.envs(env).stdout(log_file).stderr(err_file);
    process.spawn().map_err(|e| e.to_string())
}

/// Starts the functional test's runner (`exec`ed by the shell, as a service), its output going to `log`:
/// a new log for the `first` start of an exploration (as the services' logs are), appended to when the
/// runner is started again after a hang.
pub(super) fn spawn_runner(
    command: &str,
    log: &Path,
    first: bool,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Child, String> {
    let open = || std::fs::OpenOptions::new().create(true).write(true).append(!first).truncate(first).open(log);
    let log_file = open().map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let err_file = log_file.try_clone().map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let mut process = shell(&format!("exec {command}"));
    process.envs(env).stdout(log_file).stderr(err_file);
    process.spawn().map_err(|e| e.to_string())
}

/// Runs the functional test's command once; exit status 0 passes, anything else fails with the end of
/// what it printed (bounded, made printable).
pub(super) async fn run_test_command(command: &str, coordinator: &str, execution: Option<u64>) -> Result<(), String> {
    let mut process = shell(command);
    process.env(COORDINATOR_ENV, coordinator).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(id) = execution {
        process.env("CLOTURE_EXECUTION", id.to_string());
    }
    let mut child = process.spawn().map_err(|e| format!("cannot run the test command: {e}"))?;
    // The command runs in its own process group: at the deadline the whole group is killed, not just `sh`.
    let _group = KillGroup(child.id());
    let stdout = tokio::spawn(keep_end(child.stdout.take().expect("piped")));
    let stderr = tokio::spawn(keep_end(child.stderr.take().expect("piped")));
    let status = child.wait().await.map_err(|e| format!("the test command could not be waited for: {e}"))?;
    // The verdict is in: what the command left running in its group goes too. A process that left the group
    // and still holds the output is not waited for past a short grace.
    if let Some(group) = child.id() {
        signal_group(group, libc::SIGKILL);
    }
    let out = collect(stdout).await;
    let err = collect(stderr).await;
    if status.success() {
        return Ok(());
    }
    Err(failure_message(status, &err, &out))
}

/// What a reader kept, or nothing when it does not finish within the grace (a background process holds
/// the pipe); the reader is dropped then.
async fn collect(reader: tokio::task::JoinHandle<Vec<u8>>) -> Vec<u8> {
    let abort = reader.abort_handle();
    match tokio::time::timeout(OUTPUT_GRACE, reader).await {
        Ok(Ok(kept)) => kept,
        _ => {
            abort.abort();
            Vec::new()
        }
    }
}

/// Reads `stream` to its end, keeping only the last [`KEPT_OUTPUT`] bytes.
async fn keep_end(mut stream: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return kept,
            Ok(read) => {
                kept.extend_from_slice(&buffer[..read]);
                if kept.len() > 2 * KEPT_OUTPUT {
                    kept.drain(..kept.len() - KEPT_OUTPUT);
                }
            }
        }
    }
}

/// `the test command failed (exit status: 1): <last three lines>`, from stderr or else stdout.
fn failure_message(status: ExitStatus, err: &[u8], out: &[u8]) -> String {
    let tail = |bytes: &[u8]| -> String {
        let start = bytes.len().saturating_sub(KEPT_OUTPUT);
        String::from_utf8_lossy(&bytes[start..]).trim().to_string()
    };
    let mut text = tail(err);
    if text.is_empty() {
        text = tail(out);
    }
    // Its last three lines that say something alone (not the `^^^^` under a line of a Python traceback).
    let output = crate::trace::ServiceLog::of("test", &text);
    let last = output.as_ref().map(|output| output.telling(3)).unwrap_or_default();
    let said =
        if last.is_empty() { String::new() } else { format!(": {}", bounded(&last.join(" / "), MESSAGE_LENGTH)) };
    format!("the test command failed ({status}){said}")
}

/// Kills a process group when dropped (the test command and everything it started).
struct KillGroup(Option<u32>);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            signal_group(group, libc::SIGKILL);
        }
    }
}

/// Sends `signal` (`SIGTERM`, `SIGKILL`) to every process of process group `group`. Harmless when the group
/// already exited. A system call, not the `kill` program: minimal systems (Debian containers) lack procps.
pub(super) fn signal_group(group: u32, signal: libc::c_int) {
    // Never 0 or a negative pid: `kill(0, …)` or `kill(-1, …)` would reach far more than the group.
    let Ok(group) = libc::pid_t::try_from(group) else { return };
    if group > 1 {
        // SAFETY: kill(2) takes plain integers and has no memory effects; errors (ESRCH) are ignored.
        unsafe {
            libc::kill(-group, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn d3_a_huge_output_line_gives_a_bounded_message() {
        let command = "head -c 20000000 /dev/zero | tr '\\0' a; echo; exit 1";
        let message = run_test_command(command, "http://127.0.0.1:9", None).await.expect_err("fails");
        assert!(message.len() < MESSAGE_LENGTH + 100, "{} bytes", message.len());
        assert!(message.starts_with("the test command failed (exit status: 1): aaa"), "{}", &message[..80]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn d7_a_background_process_holding_the_output_does_not_hold_the_execution() {
        let started = std::time::Instant::now();
        let result = run_test_command("setsid sleep 3 & exit 0", "http://127.0.0.1:9", None).await;
        assert_eq!(result, Ok(()));
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn d17_escape_sequences_in_test_output_are_neutralised() {
        let command = "printf '\\033]0;PWNED\\007\\033[2J\\033[31mFAKE\\n' >&2; exit 1";
        let message = run_test_command(command, "http://127.0.0.1:9", None).await.expect_err("fails");
        assert!(!message.chars().any(char::is_control), "{message:?}");
        assert!(message.contains("FAKE"), "{message}");
    }
}
