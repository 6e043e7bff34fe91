//! The coordinator: cloture's decisions served over HTTP on loopback, for services in other processes.
//!
//! In one process, services find their execution in a registry (a function call). A service in another
//! process that uses cloture's client and server needs no round trip to decide: the execution's fault plan
//! travels down in a request header (`x-cloture-plan`). It pays one round trip per request it handles, to
//! report what it observed (calls, outcomes, panics) before it answers — so the trace is complete when the
//! test gets its answer — plus one for a request that arrives without context (from an external test
//! command), to learn the current execution. Filibuster pays four per call.
//!
//! API (JSON, `127.0.0.1` only; documented in docs/coordinator.md):
//! - `GET /v1/health` → `{"status":"ok"}`
//! - `GET /v1/current?service=S&method=M&path=P` → `{"execution","parent","plan"}` or 204 when none
//! - `POST /v1/executions/{id}/report` with a [`RemoteReport`] → 204
//! - `GET /v1/executions/{id}` → `{"execution","fault_free","injected"}`
//! - `GET /v1/executions/{id}/injected[?service=S][&method=M]` → `{"injected": bool}`
//! - `PUT`/`GET /v1/executions/{id}/references/{name}`: values a fault-free execution saved ([`references`])
//! - `GET /v1/runner/next`, `POST /v1/runner/{id}/verdict`: a persistent test process ([`runner`])
//!
//! Every input is validated; a malformed or hostile request gets a 4xx and changes nothing. What a web page
//! in a browser could send is refused: requests with an `Origin` or a cross-site `Sec-Fetch-Site`, a `Host`
//! other than the coordinator's own loopback address, reports that are not `application/json`. `Bounds`
//! limit connections (through [`crate::net`]), each report, and what one execution takes in.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::call::CallKey;
use crate::context::{Execution, Intake};
use crate::fault::Fault;
use crate::net::{Body, BodyStalled, HarnessHealth, Limits};
use crate::registry::valid_service_name;
use crate::trace::{parse_plan, RemoteReport};

mod references;
mod runner;

use references::{References, Refusal};
pub use runner::RunnerVerdict;
use runner::{Jobs, Next, NotTaken, VerdictBody};

/// Environment variable naming the coordinator (`http://127.0.0.1:PORT`) for services in other processes.
pub const COORDINATOR_ENV: &str = "CLOTURE_COORDINATOR";

/// What the coordinator takes in, at most. Beyond a bound a request is refused with a 4xx and changes
/// nothing; beyond a per-execution bound the execution is also marked truncated
/// ([`Execution::truncated`]). Defaults in docs/coordinator.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Connections: how many at once, header and idle timeouts.
    pub connections: Limits,
    /// Largest report body, in bytes (1 MiB).
    pub report_bytes: usize,
    /// Most calls one report may carry (10 000).
    pub calls_per_report: usize,
    /// Most calls in one execution's trace that reports and lookups may bring it to (100 000).
    pub calls_per_execution: usize,
    /// Most reports one execution takes in (10 000).
    pub reports_per_execution: usize,
    /// Most bytes of reference values (their JSON text) one exploration keeps (16 MiB); one value is at
    /// most `report_bytes`.
    pub reference_bytes: usize,
    /// How long `GET /v1/runner/next` waits for an execution before answering 204 (20 s: well under the
    /// idle timeout, so a waiting runner's connection is never closed under it).
    pub runner_poll: Duration,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            connections: Limits::default(),
            report_bytes: 1 << 20,
            calls_per_report: 10_000,
            calls_per_execution: 100_000,
            reports_per_execution: 10_000,
            reference_bytes: 16 << 20,
            runner_poll: Duration::from_secs(20),
        }
    }
}

/// The execution that requests without context belong to, shared with the proxies.
pub(crate) type Current = Arc<Mutex<Option<Arc<Execution>>>>;

struct State {
    current: Current,
    bounds: Bounds,
    /// Where the coordinator listens: the only `Host` it answers to.
    address: SocketAddr,
    references: References,
    jobs: Jobs,
}

/// A running coordinator.
pub struct Coordinator {
    address: SocketAddr,
    state: Arc<State>,
    health: HarnessHealth,
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Coordinator {
    /// Starts a coordinator on `127.0.0.1:port` (0 for a free port), with the default [`Bounds`].
    pub async fn bind(port: u16) -> std::io::Result<Coordinator> {
        Coordinator::bind_with(port, Bounds::default()).await
    }

    /// Starts a coordinator on `127.0.0.1:port` (0 for a free port) within `bounds`.
    pub async fn bind_with(port: u16, bounds: Bounds) -> std::io::Result<Coordinator> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        Coordinator::start_with(listener, bounds)
    }

    /// Starts a coordinator on `listener`, which must be bound to a loopback address, with the default
    /// [`Bounds`].
    pub fn start(listener: TcpListener) -> std::io::Result<Coordinator> {
        Coordinator::start_with(listener, Bounds::default())
    }

    /// Starts a coordinator on `listener`, which must be bound to a loopback address, within `bounds`.
    pub fn start_with(listener: TcpListener, bounds: Bounds) -> std::io::Result<Coordinator> {
        let address = listener.local_addr()?;
        if !address.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the coordinator binds loopback only, not {address}"),
            ));
        }
        let references = References::new(bounds.reference_bytes);
        let state = Arc::new(State { current: Current::default(), bounds, address, references, jobs: Jobs::new() });
        let health = HarnessHealth::new();
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(accept(listener, Arc::clone(&state), Arc::clone(&stop), health.clone()));
        Ok(Coordinator { address, state, health, stop, task })
    }

    /// The coordinator's trouble accepting connections (see [`HarnessHealth`]): while it grows, services
    /// may fail to report or to look up their execution because of cloture, not because of the system.
    pub fn health(&self) -> HarnessHealth {
        self.health.clone()
    }

    /// How many times the coordinator failed to accept a connection for want of a resource (file
    /// descriptors, memory) since it started.
    pub fn accept_failures(&self) -> u64 {
        self.health.accept_failures()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sets the execution that requests without context (from an external test command) belong to.
    pub fn set_current(&self, execution: Option<Arc<Execution>>) {
        *self.state.current.lock().expect("coordinator state poisoned") = execution;
    }

    /// The current-execution slot, for proxies.
    pub(crate) fn current(&self) -> Current {
        Arc::clone(&self.state.current)
    }

    /// The reference values fault-free executions saved and that stayed the same (see [`references`]).
    pub fn references(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        self.state.references.stable()
    }

    /// Takes in reference values saved by an earlier exploration, for a replay; refused past
    /// [`Bounds::reference_bytes`].
    pub fn load_references(&self, values: std::collections::BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        self.state.references.load(values).map_err(|refusal| match refusal {
            Refusal::Full(most) => format!("the reference values take more than {most} bytes"),
            other => format!("{other:?}"),
        })
    }

    /// Offers execution `id` to the runner (docs/runner.md); the receiver gets its verdict.
    pub(crate) fn offer_to_runner(&self, id: u64) -> tokio::sync::oneshot::Receiver<RunnerVerdict> {
        self.state.jobs.offer(id)
    }

    /// Withdraws the offer of execution `id` (the deadline passed, or the runner died).
    pub(crate) fn withdraw_from_runner(&self, id: u64) {
        self.state.jobs.withdraw(id)
    }

    /// Whether the runner took execution `id`.
    pub(crate) fn runner_took(&self, id: u64) -> bool {
        self.state.jobs.taken(id)
    }

    /// The exploration is over: the runner's next poll answers 410 and it exits.
    pub(crate) fn end_runner(&self) {
        self.state.jobs.end()
    }

    /// Stops accepting connections, without waiting.
    pub(crate) fn close(&self) {
        self.stop.notify_one();
    }

    /// Stops serving.
    pub async fn shutdown(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

async fn accept(listener: TcpListener, state: Arc<State>, stop: Arc<Notify>, health: HarnessHealth) {
    let limits = state.bounds.connections;
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(answer(&state, request).await) }
    });
    crate::net::accept_until(listener, stop, service, limits, crate::net::Versions::Http1, health).await;
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

fn bad(status: StatusCode, why: impl Into<String>) -> Response<Full<Bytes>> {
    reply(status, json!({ "error": why.into() }))
}

/// 405, with the `Allow` header HTTP requires.
fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = bad(StatusCode::METHOD_NOT_ALLOWED, format!("method not allowed; use {allow}"));
    response.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    response
}

fn query(request: &Request<Body>) -> HashMap<String, String> {
    request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // Two hex digits exactly: `from_str_radix` alone would also take a sign (`%+1`).
            b'%' if i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex digits are ASCII");
                out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn answer(state: &State, request: Request<Body>) -> Response<Full<Bytes>> {
    if let Some(refusal) = refuse_from_a_browser(state, request.headers()) {
        return refusal;
    }
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    match (request.method().clone(), segments.as_slice()) {
        (Method::GET, ["v1", "health"]) => reply(StatusCode::OK, json!({ "status": "ok" })),
        (Method::GET, ["v1", "current"]) => serve_current(state, &query(&request)),
        (_, ["v1", "health"] | ["v1", "current"] | ["v1", "runner", "next"]) if request.method() != Method::GET => {
            not_allowed("GET")
        }
        (method, ["v1", "executions", id, rest @ ..]) => {
            let (id, rest) = (id.to_string(), rest.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            about_execution(state, method, &id, &rest, request).await.unwrap_or_else(|| no_endpoint(&path))
        }
        (Method::GET, ["v1", "runner", "next"]) => match state.jobs.next(state.bounds.runner_poll).await {
            Next::Execution(id) => reply(StatusCode::OK, json!({ "execution": id.to_string() })),
            Next::Nothing => empty(StatusCode::NO_CONTENT),
            Next::Over => bad(StatusCode::GONE, "the exploration is over"),
        },
        (Method::POST, ["v1", "runner", id, "verdict"]) => {
            let id = id.to_string();
            take_verdict(state, &id, request).await
        }
        (_, ["v1", "runner", _, "verdict"]) => not_allowed("POST"),
        _ => no_endpoint(&path),
    }
}

fn no_endpoint(path: &str) -> Response<Full<Bytes>> {
    bad(StatusCode::NOT_FOUND, format!("no such endpoint `{path}`"))
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder().status(status).body(Full::new(Bytes::new())).expect("a valid response")
}

/// `/v1/executions/{id}/…`; `None` for a path that names no endpoint.
async fn about_execution(
    state: &State,
    method: Method,
    id: &str,
    rest: &[String],
    request: Request<Body>,
) -> Option<Response<Full<Bytes>>> {
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    Some(match (method, rest.as_slice()) {
        (Method::POST, ["report"]) => take_report(state, id, request).await,
        (Method::GET, ["injected"]) => injected(id, &query(&request)),
        (Method::GET, []) => describe(id),
        (Method::GET, ["references", name]) => read_reference(state, id, name),
        (Method::PUT, ["references", name]) => {
            let name = name.to_string();
            save_reference(state, id, &name, request).await
        }
        (_, [] | ["injected"]) => not_allowed("GET"),
        (_, ["report"]) => not_allowed("POST"),
        (_, ["references", _]) => not_allowed("GET, PUT"),
        _ => return None,
    })
}

fn no_execution(id: &str) -> Response<Full<Bytes>> {
    bad(StatusCode::NOT_FOUND, format!("no live execution `{id}`"))
}

/// `GET /v1/executions/{id}`: whether the execution has faults planned, and whether one was injected.
fn describe(id: &str) -> Response<Full<Bytes>> {
    let Some(execution) = find(id) else { return no_execution(id) };
    let body = json!({
        "execution": execution.id().to_string(),
        "fault_free": execution.plan_header().is_none(),
        "injected": execution.fault_injected(None),
    });
    reply(StatusCode::OK, body)
}

/// `GET /v1/executions/{id}/injected[?service=S][&method=M]`.
fn injected(id: &str, query: &HashMap<String, String>) -> Response<Full<Bytes>> {
    let Some(execution) = find(id) else { return no_execution(id) };
    let service = query.get("service").map(String::as_str);
    let injected = match query.get("method") {
        None => execution.fault_injected(service),
        Some(method) => execution
            .trace()
            .injected()
            .any(|(call, _)| is_method(call, method) && service.is_none_or(|service| call.to == service)),
    };
    reply(StatusCode::OK, json!({ "injected": injected }))
}

/// Whether `call` is of `method`: an HTTP method in any case, also as a client library names it
/// (`requests.get`), or a gRPC method, `package.Service/Method` or `Service/Method`.
fn is_method(call: &crate::trace::CallRecord, method: &str) -> bool {
    if let Some((service, name)) = method.trim_start_matches('/').rsplit_once('/') {
        let path = call.path.trim_start_matches('/');
        let full = path == format!("{service}/{name}");
        let unqualified = path.ends_with(&format!(".{service}/{name}")) && !service.contains('.');
        return call.method == crate::fault::GRPC_METHOD && (full || unqualified);
    }
    let name = method.rsplit('.').next().unwrap_or(method);
    call.method.eq_ignore_ascii_case(name)
}

/// A request body of at most `most` bytes, or the answer that refuses it.
async fn read_body(request: Request<Body>, most: usize, what: &str) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(request.into_body(), most).collect().await {
        Ok(body) => Ok(body.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(bad(StatusCode::PAYLOAD_TOO_LARGE, format!("{what} is at most {most} bytes")))
        }
        Err(error) if error.downcast_ref::<BodyStalled>().is_some() => {
            Err(bad(StatusCode::REQUEST_TIMEOUT, error.to_string()))
        }
        Err(error) => Err(bad(StatusCode::BAD_REQUEST, format!("the body could not be read: {error}"))),
    }
}

/// `PUT /v1/executions/{id}/references/{name}`: a fault-free execution saves a value (any JSON).
async fn save_reference(state: &State, id: &str, name: &str, request: Request<Body>) -> Response<Full<Bytes>> {
    if !is_json(request.headers()) {
        return bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a reference value is sent as `Content-Type: application/json`",
        );
    }
    if !references::valid_name(name) {
        return bad(StatusCode::BAD_REQUEST, "a reference name is 1 to 128 letters, digits, `-`, `_`, `.` or `:`");
    }
    let Some(execution) = find(id) else { return no_execution(id) };
    let body = match read_body(request, state.bounds.report_bytes, "a reference value").await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => return bad(StatusCode::BAD_REQUEST, format!("not JSON: {error}")),
    };
    if execution.plan_header().is_some() {
        return bad(
            StatusCode::CONFLICT,
            format!("execution {id} has faults planned: only a fault-free execution saves reference values"),
        );
    }
    match state.references.save(name, value) {
        Ok(()) => empty(StatusCode::NO_CONTENT),
        Err(refusal) => bad(StatusCode::INSUFFICIENT_STORAGE, format!("`{name}` is not saved: {refusal:?}")),
    }
}

/// `GET /v1/executions/{id}/references/{name}`: the value a fault-free execution saved.
fn read_reference(state: &State, id: &str, name: &str) -> Response<Full<Bytes>> {
    if !references::valid_name(name) {
        return bad(StatusCode::BAD_REQUEST, "a reference name is 1 to 128 letters, digits, `-`, `_`, `.` or `:`");
    }
    if find(id).is_none() {
        return no_execution(id);
    }
    match state.references.read(name) {
        Ok(value) => reply(StatusCode::OK, json!({ "value": value })),
        Err(Refusal::Unstable) => bad(
            StatusCode::CONFLICT,
            format!("`{name}` differs between fault-free executions: there is no one reference value to compare with"),
        ),
        Err(_) => bad(StatusCode::NOT_FOUND, format!("no fault-free execution saved a reference value `{name}`")),
    }
}

/// The largest verdict a runner may post.
const VERDICT_BYTES: usize = 64 * 1024;

/// `POST /v1/runner/{id}/verdict`: the runner's verdict on the execution it took.
async fn take_verdict(state: &State, id: &str, request: Request<Body>) -> Response<Full<Bytes>> {
    if !is_json(request.headers()) {
        return bad(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a verdict is sent as `Content-Type: application/json`");
    }
    let Ok(execution) = id.parse::<u64>() else { return bad(StatusCode::NOT_FOUND, format!("no execution `{id}`")) };
    let body = match read_body(request, VERDICT_BYTES, "a verdict").await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let verdict: VerdictBody = match serde_json::from_slice(&body) {
        Ok(verdict) => verdict,
        Err(error) => return bad(StatusCode::BAD_REQUEST, format!("not a verdict: {error}")),
    };
    let verdict = if verdict.passed { Ok(()) } else { Err(verdict.message) };
    match state.jobs.verdict(execution, verdict) {
        Ok(()) => empty(StatusCode::NO_CONTENT),
        Err(NotTaken::NotOffered) => {
            bad(StatusCode::NOT_FOUND, format!("execution {id} is not offered to the runner (over, or never)"))
        }
        Err(NotTaken::NotTaken) => {
            bad(StatusCode::CONFLICT, format!("execution {id} was not taken: take it with `GET /v1/runner/next` first"))
        }
    }
}

/// A 403 for what a web page in a browser could have sent: a request with an `Origin` header, or marked
/// cross-site or same-site by `Sec-Fetch-Site`, or naming another host than the coordinator (DNS
/// rebinding). Services, test commands and tools send none of these.
fn refuse_from_a_browser(state: &State, headers: &http::HeaderMap) -> Option<Response<Full<Bytes>>> {
    if headers.contains_key(http::header::ORIGIN) {
        return Some(bad(
            StatusCode::FORBIDDEN,
            "requests from web pages are refused: the coordinator takes no request with an `Origin` header",
        ));
    }
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).unwrap_or("");
    if fetch_site.eq_ignore_ascii_case("cross-site") || fetch_site.eq_ignore_ascii_case("same-site") {
        return Some(bad(
            StatusCode::FORBIDDEN,
            format!("requests from web pages are refused (`Sec-Fetch-Site: {fetch_site}`)"),
        ));
    }
    let host = headers.get(http::header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(|host| names_the_coordinator(host, state.address)) {
        let port = state.address.port();
        return Some(bad(
            StatusCode::FORBIDDEN,
            format!("the `Host` header must name the coordinator: 127.0.0.1:{port}, localhost:{port} or [::1]:{port}"),
        ));
    }
    None
}

/// Whether a `Host` header names a loopback host (`127.0.0.1`, `localhost`, `[::1]` or the address the
/// coordinator is bound to) with the coordinator's port (80 when the header has none).
fn names_the_coordinator(host: &str, address: SocketAddr) -> bool {
    let (name, port) = match host.rfind(':') {
        Some(colon) if !host[colon..].contains(']') => (&host[..colon], host[colon + 1..].parse::<u16>().ok()),
        _ => (host, Some(80)),
    };
    let own = match address.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    port == Some(address.port())
        && (name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]" || name == own)
}

/// Whether a `Content-Type` is `application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(headers: &http::HeaderMap) -> bool {
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    content_type.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json")
}

/// `POST /v1/executions/{id}/report`.
async fn take_report(state: &State, id: &str, request: Request<Body>) -> Response<Full<Bytes>> {
    if !is_json(request.headers()) {
        return bad(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a report is sent as `Content-Type: application/json`");
    }
    let Some(execution) = find(id) else { return no_execution(id) };
    let bounds = state.bounds;
    let body = match read_body(request, bounds.report_bytes, "a report").await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let report: RemoteReport = match serde_json::from_slice(&body) {
        Ok(report) => report,
        Err(error) => return bad(StatusCode::BAD_REQUEST, format!("not a report: {error}")),
    };
    if !valid_service_name(&report.service) {
        return bad(StatusCode::BAD_REQUEST, "`service` is not a service name");
    }
    let status_known = (100..=599).contains(&report.status) || (report.partial && report.status == 0);
    if report.calls.len() > bounds.calls_per_report || !status_known {
        return bad(StatusCode::BAD_REQUEST, "too many calls or an impossible status");
    }
    let intake = Intake { calls: bounds.calls_per_execution, reports: bounds.reports_per_execution };
    match execution.absorb(report, intake) {
        Ok(()) => empty(StatusCode::NO_CONTENT),
        Err(crossed) => bad(
            StatusCode::TOO_MANY_REQUESTS,
            format!("execution {id} reached {crossed}: the report is dropped and the execution marked truncated"),
        ),
    }
}

fn find(id: &str) -> Option<Arc<Execution>> {
    id.parse::<u64>().ok().and_then(Execution::lookup)
}

fn serve_current(state: &State, query: &HashMap<String, String>) -> Response<Full<Bytes>> {
    let (Some(service), Some(method), Some(path)) = (query.get("service"), query.get("method"), query.get("path"))
    else {
        return bad(StatusCode::BAD_REQUEST, "`service`, `method` and `path` are required");
    };
    if !valid_service_name(service) {
        return bad(StatusCode::BAD_REQUEST, "`service` is not a service name");
    }
    if method.is_empty() || method.len() > 16 || !method.chars().all(|c| c.is_ascii_uppercase()) {
        return bad(StatusCode::BAD_REQUEST, "`method` is not an HTTP method");
    }
    if !path.starts_with('/') || path.len() > 2048 {
        return bad(StatusCode::BAD_REQUEST, "`path` must start with / and be at most 2048 bytes");
    }
    let execution = state.current.lock().expect("coordinator state poisoned").clone();
    match execution {
        None => empty(StatusCode::NO_CONTENT),
        Some(execution) => {
            let parent = match execution.external_root(service, method, path, state.bounds.calls_per_execution) {
                Ok(parent) => parent,
                Err(crossed) => {
                    return bad(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "execution {} reached {crossed}: the request is not registered and the execution \
                             marked truncated",
                            execution.id()
                        ),
                    )
                }
            };
            reply(
                StatusCode::OK,
                json!({
                    "execution": execution.id().to_string(),
                    "parent": parent.to_string(),
                    "plan": execution.plan_header().unwrap_or(""),
                }),
            )
        }
    }
}

// ---- the service side: talking to the coordinator from another process ----

/// The coordinator this process reports to, from `CLOTURE_COORDINATOR` (loopback URLs only).
pub(crate) fn configured() -> Option<&'static str> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        let url = std::env::var(COORDINATOR_ENV).ok()?;
        let loopback = loopback_url(&url);
        if loopback.is_none() {
            tracing::warn!(%url, "{COORDINATOR_ENV} must be a loopback http URL (http://127.0.0.1:PORT); ignored");
        }
        loopback
    })
    .as_deref()
}

/// `url` without trailing slashes if it is `http://` + a loopback host + `:PORT` and nothing else. A prefix
/// check alone would let `http://127.0.0.1:1@example.com` (user info, then another host) through.
fn loopback_url(url: &str) -> Option<String> {
    let url = url.trim_end_matches('/');
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    let port = loopback.iter().find_map(|prefix| url.strip_prefix(prefix))?;
    let valid = port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|port| port != 0);
    valid.then(|| url.to_string())
}

fn client() -> &'static hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>> {
    static CLIENT: OnceLock<hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // Idle connections are dropped well before the coordinator closes them (`Limits::idle_timeout`), so
        // a report is never sent on a connection the coordinator is closing.
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector)
    })
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

async fn exchange(request: Request<Full<Bytes>>) -> Option<(StatusCode, Bytes)> {
    let call = async {
        let response = client().request(request).await.ok()?;
        let status = response.status();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    };
    // No answer within 5 s counts as no answer.
    tokio::time::timeout(Duration::from_secs(5), call).await.unwrap_or_default()
}

/// Asks the coordinator which execution a request without context belongs to: its id, the key of the
/// (external) call that delivered it, and its plan.
pub(crate) async fn current(
    service: &str,
    method: &str,
    path: &str,
) -> Option<(u64, CallKey, HashMap<CallKey, Fault>)> {
    let base = configured()?;
    let url = format!("{base}/v1/current?service={}&method={}&path={}", encode(service), encode(method), encode(path));
    let request = Request::get(url).body(Full::new(Bytes::new())).ok()?;
    let (status, body) = exchange(request).await?;
    if status != StatusCode::OK {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let id = value["execution"].as_str()?.parse().ok()?;
    let parent = value["parent"].as_str()?.parse().ok()?;
    let plan = parse_plan(value["plan"].as_str().unwrap_or("")).ok()?;
    Some((id, parent, plan))
}

/// Reports what this process observed for one request of execution `id`.
pub(crate) async fn report(id: u64, report: &RemoteReport) {
    let Some(base) = configured() else { return };
    let body = serde_json::to_vec(report).expect("a report serializes");
    let Ok(request) = Request::post(format!("{base}/v1/executions/{id}/report"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
    else {
        return;
    };
    match exchange(request).await {
        Some((status, _)) if status.is_success() => {}
        Some((status, body)) => {
            tracing::warn!(%status, body = %String::from_utf8_lossy(&body), "the coordinator refused a report")
        }
        None => tracing::warn!("the coordinator did not answer a report"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_is_named_as_http_clients_and_grpc_name_it() {
        let call = |method: &str, path: &str| crate::trace::CallRecord {
            key: CallKey(1),
            parent: CallKey::ROOT,
            from: "users".into(),
            to: "stock".into(),
            method: method.into(),
            path: path.into(),
            site: crate::call::CallSite::named("users", "stock", method, path),
            fault: None,
            outcome: crate::trace::CallOutcome::Pending,
            limit: crate::trace::TimeLimit::Unknown,
        };
        let get = call("GET", "/stock/apple");
        for name in ["GET", "get", "requests.get"] {
            assert!(is_method(&get, name), "{name}");
        }
        assert!(!is_method(&get, "POST") && !is_method(&get, "requests.post") && !is_method(&get, "stock/apple"));
        let grpc = call("GRPC", "/shop.Stock/Reserve");
        for name in ["shop.Stock/Reserve", "Stock/Reserve", "/shop.Stock/Reserve"] {
            assert!(is_method(&grpc, name), "{name}");
        }
        for name in ["other.Stock/Reserve", "Stock/Quote", "tock/Reserve", "GET"] {
            assert!(!is_method(&grpc, name), "{name}");
        }
    }

    #[test]
    fn only_a_loopback_host_and_a_port_name_a_coordinator() {
        for url in ["http://127.0.0.1:7100", "http://127.0.0.1:7100/", "http://localhost:1", "http://[::1]:65535"] {
            assert_eq!(loopback_url(url).as_deref(), Some(url.trim_end_matches('/')), "{url}");
        }
        for url in [
            "http://127.0.0.1:1@example.com",
            "http://127.0.0.1:80@example.com:80/",
            "http://localhost:80.example.com",
            "http://127.0.0.1:7100/v1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:70000",
            "http://127.0.0.1:",
            "https://127.0.0.1:7100",
            "http://10.0.0.1:7100",
        ] {
            assert_eq!(loopback_url(url), None, "{url}");
        }
    }

    #[test]
    fn a_host_names_the_coordinator_by_a_loopback_name_and_its_port() {
        let v4: SocketAddr = "127.0.0.2:7100".parse().unwrap();
        for host in ["127.0.0.1:7100", "localhost:7100", "LOCALHOST:7100", "[::1]:7100", "127.0.0.2:7100"] {
            assert!(names_the_coordinator(host, v4), "{host}");
        }
        for host in ["127.0.0.1", "127.0.0.1:7101", "127.0.0.3:7100", "127.0.0.1:7100:7100", "example.com:7100", ""] {
            assert!(!names_the_coordinator(host, v4), "{host}");
        }
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        for host in ["[::1]", "[::1]:80", "localhost", "127.0.0.1:80"] {
            assert!(names_the_coordinator(host, v6), "{host}");
        }
        assert!(!names_the_coordinator("[::1]:8080", v6));
    }

    #[test]
    fn percent_decoding_takes_exactly_two_hex_digits() {
        assert_eq!(percent_decode("%2Fusers%2fx+y"), "/users/x y");
        assert_eq!(percent_decode("%+1%-1%g0%4"), "% 1%-1%g0%4");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%25"), "%");
    }
}
