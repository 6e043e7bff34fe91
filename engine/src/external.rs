//! External systems: services in their own processes, in any language, and functional tests that are
//! commands (Filibuster's model: the command's exit status is the verdict).
//!
//! A services file (JSON, see docs/external.md) lists the services — started by cloture from a command, or
//! attached when already running — each with its port and a readiness path, and optional proxies. Services
//! built with cloture's client and server get the coordinator's address and every service's name in their
//! environment; services cloture cannot instrument sit behind proxies (see [`crate::proxy`]). Services
//! started by cloture run in their own process groups (a Ctrl-C reaches cloture only, which finishes the
//! current execution, writes the report and stops them), and are stopped with SIGTERM, then SIGKILL after
//! five seconds. A service that exits during the exploration stops it cleanly with a message.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::context::Context;
use crate::coordinator::{valid_service_name, Coordinator, COORDINATOR_ENV};
use crate::proxy::Proxy;
use crate::server::SERVICES_ENV;

/// The services file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesFile {
    pub services: Vec<ServiceSpec>,
    #[serde(default)]
    pub proxies: Vec<ProxySpec>,
}

/// One service.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    /// Shell command that runs the service in the foreground; absent: attach to a running service.
    #[serde(default)]
    pub command: Option<String>,
    pub port: u16,
    /// Path answered once the service is ready (any status below 500).
    #[serde(default = "default_ready")]
    pub ready: String,
    /// Extra environment for the command.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

fn default_ready() -> String {
    "/".to_string()
}

/// A proxy in front of a dependency cloture cannot instrument: calls `from` → `to` go to `listen`, and
/// reach the real service at `upstream` unless a fault is injected.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    pub from: String,
    pub to: String,
    pub listen: u16,
    pub upstream: String,
}

impl ServicesFile {
    /// Reads and checks a services file; errors name the file and what is wrong.
    pub fn load(path: &Path) -> Result<ServicesFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: ServicesFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a services file: {e}", path.display()))?;
        file.check().map_err(|why| format!("{}: {why}", path.display()))?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        if self.services.is_empty() {
            return Err("no services".to_string());
        }
        let mut names = std::collections::HashSet::new();
        let mut ports = std::collections::HashSet::new();
        for service in &self.services {
            if !valid_service_name(&service.name) {
                return Err(format!("`{}` is not a service name (letters, digits, - _ .)", service.name));
            }
            if !names.insert(service.name.as_str()) {
                return Err(format!("service `{}` is listed twice", service.name));
            }
            if service.port == 0 || !ports.insert(service.port) {
                return Err(format!("service `{}`: port {} is 0 or used twice", service.name, service.port));
            }
            if !service.ready.starts_with('/') {
                return Err(format!("service `{}`: ready path must start with /", service.name));
            }
        }
        for proxy in &self.proxies {
            if !ports.insert(proxy.listen) || proxy.listen == 0 {
                return Err(format!("proxy {} → {}: port {} is 0 or used twice", proxy.from, proxy.to, proxy.listen));
            }
            if !valid_service_name(&proxy.from) || !valid_service_name(&proxy.to) {
                return Err(format!("proxy {} → {}: not service names", proxy.from, proxy.to));
            }
        }
        Ok(())
    }
}

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
    /// Set when a service exited during the exploration: why.
    pub failure: Arc<Mutex<Option<String>>>,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl System {
    /// Starts the coordinator, the proxies and the services, and waits until every service is ready.
    /// `logs` receives one log file per started service. `stop` is set if a service dies later.
    pub async fn start(
        file: &ServicesFile,
        logs: &Path,
        stop: Arc<AtomicBool>,
        stop_reason: Arc<Mutex<Option<String>>>,
    ) -> Result<System, String> {
        std::fs::create_dir_all(logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let coordinator = Coordinator::bind(0).await.map_err(|e| format!("cannot start the coordinator: {e}"))?;
        let services_env: Vec<String> =
            file.services.iter().map(|s| format!("{}=127.0.0.1:{}", s.name, s.port)).collect();
        for service in &file.services {
            crate::server::register_service(&service.name, &format!("127.0.0.1:{}", service.port));
        }
        let mut system = System {
            coordinator,
            running: Arc::new(Mutex::new(Vec::new())),
            proxies: Vec::new(),
            stopping: Arc::new(AtomicBool::new(false)),
            failure: Arc::new(Mutex::new(None)),
            watcher: None,
        };
        // Whatever fails from here on, what was started so far (coordinator, proxies, services) is stopped.
        if let Err(why) = system.launch(file, logs, &services_env).await {
            system.stop().await;
            return Err(why);
        }
        system.watch(stop, stop_reason);
        Ok(system)
    }

    /// Starts the proxies and the services, and waits until every service is ready.
    async fn launch(&mut self, file: &ServicesFile, logs: &Path, services_env: &[String]) -> Result<(), String> {
        for spec in &file.proxies {
            let proxy = Proxy::start(spec, self.coordinator.current())
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
            let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
            let err_file = log_file.try_clone().map_err(|e| format!("cannot open {}: {e}", log.display()))?;
            let mut process = Command::new("sh");
            process
                .arg("-c")
                .arg(format!("exec {command}"))
                .env(COORDINATOR_ENV, self.coordinator.url())
                .env(SERVICES_ENV, services_env.join(","))
                .envs(&service.env)
                .stdin(Stdio::null())
                .stdout(log_file)
                .stderr(err_file)
                .process_group(0)
                .kill_on_drop(true);
            let child = process.spawn().map_err(|e| format!("cannot start service `{}`: {e}", service.name))?;
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
        loop {
            if let Ok(response) = client.get(url.as_str()).send().await {
                if response.status().as_u16() < 500 {
                    return Ok(());
                }
            }
            if let Some(why) = self.exited(&service.name) {
                return Err(why);
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(format!("service `{}` was not ready at {url} within 20 s", service.name));
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
    fn watch(&mut self, stop: Arc<AtomicBool>, stop_reason: Arc<Mutex<Option<String>>>) {
        let running = Arc::clone(&self.running);
        let stopping = Arc::clone(&self.stopping);
        let failure = Arc::clone(&self.failure);
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
                        *failure.lock().expect("failure poisoned") = Some(why.clone());
                        if let Ok(mut reason) = stop_reason.lock() {
                            *reason = Some(why);
                        }
                        stop.store(true, Ordering::Relaxed);
                        service.child = None;
                        return;
                    }
                }
            }
        }));
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
                run_command(&command, &coordinator.url(), execution.as_ref().map(|e| e.id())).await
            })
        }
    }

    /// Stops proxies, the services started here (SIGTERM to each one's process group, SIGKILL after 5 s)
    /// and the coordinator.
    pub async fn stop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
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

async fn run_command(command: &str, coordinator: &str, execution: Option<u64>) -> Result<(), String> {
    let mut process = Command::new("sh");
    process
        .arg("-c")
        .arg(command)
        .env(COORDINATOR_ENV, coordinator)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(id) = execution {
        process.env("CLOTURE_EXECUTION", id.to_string());
    }
    let mut child = process.spawn().map_err(|e| format!("cannot run the test command: {e}"))?;
    // The command runs in its own process group: at the deadline the whole group is killed, not just `sh`.
    let _group = KillGroup(child.id());
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let group = child.id();
    let wait = async {
        let status = child.wait().await;
        // The verdict is in: what the command left running in the background goes too, so that its
        // output pipes close and the reads below end.
        if let Some(group) = group {
            signal_group(group, libc::SIGKILL);
        }
        status
    };
    let (status, _, _) = tokio::join!(wait, stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    let status = status.map_err(|e| format!("the test command could not be waited for: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&err).trim().to_string();
    if text.is_empty() {
        text = String::from_utf8_lossy(&out).trim().to_string();
    }
    let last: Vec<&str> = text.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
    Err(format!(
        "the test command failed ({status}){}",
        if last.is_empty() { String::new() } else { format!(": {}", last.join(" / ")) }
    ))
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
fn signal_group(group: u32, signal: libc::c_int) {
    // Never 0 or a negative pid: `kill(0, …)` or `kill(-1, …)` would reach far more than the group.
    let Ok(group) = libc::pid_t::try_from(group) else { return };
    if group > 1 {
        // SAFETY: kill(2) takes plain integers and has no memory effects; errors (ESRCH) are ignored.
        unsafe {
            libc::kill(-group, signal);
        }
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

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let last: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).rev().take(2).collect();
    if last.is_empty() {
        format!("; log: {}", log.display())
    } else {
        let last: Vec<&str> = last.into_iter().rev().collect();
        format!(": {} (log: {})", last.join(" / "), log.display())
    }
}
