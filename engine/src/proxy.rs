//! Proxy mode, for services cloture cannot instrument (any language, no changes to the service): a reverse
//! proxy in front of one dependency applies the current execution's faults per request.
//!
//! A proxy stands for the calls `from` → `to`: the caller is configured to reach `to` through the proxy's
//! port. Calls are identified by caller, callee, method, path and count (a call key with the pseudo-site
//! `proxy:from->to`); an injected `connect` resets the connection without an answer, `timeout` holds the
//! request without an answer until the caller gives up (or the execution ends), `status:NNN` answers that
//! status. A proxy with `from: "test"` in front of the entry service records the test's requests and the
//! answers they got, so a 500 from an uninstrumented service is seen as a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::call::{CallIdentity, CallKey};
use crate::context::{CallOutcome, PARENT_HEADER};
use crate::coordinator::Current;
use crate::external::ProxySpec;
use crate::fault::Fault;

type Upstream = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A running proxy.
pub struct Proxy {
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

struct Route {
    from: String,
    to: String,
    site: String,
    upstream: String,
    client: Upstream,
    current: Current,
}

/// Why a proxied request got no answer.
#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by cloture")
    }
}

impl std::error::Error for Reset {}

impl Proxy {
    /// Listens on `127.0.0.1:{spec.listen}`; faults come from the coordinator's current execution.
    pub async fn start(spec: &ProxySpec, current: Current) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", spec.listen)).await?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let route = Arc::new(Route {
            from: spec.from.clone(),
            to: spec.to.clone(),
            site: format!("proxy:{}->{}", spec.from, spec.to),
            upstream: spec.upstream.trim_start_matches("http://").trim_end_matches('/').to_string(),
            client: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector),
            current,
        });
        let stop = Arc::new(Notify::new());
        let stopped = Arc::clone(&stop);
        let service = service_fn(move |request| {
            let route = Arc::clone(&route);
            async move { route.handle(request).await }
        });
        let task = tokio::spawn(crate::server::accept_until(listener, stopped, service));
        Ok(Proxy { stop, task })
    }

    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

impl Route {
    async fn handle(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Reset> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map_err(|_| Reset)?.to_bytes();
        let execution = self.current.lock().expect("coordinator state poisoned").clone();
        let Some(execution) = execution else {
            return self.forward(parts, body).await.map_err(|_| Reset);
        };
        let parent = parts
            .headers
            .get(PARENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<CallKey>().ok())
            .unwrap_or(CallKey::ROOT);
        let path = parts.uri.path().to_string();
        let identity = CallIdentity {
            file: &self.site,
            line: 0,
            column: 0,
            method: parts.method.as_str(),
            target: &self.to,
            path: &path,
        };
        let decision = execution.decide(&self.from, parent, &identity);
        match decision.fault {
            Some(Fault::Connect) => Err(Reset),
            Some(Fault::Timeout) => {
                // Hold the request until the caller gives up or the execution is over.
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(60) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let current = self.current.lock().expect("coordinator state poisoned").clone();
                    if !current.is_some_and(|c| Arc::ptr_eq(&c, &execution)) {
                        break;
                    }
                }
                Err(Reset)
            }
            Some(Fault::Status(code)) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body = serde_json::json!({ "error": status.canonical_reason().unwrap_or("Error") }).to_string();
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = status;
                Ok(response)
            }
            None => {
                let result = self.forward(parts, body).await;
                execution.complete(
                    decision.index,
                    match &result {
                        Ok(response) => CallOutcome::Status(response.status().as_u16()),
                        Err(kind) => CallOutcome::Error(kind.to_string()),
                    },
                );
                result.map_err(|_| Reset)
            }
        }
    }

    async fn forward(&self, parts: http::request::Parts, body: Bytes) -> Result<Response<Full<Bytes>>, &'static str> {
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let uri = format!("http://{}{}", self.upstream, path);
        let mut request =
            Request::builder().method(parts.method).uri(uri).body(Full::new(body)).map_err(|_| "request")?;
        for (name, value) in &parts.headers {
            if name != http::header::HOST {
                request.headers_mut().append(name, value.clone());
            }
        }
        let response =
            self.client.request(request).await.map_err(|e| if e.is_connect() { "connect" } else { "request" })?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|_| "request")?.to_bytes();
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}
