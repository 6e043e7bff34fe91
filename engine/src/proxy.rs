//! Proxy mode, for services cloture cannot instrument (any language, no changes to the service): a reverse
//! proxy in front of one dependency applies the current execution's faults per request.
//!
//! A proxy stands for the calls `from` → `to`: the caller is configured to reach `to` through the proxy's
//! port. Calls are identified by caller, callee, method, path and count; their site is named after the
//! route (`users → bookings GET /bookings/{user}`, see [`crate::route`]; a gRPC call's route is its path); an injected `connect` resets the connection without an answer, `timeout` holds the
//! request without an answer until the caller gives up (or the execution ends), `status:NNN` answers that
//! status, with an empty body unless the proxy's `fault_body` asks for JSON or an HTML error page. When a caller passes on the W3C `traceparent` it received (each forwarded request carries one
//! whose parent-id is the key of the call that delivered it), its calls are linked to that call, so the same
//! call under different requests gets different keys; without it they hang under the root. A proxy with
//! `from: "test"` in front of the entry service records the test's requests and the
//! answers they got, so a 500 from an uninstrumented service is seen as a crash.
//!
//! Bodies stream through in both directions, as they come: a proxy holds no more of a body than hyper's
//! buffers, so large uploads, server-sent events and long polls pass as they would without it. The
//! proxy's connections are bounded like the coordinator's (`Limits`).
//!
//! A proxy speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same port, and passes a request on
//! in the version it came in: HTTP/2 to the upstream with prior knowledge, HTTP/1.1 as HTTP/1.1. Trailers
//! pass in both directions; headers about one connection (`connection` and the headers it names,
//! `keep-alive`, `transfer-encoding`, `upgrade`, `proxy-*`, `te` but for `te: trailers`) do not. A request
//! with content type `application/grpc*` is a gRPC call: it is recorded with method `GRPC`, so it gets the
//! gRPC faults, `grpc:CODE` answers a trailers-only gRPC error (HTTP 200, `grpc-status`, `grpc-message`),
//! and its outcome is its `grpc-status` when that is not OK, read from the answer's head or its trailers.
//! On HTTP/2, `connect` (and the end of a held `timeout`) resets the request's stream (`RST_STREAM`,
//! `REFUSED_STREAM`: gRPC clients see `UNAVAILABLE`), not the connection other calls share.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::call::{CallIdentity, CallKey, CallSite};
use crate::context::{Decision, Execution};
use crate::coordinator::Current;
use crate::fault::{Fault, GRPC_METHOD};
use crate::net::{Body, HarnessHealth, Limits, Versions};
use crate::trace::{CallOutcome, TimeLimit, Transport, PARENT_HEADER, TEST_SERVICE};

type Upstream = hyper_util::client::legacy::Client<HttpConnector, Body>;
/// What a caller gets: an injected answer, or the upstream's, streamed.
type Answer = Response<Either<Full<Bytes>, Streamed>>;

/// A proxy in front of a dependency cloture cannot instrument: calls `from` → `to` go to `listen`, and
/// reach the real service at `upstream` unless a fault is injected.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    pub from: String,
    pub to: String,
    pub listen: u16,
    pub upstream: String,
    /// The body of an injected `status:NNN` answer (services file: `"fault_body"`).
    #[serde(default)]
    pub fault_body: FaultBody,
    /// The routes of `to`'s API (`/bookings/{user}`): how calls are named in reports. A path matching none
    /// is named with its values replaced (see [`crate::route`]).
    #[serde(default)]
    pub routes: Vec<String>,
}

/// The body of an answer a proxy injects for `status:NNN`: what a real failing dependency or the gateway
/// in front of it sends. Empty by default, as most gateways and Filibuster's injected answers are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultBody {
    /// No body (`Content-Length: 0`).
    #[default]
    Empty,
    /// `{"error": "<reason>"}`, `Content-Type: application/json`: an API that reports its errors.
    Json,
    /// A small HTML error page, `Content-Type: text/html`: a web server or gateway in front of the service.
    Html,
}

impl FaultBody {
    /// The injected answer for `code`.
    fn answer(self, code: u16) -> Response<Full<Bytes>> {
        let status = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let reason = status.canonical_reason().unwrap_or("Error");
        let (body, content_type) = match self {
            FaultBody::Empty => (String::new(), None),
            FaultBody::Json => (serde_json::json!({ "error": reason }).to_string(), Some("application/json")),
            FaultBody::Html => (
                format!(
                    "<!DOCTYPE html>\n<html>\n<head><title>{code} {reason}</title></head>\n<body>\n\
                     <h1>{code} {reason}</h1>\n</body>\n</html>\n"
                ),
                Some("text/html; charset=utf-8"),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Some(content_type) = content_type {
            response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
        }
        response
    }
}

/// A running proxy.
pub struct Proxy {
    address: std::net::SocketAddr,
    health: HarnessHealth,
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

struct Route {
    from: String,
    to: String,
    /// What stands for a source file in the keys of the calls through this proxy: `proxy:from->to`.
    key_file: String,
    routes: Vec<String>,
    fault_body: FaultBody,
    upstream: String,
    /// HTTP/1.1 to the upstream.
    client: Upstream,
    /// HTTP/2 with prior knowledge to the upstream, for requests that came in as HTTP/2.
    h2c: Upstream,
    current: Current,
}

/// The W3C trace-context header.
const TRACEPARENT: &str = "traceparent";

/// The parts of a `traceparent` header cloture uses: `00-{trace-id}-{parent-id}-{flags}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Traceparent {
    trace: u128,
    parent: u64,
}

impl Traceparent {
    fn parse(text: &str) -> Option<Traceparent> {
        let mut parts = text.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !(hex(version, 2) && hex(trace, 32) && hex(parent, 16) && hex(flags, 2)) || version == "ff" {
            return None;
        }
        let trace = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
        let parent = u64::from_str_radix(parent, 16).ok().filter(|p| *p != 0)?;
        Some(Traceparent { trace, parent })
    }
}

/// How long a held call is held on once its execution's test is over (the explorer waits up to 1 s for
/// the services' handlers to finish: this leaves it room).
const HELD_AFTER_END: Duration = Duration::from_millis(800);

/// A call held by a `slow` or `timeout` fault, or waiting for the upstream's answer. Dropped while still
/// waiting (`index` is still the call's), the caller gave up on it: its own time limit expired, and the call
/// is recorded as timed out after that long.
struct Held {
    execution: Arc<Execution>,
    index: Option<usize>,
    since: Instant,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(index) = self.index {
            self.execution.gave_up(index, self.since.elapsed());
        }
    }
}

/// Why a proxied request got no answer. hyper closes an HTTP/1 connection on it, and resets an HTTP/2
/// stream with the reason it finds among the error's causes: `REFUSED_STREAM`.
#[derive(Debug)]
struct Reset;

/// The reason of a reset HTTP/2 stream: the request was not processed, as if its connection had been
/// refused (gRPC clients answer `UNAVAILABLE`, as for a refused connection).
static REFUSED: std::sync::LazyLock<h2::Error> = std::sync::LazyLock::new(|| h2::Reason::REFUSED_STREAM.into());

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by cloture")
    }
}

impl std::error::Error for Reset {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*REFUSED)
    }
}

impl Proxy {
    /// Listens on `127.0.0.1:{spec.listen}`; faults come from the coordinator's current execution. With
    /// the default [`Limits`] and a [`HarnessHealth`] of its own.
    pub async fn start(spec: &ProxySpec, current: Current) -> std::io::Result<Proxy> {
        Proxy::start_with(spec, current, Limits::default(), HarnessHealth::new()).await
    }

    /// [`Proxy::start`] within `limits`, counting trouble accepting connections in `health` (pass the
    /// coordinator's [`crate::coordinator::Coordinator::health`] to watch a whole system with one value).
    pub async fn start_with(
        spec: &ProxySpec,
        current: Current,
        limits: Limits,
        health: HarnessHealth,
    ) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", spec.listen)).await?;
        let address = listener.local_addr()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let h2c =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).http2_only(true).build(connector.clone());
        let route = Arc::new(Route {
            from: spec.from.clone(),
            to: spec.to.clone(),
            key_file: format!("proxy:{}->{}", spec.from, spec.to),
            routes: spec.routes.clone(),
            fault_body: spec.fault_body,
            upstream: spec.upstream.trim_start_matches("http://").trim_end_matches('/').to_string(),
            client: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector),
            h2c,
            current,
        });
        let stop = Arc::new(Notify::new());
        let stopped = Arc::clone(&stop);
        let service = service_fn(move |request| {
            let route = Arc::clone(&route);
            async move { route.handle(request).await }
        });
        let serving =
            crate::net::accept_until(listener, stopped, service, limits, Versions::Http1AndHttp2, health.clone());
        let task = tokio::spawn(serving);
        Ok(Proxy { address, health, stop, task })
    }

    /// Where the proxy listens.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// The proxy's trouble accepting connections (see [`HarnessHealth`]): while it grows, calls through
    /// the proxy may fail because of cloture, not because of the system.
    pub fn health(&self) -> HarnessHealth {
        self.health.clone()
    }

    /// How many times the proxy failed to accept a connection for want of a resource (file descriptors,
    /// memory) since it started (counted with every endpoint sharing its [`HarnessHealth`]).
    pub fn accept_failures(&self) -> u64 {
        self.health.accept_failures()
    }

    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

impl Route {
    async fn handle(&self, request: Request<Body>) -> Result<Answer, Reset> {
        let (parts, body) = request.into_parts();
        let execution = self.current.lock().expect("coordinator state poisoned").clone();
        let Some(execution) = execution else {
            return self.forward(parts, body, None).await.map_err(|_| Reset);
        };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let traceparent = header(TRACEPARENT).and_then(Traceparent::parse);
        // The call that delivered the caller's request: named by cloture's own header, or by a `traceparent`
        // the caller passed on, whose parent-id is the key a proxy gave that call.
        let parent = header(PARENT_HEADER)
            .and_then(|v| v.parse::<CallKey>().ok())
            .or_else(|| traceparent.as_ref().map(|t| CallKey(t.parent)).filter(|key| execution.has_call(*key)))
            .unwrap_or(CallKey::ROOT);
        let path = parts.uri.path().to_string();
        let grpc = crate::server::is_grpc(&parts.headers);
        let method = if grpc { GRPC_METHOD } else { parts.method.as_str() };
        // A gRPC path names a method (`/package.Service/Method`): it holds no values.
        let route = if grpc { path.clone() } else { self.route_of(&execution, &path) };
        // The key hangs on what identifies the call, not on its name: a route can depend on what the caller
        // received before (see `route_of`).
        let identity = CallIdentity { file: &self.key_file, line: 0, column: 0, method, target: &self.to, path: &path };
        let decision = execution.decide(&self.from, parent, &identity, TimeLimit::Unknown);
        execution.name_site(decision.index, CallSite::named(&self.from, &self.to, method, &route));
        match decision.fault {
            Some(Fault::Connect) => Err(Reset),
            Some(Fault::Timeout | Fault::Slow) => {
                self.hold(&execution, decision.index).await;
                Err(Reset)
            }
            Some(Fault::Status(code)) => Ok(self.fault_body.answer(code).map(Either::Left)),
            Some(Fault::Grpc(code)) => Ok(crate::fault::injected_grpc(code).map(|body| Either::Left(Full::new(body)))),
            None | Some(Fault::Delay(_)) => {
                // Tell the callee which call delivered its request: the trace goes on, with this call's key as
                // the parent-id, so a callee that passes the header on links its own calls to this one.
                let trace =
                    traceparent.map_or(u128::from(execution.id()) << 64 | u128::from(decision.key.0), |t| t.trace);
                let mut parts = parts;
                let value = format!("00-{trace:032x}-{:016x}-01", decision.key.0);
                parts.headers.insert(TRACEPARENT, http::HeaderValue::from_str(&value).expect("hex is a valid header"));
                self.pass_on(&execution, &decision, parts, body).await
            }
        }
    }

    /// Holds call `index` until its caller gives up or its execution is over (at most 60 s): a real wait, as
    /// the caller's time limits are in its own process. A caller that gives up closes its connection (or
    /// resets its stream): hyper then drops this future, and the guard records when. When the test is over,
    /// the hold goes on a little (the execution waits for it): a caller whose limit is about the test's
    /// shows it, and the collision is told instead of a hang.
    async fn hold(&self, execution: &Arc<Execution>, index: usize) {
        let _in_flight = execution.enter();
        let mut held = Held { execution: Arc::clone(execution), index: Some(index), since: Instant::now() };
        let mut over: Option<Instant> = None;
        while held.since.elapsed() < Duration::from_secs(60) && over.is_none_or(|at| at.elapsed() < HELD_AFTER_END) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let current = self.current.lock().expect("coordinator state poisoned").clone();
            if over.is_none() && !current.is_some_and(|c| Arc::ptr_eq(&c, execution)) {
                over = Some(Instant::now());
            }
        }
        held.index = None;
    }

    /// Forwards the call `decision` recorded (after its `delay:D`, if it has one) and records its outcome; keeps the answer's start when it is the
    /// test's (what the fault-free run answered, what a 500 said) or an error (why a service failed, in its
    /// own words).
    async fn pass_on(
        &self,
        execution: &Arc<Execution>,
        decision: &Decision,
        parts: http::request::Parts,
        body: Body,
    ) -> Result<Answer, Reset> {
        // A caller that gives up before the answer's head arrives is seen as for a held call; the execution
        // waits for the answer (or the give-up) before it is looked at.
        let _in_flight = execution.enter();
        let mut waiting = Held { execution: Arc::clone(execution), index: Some(decision.index), since: Instant::now() };
        if let Some(Fault::Delay(delay)) = decision.fault {
            tokio::time::sleep(delay).await;
        }
        let result = self.forward(parts, body, Some((Arc::clone(execution), decision.index))).await;
        waiting.index = None;
        let result = result.map(|response| match response.into_parts() {
            (head, Either::Right(mut streamed)) if self.from == TEST_SERVICE || head.status.is_server_error() => {
                let (execution, key, status) = (Arc::clone(execution), decision.key, head.status.as_u16());
                // The test's answers are compared whole (their start); of an error, its start tells enough.
                let most = if self.from == TEST_SERVICE { crate::trace::Answer::KEPT } else { ERROR_KEPT };
                streamed.answer = Some(Tap { execution, key, status, kept: Vec::new(), most });
                Response::from_parts(head, Either::Right(streamed))
            }
            (head, body) => Response::from_parts(head, body),
        });
        let outcome = match &result {
            Ok(response) => crate::inject::answered(response.status(), response.headers()),
            Err(kind) => CallOutcome::Transport(*kind),
        };
        execution.complete(decision.index, outcome);
        result.map_err(|_| Reset)
    }

    /// How `path`, called by `from`, is named (see [`crate::route`]).
    fn route_of(&self, execution: &Execution, path: &str) -> String {
        let received = execution.received_paths(&self.from);
        let received: Vec<&str> = received.iter().map(String::as_str).collect();
        crate::route::template(path, &self.routes, &received)
    }

    /// Passes the request on to the upstream, its body as it arrives, and the upstream's answer back, its
    /// body as it arrives; `call` is the recorded call whose outcome a broken answer body changes.
    async fn forward(
        &self,
        parts: http::request::Parts,
        body: Body,
        call: Option<(Arc<Execution>, usize)>,
    ) -> Result<Answer, Transport> {
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let uri = format!("http://{}{}", self.upstream, path);
        let http2 = parts.version == http::Version::HTTP_2;
        let mut request = Request::builder()
            .method(parts.method)
            .uri(uri)
            .version(if http2 { http::Version::HTTP_2 } else { http::Version::HTTP_11 })
            .body(body)
            .map_err(|_| Transport::Request)?;
        *request.headers_mut() = end_to_end(&parts.headers);
        request.headers_mut().remove(http::header::HOST);
        let client = if http2 { &self.h2c } else { &self.client };
        let response = client.request(request).await.map_err(|e| {
            if e.is_connect() {
                Transport::Connect
            } else {
                Transport::Request
            }
        })?;
        let (mut head, body) = response.into_parts();
        head.headers = end_to_end(&head.headers);
        Ok(Response::from_parts(head, Either::Right(Streamed { body, call, answer: None })))
    }
}

/// Headers that describe one connection, not the message (RFC 9110, 7.6.1), as hyper refuses them on
/// HTTP/2: `connection` and the headers it names, `keep-alive`, `transfer-encoding`, `upgrade`, `proxy-*`.
/// `te` asks the next hop for trailers (gRPC's status is in them): it passes as `te: trailers` when it
/// names them, else not at all.
fn end_to_end(headers: &http::HeaderMap) -> http::HeaderMap {
    let values = |name| headers.get_all(name).iter().filter_map(|value: &http::HeaderValue| value.to_str().ok());
    let tokens = |name| values(name).flat_map(|value| value.split(',')).map(str::trim).collect::<Vec<_>>();
    let named = tokens(http::header::CONNECTION);
    let mut kept = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let hop = matches!(name.as_str(), "connection" | "keep-alive" | "transfer-encoding" | "upgrade" | "te")
            || name.as_str().starts_with("proxy-")
            || named.iter().any(|named| named.eq_ignore_ascii_case(name.as_str()));
        if !hop {
            kept.append(name, value.clone());
        }
    }
    if tokens(http::header::TE).iter().any(|token| token.eq_ignore_ascii_case("trailers")) {
        kept.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    }
    kept
}

/// An upstream's answer body on its way to the caller. If it breaks off, the caller gets no whole answer:
/// the call's recorded outcome becomes that transport failure. At the entry proxy, the answer to the test
/// is also kept (its first [`crate::trace::Answer::KEPT`] bytes) as the test's answer: what a 500 said, what the
/// fault-free run answered; at every proxy, so is an error answer (5xx).
struct Streamed {
    body: Incoming,
    call: Option<(Arc<Execution>, usize)>,
    answer: Option<Tap>,
}

/// An answer kept as it streams by: the test's at the entry proxy, an error answer at any proxy.
struct Tap {
    execution: Arc<Execution>,
    key: CallKey,
    status: u16,
    kept: Vec<u8>,
    /// How much of the body is kept.
    most: usize,
}

/// How much of an error answer's body a proxy keeps (that of a test's answer: [`crate::trace::Answer::KEPT`]).
const ERROR_KEPT: usize = 1024;

impl Tap {
    fn keep(&mut self, data: &[u8]) {
        let room = self.most.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&data[..data.len().min(room)]);
    }

    fn record(self) {
        self.execution.answered(self.key, self.status, &Bytes::from(self.kept));
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if let Some(tap) = self.answer.take() {
            tap.record();
        }
    }
}

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Err(_))) => {
                if let Some((execution, index)) = this.call.take() {
                    execution.complete(index, CallOutcome::Transport(Transport::Request));
                }
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(tap), Some(data)) = (this.answer.as_mut(), frame.data_ref()) {
                    tap.keep(data);
                }
                // A gRPC call's status comes in the trailers.
                if let (Some((execution, index)), Some(trailers)) = (this.call.as_ref(), frame.trailers_ref()) {
                    if let CallOutcome::Grpc(code) = crate::inject::answered(http::StatusCode::OK, trailers) {
                        execution.complete(*index, CallOutcome::Grpc(code));
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some(tap) = this.answer.take() {
                    tap.record();
                }
            }
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn an_injected_status_has_an_empty_body_unless_json_or_html_is_asked_for() {
        use http_body_util::BodyExt;
        let answer = |body: FaultBody| async move {
            let response = body.answer(503);
            let content_type =
                response.headers().get(http::header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, content_type, String::from_utf8(body.to_vec()).unwrap())
        };
        assert_eq!(answer(FaultBody::Empty).await, (503, None, String::new()));
        let (status, content_type, json) = answer(FaultBody::Json).await;
        assert_eq!((status, content_type.as_deref()), (503, Some("application/json")));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            serde_json::json!({"error": "Service Unavailable"})
        );
        let (_, content_type, html) = answer(FaultBody::Html).await;
        assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
        assert!(html.contains("<title>503 Service Unavailable</title>"), "{html}");
        let spec: ProxySpec =
            serde_json::from_str(r#"{"from": "a", "to": "b", "listen": 1, "upstream": "x:1", "fault_body": "html"}"#)
                .unwrap();
        assert_eq!(spec.fault_body, FaultBody::Html);
        let spec: ProxySpec =
            serde_json::from_str(r#"{"from": "a", "to": "b", "listen": 1, "upstream": "x:1"}"#).unwrap();
        assert_eq!(spec.fault_body, FaultBody::Empty);
    }

    #[test]
    fn only_well_formed_traceparents_are_read() {
        let good = Traceparent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(good.parent, 0xb7ad_6b71_6920_3331);
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
            "00-zzf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(Traceparent::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_passed_on_traceparent_links_a_call_to_the_call_that_delivered_the_request() {
        // The upstream answers with the traceparent it received.
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_address = upstream.local_addr().unwrap();
        let upstream_stop = Arc::new(Notify::new());
        let echo = service_fn(|request: Request<Body>| async move {
            let header = request.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(header))))
        });
        let serving = crate::net::accept_until(
            upstream,
            Arc::clone(&upstream_stop),
            echo,
            Limits::default(),
            Versions::Http1,
            HarnessHealth::new(),
        );
        tokio::spawn(serving);
        let execution = Execution::start(Default::default());
        let current: Current = Arc::new(Mutex::new(Some(Arc::clone(&execution))));
        let spec = ProxySpec {
            from: "a".into(),
            to: "b".into(),
            listen: 0,
            upstream: upstream_address.to_string(),
            fault_body: FaultBody::Empty,
            routes: Vec::new(),
        };
        let proxy = Proxy::start(&spec, current).await.unwrap();
        let url = format!("http://{}/x", proxy.address());
        let client = crate::Client::new();

        // Without a traceparent the call hangs under the root; the callee learns the call's key.
        let first = client.get(url.as_str()).send().await.unwrap();
        let passed_on = String::from_utf8(first.bytes().to_vec()).unwrap();
        let first_key = execution.trace().calls[0].key;
        assert_eq!(execution.trace().calls[0].parent, CallKey::ROOT);
        assert_eq!(Traceparent::parse(&passed_on).unwrap().parent, first_key.0, "{passed_on}");

        // A callee passing that header on links its own call to the first one.
        let header = http::HeaderValue::from_str(&passed_on).unwrap();
        client
            .get(url.as_str())
            .header(http::header::HeaderName::from_static(TRACEPARENT), header)
            .send()
            .await
            .unwrap();
        let trace = execution.trace();
        assert_eq!(trace.calls[1].parent, first_key);
        assert_ne!(trace.calls[1].key, first_key);

        proxy.stop().await;
        upstream_stop.notify_one();
    }
}
