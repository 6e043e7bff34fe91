//! Tower layers (feature `tower`): [`ServerLayer`] for any tower HTTP service (an axum `Router`, a tonic
//! server, a hyper service through hyper-util) and [`ClientLayer`] for tower HTTP clients (a hyper-util
//! `Client`, a tonic `Channel`).
//!
//! The client layer does for a call what [`crate::Client`] does, through the same decision
//! ([`crate::inject`]): it names the call site in the caller's own code ([`crate::site`]), registers the
//! call, then answers an injected fault at once — a response with the injected status and an empty body, a
//! trailers-only gRPC answer for `grpc:CODE`, or an error for `connect` and `timeout` — or holds the call
//! (`slow`, `delay:D`) inside the caller's time limits before making it with the context headers. gRPC
//! calls (content type `application/grpc`) are recorded with method `GRPC`, their time limit read from
//! `grpc-timeout`; other calls' time limit is unknown to the layer (a timeout around the client is its own).
//!
//! Errors are boxed, as tower stacks carry them. An injected `connect` is an `io::Error` of kind
//! `ConnectionRefused` (on gRPC calls, with feature `tonic`, tonic's own `ConnectError`, which tonic turns
//! into `UNAVAILABLE` as it does a refused connection); an injected `timeout` an `io::Error` of kind
//! `TimedOut` (tonic's `TimeoutExpired` on gRPC calls: `CANCELLED`, "Timeout expired", as tonic's own).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{Either, Full};
use tower_service::Service;

use crate::context::Context;
use crate::fault::{Fault, GRPC_METHOD};
use crate::inject::{answered, failed, held, Call, Injection, Outbound};
use crate::server::is_grpc;
pub use crate::server::{Body, Instrumented, ServerLayer};
use crate::trace::TimeLimit;
pub use tower_layer::Layer;

/// The errors of an instrumented client: the inner client's, or an injected one.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The tower layer that lets cloture observe and fault a client's calls:
/// `ServiceBuilder::new().layer(ClientLayer::new()).service(client)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientLayer;

impl ClientLayer {
    pub fn new() -> ClientLayer {
        ClientLayer
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> ClientService<S> {
        ClientService { inner }
    }
}

/// A client wrapped by [`ClientLayer`].
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
}

type Answer<R> = Result<Response<Body<R>>, BoxError>;

impl<S, B, R> Service<Request<B>> for ClientService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    R: Send + 'static,
{
    type Response = Response<Body<R>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Answer<R>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone is not ready; the client that was polled ready makes this call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let Some(context) = Context::current() else {
            return Box::pin(async move { inner.call(request).await.map(left).map_err(Into::into) });
        };
        let grpc = is_grpc(request.headers());
        let site = crate::site::caller();
        let limit = if grpc { grpc_timeout(request.headers()) } else { TimeLimit::Unknown };
        let call = Call {
            file: site.file,
            line: site.line,
            column: site.column,
            method: if grpc { GRPC_METHOD } else { request.method().as_str() },
            authority: request.uri().authority().map_or("", |authority| authority.as_str()),
            path: request.uri().path(),
            limit,
        };
        if call.authority.is_empty() {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    path = call.path,
                    "a call without an address: the callee cannot be named (give a tonic client its origin, \
                     `with_origin`)"
                )
            });
        }
        let outbound = Outbound::begin_in(&context, &call);
        let hold = match outbound.injection() {
            Injection::Answer(fault) => return Box::pin(std::future::ready(injected(fault, grpc, outbound.target()))),
            Injection::Send { hold } => hold,
        };
        outbound.propagate(request.headers_mut());
        Box::pin(async move {
            // The inner client is called only after the hold: a tonic channel dispatches a call when called.
            let call = held(hold, async move { inner.call(request).await.map_err(Into::into) });
            let result = match limit {
                // The call's own limit (gRPC's deadline) is enforced by the client inside this layer, after the
                // hold: here it covers the hold too.
                TimeLimit::Within(limit) if hold.is_some() => {
                    let target = outbound.target();
                    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| Err(timeout_error(grpc, target)))
                }
                _ => call.await,
            };
            outbound.finish(match &result {
                Ok(response) => answered(response.status(), response.headers()),
                Err(error) => failed(error.as_ref()),
            });
            result.map(left)
        })
    }
}

fn left<R>(response: Response<R>) -> Response<Body<R>> {
    response.map(Either::Left)
}

/// The time limit a gRPC call carries in `grpc-timeout` (`<digits><unit>`, units H M S m u n).
fn grpc_timeout(headers: &HeaderMap) -> TimeLimit {
    let Some(text) = headers.get("grpc-timeout").and_then(|value| value.to_str().ok()) else {
        return TimeLimit::Unknown;
    };
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    let Ok(value) = digits.parse::<u64>() else {
        return TimeLimit::Unknown;
    };
    let limit = match unit {
        "H" => Duration::from_secs(value.saturating_mul(3600)),
        "M" => Duration::from_secs(value.saturating_mul(60)),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return TimeLimit::Unknown,
    };
    TimeLimit::Within(limit)
}

/// The answer of a fault that answers at once.
fn injected<R>(fault: Fault, grpc: bool, target: &str) -> Answer<R> {
    let body = |response: Response<Bytes>| response.map(|body| Either::Right(Full::new(body)));
    match fault {
        Fault::Connect => Err(connect_error(grpc, target)),
        Fault::Timeout => Err(timeout_error(grpc, target)),
        Fault::Status(code) => {
            let mut response = Response::new(Bytes::new());
            *response.status_mut() =
                http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            Ok(body(response))
        }
        Fault::Grpc(code) => Ok(body(crate::fault::injected_grpc(code))),
        Fault::Slow | Fault::Delay(_) => unreachable!("faults that hold a call are made by the layer's call"),
    }
}

fn connect_error(grpc: bool, target: &str) -> BoxError {
    let refused = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        format!("tcp connect error: connection to {target} refused (injected)"),
    );
    #[cfg(feature = "tonic")]
    if grpc {
        return Box::new(tonic::ConnectError(Box::new(refused)));
    }
    let _ = grpc;
    Box::new(refused)
}

fn timeout_error(grpc: bool, target: &str) -> BoxError {
    #[cfg(feature = "tonic")]
    if grpc {
        let _ = target;
        return Box::new(tonic::TimeoutExpired(()));
    }
    let _ = grpc;
    Box::new(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("request to {target} timed out (injected)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read_in_every_unit() {
        let limit = |text: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", http::HeaderValue::from_static(text));
            grpc_timeout(&headers)
        };
        assert_eq!(limit("250m"), TimeLimit::Within(Duration::from_millis(250)));
        assert_eq!(limit("2S"), TimeLimit::Within(Duration::from_secs(2)));
        assert_eq!(limit("1H"), TimeLimit::Within(Duration::from_secs(3600)));
        assert_eq!(limit("10x"), TimeLimit::Unknown);
        assert_eq!(grpc_timeout(&HeaderMap::new()), TimeLimit::Unknown);
    }

    #[test]
    fn injected_errors_read_back_as_the_transport_failure_they_stand_for() {
        use crate::trace::{CallOutcome, Transport};
        for grpc in [false, true] {
            let connect = connect_error(grpc, "inventory");
            assert_eq!(failed(connect.as_ref()), CallOutcome::Transport(Transport::Connect), "grpc: {grpc}");
            let timeout = timeout_error(grpc, "inventory");
            assert_eq!(failed(timeout.as_ref()), CallOutcome::Transport(Transport::Timeout), "grpc: {grpc}");
        }
    }
}
