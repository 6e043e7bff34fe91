//! External systems: services in their own processes, in any language, and functional tests that are
//! commands (Filibuster's model: the command's exit status is the verdict).
//!
//! A services file (JSON, see docs/external.md) lists the services — started by cloture from a command, or
//! attached when already running — each with its port and a readiness path, and optional proxies. Services
//! built with cloture's client and server get the coordinator's address and every service's name in their
//! environment; services cloture cannot instrument sit behind proxies (see [`crate::proxy`]). Services
//! started by cloture run in their own process groups (a Ctrl-C reaches cloture only, which finishes the
//! current execution, writes the report and stops them), and are stopped with SIGTERM, then SIGKILL after
//! five seconds; on Linux they also end when cloture dies (see [`process`]). A service that exits during
//! the exploration stops it cleanly with a message.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::process::Child;

use crate::cancel::Cancel;
use crate::context::Context;
use crate::coordinator::{Coordinator, COORDINATOR_ENV};
use crate::proxy::Proxy;
use crate::registry::SERVICES_ENV;
use crate::text::{bounded, printable};
use crate::trace::ServiceLog;

mod process;
mod runner;
mod services;

use process::signal_group;
pub use process::{KEPT_OUTPUT, MESSAGE_LENGTH};
pub use services::{ProxySpec, ServiceSpec, ServicesFile};

/// A started service.
struct Running {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

/// The system under test, started (or attached) and supervised.
pub struct System {
    pub coordinator: Coordinator,
    running: Arc<Mutex<Vec<Running>>>,
    proxies: Vec<Proxy>,
    stopping: Arc<AtomicBool>,
    /// Stopped, with the reason, when a service exits during the exploration.
    cancel: Cancel,
    watcher: Option<tokio::task::JoinHandle<()>>,
    /// Where the services' logs go (and the runner's).
    logs: PathBuf,
    /// The functional test's runner, when the test is one (see [`System::runner_test`]).
    runner: std::sync::OnceLock<runner::Runner>,
}

impl System {
    /// Starts the coordinator, the proxies and the services, and waits until every service is ready.
    /// `logs` receives one log file per started service. If a service dies later, `cancel` is stopped with
    /// the reason.
    pub async fn start(file: &ServicesFile, logs: &Path, cancel: Cancel) -> Result<System, String> {
        std::fs::create_dir_all(logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let coordinator = Coordinator::bind(0).await.map_err(|e| format!("cannot start the coordinator: {e}"))?;
        let services_env: Vec<String> =
            file.services.iter().map(|s| format!("{}=127.0.0.1:{}", s.name, s.port)).collect();
        for service in &file.services {
            crate::registry::register_service(&service.name, &format!("127.0.0.1:{}", service.port));
        }
        let mut system = System {
            coordinator,
            running: Arc::new(Mutex::new(Vec::new())),
            proxies: Vec::new(),
            stopping: Arc::new(AtomicBool::new(false)),
            cancel,
            watcher: None,
            logs: logs.to_path_buf(),
            runner: std::sync::OnceLock::new(),
        };
        // Whatever fails from here on, what was started so far (coordinator, proxies, services) is stopped.
        if let Err(why) = system.launch(file, logs, &services_env).await {
            system.stop().await;
            return Err(why);
        }
        system.watch();
        Ok(system)
    }

    /// Starts the proxies and the services, and waits until every service is ready.
    async fn launch(&mut self, file: &ServicesFile, logs: &Path, services_env: &[String]) -> Result<(), String> {
        for spec in &file.proxies {
            let health = self.coordinator.health();
            let proxy = Proxy::start_with(spec, self.coordinator.current(), crate::net::Limits::default(), health)
                .await
                .map_err(|e| format!("proxy {} → {}: {e}", spec.from, spec.to))?;
            self.proxies.push(proxy);
        }
        for service in &file.services {
            let Some(command) = &service.command else { continue };
            if TcpStream::connect(("127.0.0.1", service.port)).await.is_ok() {
                return Err(format!(
                    "port {} of service `{}` is already in use: stop what listens there, or remove `command` to attach to it",
                    service.port, service.name
                ));
            }
            let log = logs.join(format!("{}.log", service.name));
            let env = [
                (COORDINATOR_ENV.to_string(), self.coordinator.url()),
                (SERVICES_ENV.to_string(), services_env.join(",")),
            ];
            let env = env.into_iter().chain(service.env.clone());
            let child = process::spawn_service(command, &log, env)
                .map_err(|e| format!("cannot start service `{}`: {e}", service.name))?;
            self.running.lock().expect("services poisoned").push(Running {
                name: service.name.clone(),
                child: Some(child),
                log,
            });
        }
        for service in &file.services {
            self.wait_ready(service).await?;
        }
        Ok(())
    }

    async fn wait_ready(&self, service: &ServiceSpec) -> Result<(), String> {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}{}", service.port, service.ready);
        let client = crate::Client::new().with_timeout(Duration::from_secs(1));
        // Whether it ever accepted a connection: a service that does but never answers GET over HTTP/1.1
        // may speak only HTTP/2 or gRPC.
        let mut accepted = false;
        loop {
            if TcpStream::connect(("127.0.0.1", service.port)).await.is_ok() {
                if service.ready == services::READY_TCP {
                    return Ok(());
                }
                accepted = true;
                if let Ok(response) = client.get(url.as_str()).send().await {
                    if response.status().as_u16() < 500 {
                        return Ok(());
                    }
                }
            }
            if let Some(why) = self.exited(&service.name) {
                return Err(why);
            }
            if self.cancel.is_stopped() {
                return Err(format!(
                    "{} while waiting for service `{}` to be ready",
                    self.cancel.describe(),
                    service.name
                ));
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(not_ready(service, &url, accepted));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Why `name` is not running any more, with the end of its log; `None` while it runs.
    fn exited(&self, name: &str) -> Option<String> {
        let mut running = self.running.lock().expect("services poisoned");
        let service = running.iter_mut().find(|r| r.name == name)?;
        let status = service.child.as_mut()?.try_wait().ok()??;
        Some(format!("service `{name}` exited ({status}){}", log_tail(&service.log)))
    }

    /// Checks the services every 100 ms; when one exits, records why and stops the exploration.
    fn watch(&mut self) {
        let running = Arc::clone(&self.running);
        let stopping = Arc::clone(&self.stopping);
        let cancel = self.cancel.clone();
        self.watcher = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let mut services = running.lock().expect("services poisoned");
                for service in services.iter_mut() {
                    let Some(child) = service.child.as_mut() else { continue };
                    if let Ok(Some(status)) = child.try_wait() {
                        let why = format!("service `{}` exited ({status}){}", service.name, log_tail(&service.log));
                        tracing::warn!(%why, "stopping after the current execution");
                        cancel.stop_because(why);
                        service.child = None;
                        return;
                    }
                }
            }
        }));
    }

    /// Trouble the coordinator and the proxies had accepting connections (out of file descriptors): set
    /// [`crate::Config::harness`] to it, so that executions it spoils are harness errors, not findings.
    pub fn health(&self) -> crate::net::HarnessHealth {
        self.coordinator.health()
    }

    /// Why the exploration had to stop because a service exited, if it had to.
    pub fn failure(&self) -> Option<String> {
        self.cancel.reason()
    }

    /// Where the services listen (loopback).
    pub fn addresses(&self, file: &ServicesFile) -> Vec<std::net::SocketAddr> {
        file.services.iter().map(|s| std::net::SocketAddr::from(([127, 0, 0, 1], s.port))).collect()
    }

    /// The executables of the services started here (for coverage), each once.
    pub fn binaries(&self) -> Vec<PathBuf> {
        let running = self.running.lock().expect("services poisoned");
        let mut binaries: Vec<PathBuf> = running
            .iter()
            .filter_map(|r| r.child.as_ref()?.id())
            .filter_map(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
            .collect();
        binaries.sort();
        binaries.dedup();
        binaries
    }

    /// Runs `future` (an in-process functional test) as the coordinator's current execution, so that
    /// proxies and services reached without context attribute its requests to the execution it runs in.
    /// Explore with `Config::jobs` = 1: there is one current execution.
    pub async fn in_execution<F: std::future::Future>(&self, future: F) -> F::Output {
        self.coordinator.set_current(Context::current().map(|context| context.execution));
        let _current = ClearCurrent(self.coordinator.current());
        future.await
    }

    /// The functional test: runs `command` with `sh -c` once per execution; exit status 0 passes. Executions
    /// of an external system run one at a time (`Config::jobs` = 1): requests without context belong to the
    /// one current execution.
    pub fn command_test<'a>(
        &'a self,
        command: &str,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + 'a>> + 'a {
        let command = command.to_string();
        move || {
            let command = command.clone();
            let coordinator = &self.coordinator;
            Box::pin(async move {
                let execution = Context::current().map(|context| context.execution);
                coordinator.set_current(execution.clone());
                // Cleared however the command ends, also when the deadline drops this future.
                let _current = ClearCurrent(coordinator.current());
                let url = coordinator.url();
                let test = process::run_test_command(&command, &url, execution.as_ref().map(|e| e.id()));
                self.with_logs(test).await
            })
        }
    }

    /// The functional test as a runner (docs/runner.md): `command` starts once (`exec`ed like a service's
    /// command, its output in `runner.log` next to the services' logs) and runs the test once per execution
    /// as the coordinator offers it; its verdict is the execution's. A runner that exits is started again
    /// for the next execution; one still busy at the deadline is killed and started again. It is told the
    /// exploration is over and stopped by [`System::stop`]. One runner per system.
    pub fn runner_test<'a>(
        &'a self,
        command: &str,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + 'a>> + 'a {
        let runner = self.runner.get_or_init(|| runner::Runner::new(command, self.logs.join("runner.log")));
        move || {
            let coordinator = &self.coordinator;
            Box::pin(async move {
                let Some(execution) = Context::current().map(|context| context.execution) else {
                    return Err("the runner runs tests only inside an execution".to_string());
                };
                coordinator.set_current(Some(Arc::clone(&execution)));
                let _current = ClearCurrent(coordinator.current());
                self.with_logs(runner.run(coordinator, execution.id())).await
            })
        }
    }

    /// Runs `test`; what the started services write to their logs from now on is read when the execution is
    /// over (the last lines of each, bounded): why a service answered as it did, in its own words. When the
    /// test fails, its message ends with the last two of those lines of each service so far.
    async fn with_logs(&self, test: impl std::future::Future<Output = Result<(), String>>) -> Result<(), String> {
        let marks: Vec<(String, PathBuf, u64)> = {
            let running = self.running.lock().expect("services poisoned");
            running.iter().map(|r| (r.name.clone(), r.log.clone(), log_length(&r.log))).collect()
        };
        if let Some(context) = Context::current() {
            let marks = marks.clone();
            context.execution.read_logs_when_over(Box::new(move || logged_since(&marks)));
        }
        test.await.map_err(|message| {
            let logs = logged_since(&marks);
            let telling = logs.iter().map(|log| (&log.service, log.telling(2))).filter(|(_, lines)| !lines.is_empty());
            let said = telling.map(|(service, lines)| format!("; log of {service}: {}", lines.join(" / ")));
            format!("{message}{}", bounded(&said.collect::<String>(), MESSAGE_LENGTH))
        })
    }

    /// How many times the runner was started (0 without one; 1 when it never had to be restarted).
    pub fn runner_starts(&self) -> usize {
        self.runner.get().map_or(0, runner::Runner::starts)
    }

    /// Stops proxies, the services started here (SIGTERM to each one's process group, SIGKILL after 5 s)
    /// and the coordinator.
    pub async fn stop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
        if let Some(runner) = self.runner.get() {
            runner.stop(&self.coordinator).await;
        }
        for proxy in self.proxies.drain(..) {
            proxy.stop().await;
        }
        let children: Vec<(String, Child)> = {
            let mut running = self.running.lock().expect("services poisoned");
            running.iter_mut().filter_map(|r| r.child.take().map(|c| (r.name.clone(), c))).collect()
        };
        for (name, mut child) in children {
            // Each service has its own process group: whatever it started goes with it.
            let group = child.id();
            if let Some(group) = group {
                signal_group(group, libc::SIGTERM);
            }
            match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(service = %name, "ignored SIGTERM for 5 s; killing it");
                    if let Some(group) = group {
                        signal_group(group, libc::SIGKILL);
                    }
                    let _ = child.kill().await;
                }
            }
        }
        self.coordinator.close();
    }
}

/// Clears the coordinator's current execution when dropped.
struct ClearCurrent(crate::coordinator::Current);

impl Drop for ClearCurrent {
    fn drop(&mut self) {
        if let Ok(mut current) = self.0.lock() {
            *current = None;
        }
    }
}

/// Why `service` is not ready after 20 s, with what to do when it accepted connections all the same.
fn not_ready(service: &ServiceSpec, url: &str, accepted: bool) -> String {
    let name = &service.name;
    if service.ready == services::READY_TCP {
        return format!("service `{name}` did not accept a connection on port {} within 20 s", service.port);
    }
    if accepted {
        return format!(
            "service `{name}` accepts connections on port {} but did not answer GET {url} over HTTP/1.1 below 500 \
             within 20 s: give the path of a health check as its \"ready\", or \"{}\" when it speaks only HTTP/2 \
             or gRPC (ready once it accepts a connection)",
            service.port,
            services::READY_TCP
        );
    }
    format!("service `{name}` was not ready at {url} within 20 s (it never accepted a connection)")
}

fn log_length(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// What each service wrote to its log since its mark (read from at most its last [`KEPT_OUTPUT`] bytes):
/// the last lines of each log that grew.
fn logged_since(marks: &[(String, PathBuf, u64)]) -> Vec<ServiceLog> {
    use std::io::{Read, Seek, SeekFrom};
    let mut logs = Vec::new();
    for (name, log, mark) in marks {
        let length = log_length(log);
        if length <= *mark {
            continue;
        }
        let mut added = Vec::new();
        if let Ok(mut file) = std::fs::File::open(log) {
            let _ = file.seek(SeekFrom::Start((*mark).max(length.saturating_sub(KEPT_OUTPUT as u64))));
            let _ = file.take(KEPT_OUTPUT as u64).read_to_end(&mut added);
        }
        logs.extend(ServiceLog::of(name, &String::from_utf8_lossy(&added)));
    }
    logs
}

/// The last two lines of a service's log (read from its last [`KEPT_OUTPUT`] bytes, made printable and
/// bounded), and where the whole log is.
fn log_tail(log: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut tail = Vec::new();
    if let Ok(mut file) = std::fs::File::open(log) {
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(KEPT_OUTPUT as u64)));
        let _ = file.take(KEPT_OUTPUT as u64).read_to_end(&mut tail);
    }
    let text = String::from_utf8_lossy(&tail);
    let last: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).rev().take(2).map(printable).collect();
    if last.is_empty() {
        format!("; log: {}", log.display())
    } else {
        let last: Vec<String> = last.into_iter().rev().collect();
        format!(": {} (log: {})", bounded(&last.join(" / "), MESSAGE_LENGTH), log.display())
    }
}
