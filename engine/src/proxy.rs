//! Proxy mode, for services cloture cannot instrument (any language, no changes to the service): a reverse
//! proxy in front of one dependency applies the current execution's faults per request.
//!
//! A proxy stands for the calls `from` → `to`: the caller is configured to reach `to` through the proxy's
//! port. Calls are identified by caller, callee, method, path and count (a call key with the pseudo-site
//! `proxy:from->to`); an injected `connect` resets the connection without an answer, `timeout` holds the
//! request without an answer until the caller gives up (or the execution ends), `status:NNN` answers that
//! status. When a caller passes on the W3C `traceparent` it received (each forwarded request carries one
//! whose parent-id is the key of the call that delivered it), its calls are linked to that call, so the same
//! call under different requests gets different keys; without it they hang under the root. A proxy with
//! `from: "test"` in front of the entry service records the test's requests and the
//! answers they got, so a 500 from an uninstrumented service is seen as a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::call::{CallIdentity, CallKey};
use crate::coordinator::Current;
use crate::fault::Fault;
use crate::trace::{CallOutcome, TimeLimit, Transport, PARENT_HEADER};

type Upstream = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

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

/// A running proxy.
pub struct Proxy {
    address: std::net::SocketAddr,
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
        let address = listener.local_addr()?;
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
        let task = tokio::spawn(crate::net::accept_until(listener, stopped, service));
        Ok(Proxy { address, stop, task })
    }

    /// Where the proxy listens.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
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
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let traceparent = header(TRACEPARENT).and_then(Traceparent::parse);
        // The call that delivered the caller's request: named by cloture's own header, or by a `traceparent`
        // the caller passed on, whose parent-id is the key a proxy gave that call.
        let parent = header(PARENT_HEADER)
            .and_then(|v| v.parse::<CallKey>().ok())
            .or_else(|| traceparent.as_ref().map(|t| CallKey(t.parent)).filter(|key| execution.has_call(*key)))
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
        let decision = execution.decide(&self.from, parent, &identity, TimeLimit::Unknown);
        if let Some(Fault::Delay(delay)) = decision.fault {
            tokio::time::sleep(delay).await;
        }
        match decision.fault {
            Some(Fault::Connect) => Err(Reset),
            Some(Fault::Timeout | Fault::Slow) => {
                // Hold the request until the caller gives up or the execution is over: a real wait, as the
                // caller's time limits are in its own process.
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
                let (status, body) = crate::fault::injected_status(code);
                let mut response = Response::new(Full::new(body));
                *response.status_mut() = status;
                Ok(response)
            }
            Some(Fault::Grpc(code)) => Ok(crate::fault::injected_grpc(code).map(Full::new)),
            None | Some(Fault::Delay(_)) => {
                // Tell the callee which call delivered its request: the trace goes on, with this call's key as
                // the parent-id, so a callee that passes the header on links its own calls to this one.
                let trace =
                    traceparent.map_or(u128::from(execution.id()) << 64 | u128::from(decision.key.0), |t| t.trace);
                let mut parts = parts;
                let value = format!("00-{trace:032x}-{:016x}-01", decision.key.0);
                parts.headers.insert(TRACEPARENT, http::HeaderValue::from_str(&value).expect("hex is a valid header"));
                let result = self.forward(parts, body).await;
                execution.complete(
                    decision.index,
                    match &result {
                        Ok(response) => CallOutcome::Status(response.status().as_u16()),
                        Err(kind) => CallOutcome::Transport(*kind),
                    },
                );
                result.map_err(|_| Reset)
            }
        }
    }

    async fn forward(&self, parts: http::request::Parts, body: Bytes) -> Result<Response<Full<Bytes>>, Transport> {
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let uri = format!("http://{}{}", self.upstream, path);
        let mut request =
            Request::builder().method(parts.method).uri(uri).body(Full::new(body)).map_err(|_| Transport::Request)?;
        for (name, value) in &parts.headers {
            if name != http::header::HOST {
                request.headers_mut().append(name, value.clone());
            }
        }
        let response = self.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                Transport::Connect
            } else {
                Transport::Request
            }
        })?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|_| Transport::Request)?.to_bytes();
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::context::Execution;

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
        let echo = service_fn(|request: Request<Incoming>| async move {
            let header = request.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(header))))
        });
        tokio::spawn(crate::net::accept_until(upstream, Arc::clone(&upstream_stop), echo));
        let execution = Execution::start(Default::default());
        let current: Current = Arc::new(Mutex::new(Some(Arc::clone(&execution))));
        let spec = ProxySpec { from: "a".into(), to: "b".into(), listen: 0, upstream: upstream_address.to_string() };
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
