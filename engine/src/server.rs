//! The server side of instrumentation: [`ServerLayer`], a tower layer for any HTTP service — an axum
//! `Router`, a tonic server, a hyper service through hyper-util — and [`serve`], cloture's own hyper HTTP/1
//! loop, a thin convenience over the same layer.
//!
//! For each request the layer reads the propagated context (cloture's headers, or its entries in W3C
//! `tracestate`/`baggage`; for services of other processes, the plan in the headers or the coordinator),
//! reports to the execution which service received the call, runs the inner service inside that
//! execution's [`Context`] and catches a panic in it: the panic becomes a 500 (a gRPC `INTERNAL` for a gRPC
//! request) and a recorded [`Crash`](crate::trace::Crash) with its message and source location. A handler
//! that answers 500 from an unhandled error marks the response with an [`Unhandled`] extension so the crash
//! keeps its location too; a gRPC answer `INTERNAL` or `UNKNOWN` is a crash as well. Services are named in
//! the registry so that clients name a call's target without depending on ports.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_layer::Layer;
use tower_service::Service;

use crate::call::{CallKey, CallSite};
use crate::context::{Context, Execution};
use crate::coordinator;
use crate::fault::Fault;
use crate::panic::{install_panic_hook, CatchPanic};
use crate::propagate;
use crate::registry::{register_service, service_name};
use crate::trace::{parse_plan, RemoteReport};

/// Marks a 500 response produced from an error the handler did not handle: carried as a response
/// extension, read by the [`ServerLayer`], never sent on the wire.
#[derive(Clone, Debug)]
pub struct Unhandled {
    pub message: String,
    pub location: &'static Location<'static>,
}

/// The body of an instrumented service's responses: the inner service's, or cloture's own (a caught panic,
/// the coverage control path).
pub type Body<B> = Either<B, Full<Bytes>>;

/// The tower layer that makes a service explorable: `router.layer(ServerLayer::new("orders"))`.
#[derive(Clone, Debug)]
pub struct ServerLayer {
    name: Arc<str>,
}

impl ServerLayer {
    /// Instruments the service called `name`. Its address is registered under that name by
    /// [`ServerLayer::listening_on`], or learnt from the `Host` of its first request.
    pub fn new(name: &str) -> ServerLayer {
        install_panic_hook();
        ServerLayer { name: Arc::from(name) }
    }

    /// Registers the address the service listens on under its name, so that calls into it are named
    /// (and keyed) by the service from the very first one: needed in-process, where the first call of the
    /// first reference run must get the key every later run gives it.
    pub fn listening_on(self, address: SocketAddr) -> ServerLayer {
        register_service(&self.name, &address.to_string());
        self
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = Instrumented<S>;

    fn layer(&self, inner: S) -> Instrumented<S> {
        Instrumented { inner, name: Arc::clone(&self.name) }
    }
}

/// A service wrapped by [`ServerLayer`].
#[derive(Clone, Debug)]
pub struct Instrumented<S> {
    inner: S,
    name: Arc<str>,
}

type Answer<R, E> = Result<Response<Body<R>>, E>;

impl<S, B, R> Service<Request<B>> for Instrumented<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
    R: Send + 'static,
{
    type Response = Response<Body<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Answer<R, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready; the service that was polled ready handles this request.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(handle(inner, Arc::clone(&self.name), request))
    }
}

async fn handle<S, B, R>(inner: S, name: Arc<str>, request: Request<B>) -> Answer<R, S::Error>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    if request.uri().path() == COVERAGE_PATH && cloture_coverage::runtime::enabled() {
        return Ok(coverage_snapshot(&name, request.method()).map(|body| Either::Right(Full::new(body))));
    }
    learn_address(&name, &request);
    let handler = Handler { inner, name, grpc: is_grpc(request.headers()) };
    let incoming = propagate::extract(request.headers());
    let local = incoming.as_ref().and_then(|incoming| Execution::lookup(incoming.execution));
    match (local, incoming) {
        // In-process: the execution lives here.
        (Some(execution), Some(incoming)) => handler.in_context(&execution, incoming.parent, request).await,
        // Another process runs the execution: decide from the plan in the headers, report afterwards.
        (None, Some(incoming)) if coordinator::configured().is_some() => {
            match incoming.plan.as_deref().map(parse_plan).unwrap_or(Ok(HashMap::new())) {
                Ok(plan) => handler.remote(incoming.execution, plan, incoming.parent, request).await,
                Err(why) => {
                    tracing::warn!(service = %handler.name, %why, "ignoring a malformed plan header");
                    handler.plain(request).await
                }
            }
        }
        // No context: in coordinator mode, a request of an external test; ask which execution is on.
        (None, None) if coordinator::configured().is_some() => {
            let path = request.uri().path().to_string();
            match coordinator::current(&handler.name, request.method().as_str(), &path).await {
                Some((id, parent, plan)) => handler.remote(id, plan, parent, request).await,
                None => handler.plain(request).await,
            }
        }
        _ => handler.plain(request).await,
    }
}

/// Registers the address a request was sent to under the service's name, when nothing is registered there
/// yet (a service whose layer was not told its address).
fn learn_address<B>(name: &str, request: &Request<B>) {
    let authority = request
        .headers()
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| request.uri().authority().map(|authority| authority.as_str()));
    if let Some(authority) = authority {
        if *service_name(authority) == *authority {
            register_service(name, authority);
        }
    }
}

/// Whether a request or response is gRPC.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// The inner service of one request, and what the layer knows about it.
struct Handler<S> {
    inner: S,
    name: Arc<str>,
    grpc: bool,
}

impl<S> Handler<S> {
    /// Runs the inner service inside `execution`'s context: panics and unhandled errors become crashes.
    async fn in_context<B, R>(
        self,
        execution: &Arc<Execution>,
        parent: CallKey,
        request: Request<B>,
    ) -> Answer<R, S::Error>
    where
        S: Service<Request<B>, Response = Response<R>>,
    {
        let Handler { mut inner, name, grpc } = self;
        execution.received(parent, &name);
        let _in_flight = execution.enter();
        let context = Context { execution: Arc::clone(execution), service: Arc::clone(&name), parent };
        match CatchPanic::new(context.scope(async move { inner.call(request).await })).await {
            Ok(Ok(response)) => {
                if let Some(unhandled) = response.extensions().get::<Unhandled>() {
                    let location = CallSite::from_location(unhandled.location);
                    execution.crashed(&name, unhandled.message.clone(), Some(location));
                } else if let Some(message) = grpc_failure(response.headers()) {
                    execution.crashed(&name, message, None);
                }
                Ok(response.map(Either::Left))
            }
            Ok(Err(error)) => Err(error),
            Err(panic) => {
                execution.crashed(&name, panic.message, panic.location);
                Ok(internal_error(grpc))
            }
        }
    }

    /// Handles one request of an execution run by another process, then reports what was observed to the
    /// coordinator before answering.
    async fn remote<B, R>(
        self,
        id: u64,
        plan: HashMap<CallKey, Fault>,
        parent: CallKey,
        request: Request<B>,
    ) -> Answer<R, S::Error>
    where
        S: Service<Request<B>, Response = Response<R>>,
    {
        let name = Arc::clone(&self.name);
        let execution = Execution::remote(id, plan);
        let answer = self.in_context(&execution, parent, request).await;
        execution.quiesce().await;
        let trace = execution.trace();
        let status = answer.as_ref().map_or(500, |response| response.status().as_u16());
        let report = RemoteReport {
            service: name.to_string(),
            parent,
            status,
            partial: false,
            calls: trace.calls,
            crashes: trace.crashes,
        };
        coordinator::report(id, &report).await;
        answer
    }

    /// Handles a request outside any execution.
    async fn plain<B, R>(self, request: Request<B>) -> Answer<R, S::Error>
    where
        S: Service<Request<B>, Response = Response<R>>,
    {
        let Handler { mut inner, name, grpc } = self;
        match CatchPanic::new(async move { inner.call(request).await }).await {
            Ok(answer) => answer.map(|response| response.map(Either::Left)),
            Err(panic) => {
                tracing::error!(service = %name, message = %panic.message, "handler panicked");
                Ok(internal_error(grpc))
            }
        }
    }
}

/// The message of a gRPC answer that says the handler failed unexpectedly (`INTERNAL`, `UNKNOWN`), sent
/// "trailers only" (in the headers), as tonic sends a handler's error.
fn grpc_failure(headers: &HeaderMap) -> Option<String> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse::<u8>().ok()?;
    if code != 13 && code != 2 {
        return None;
    }
    let message = headers.get("grpc-message").and_then(|message| message.to_str().ok()).unwrap_or("");
    let name = crate::fault::GRPC_CODES[usize::from(code)];
    Some(format!("gRPC {name}: {}", propagate::percent_decoded(message)))
}

/// The answer to a request whose handler panicked.
fn internal_error<B>(grpc: bool) -> Response<Body<B>> {
    if grpc {
        let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from_static("13"));
        headers.insert("grpc-message", HeaderValue::from_static("Internal%20Server%20Error"));
        return response;
    }
    let body = Bytes::from_static(br#"{"error":"Internal Server Error"}"#);
    let mut response = Response::new(Either::Right(Full::new(body)));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Serves `handler` on `listener` as the service `name` until `shutdown` resolves, then lets in-flight
/// requests finish (up to five seconds) and returns. The handler runs under [`ServerLayer`].
///
/// The service is registered under `name` when this function is called, not when the future is first
/// polled, so calls made right after spawning it already know their target's name.
pub fn serve<H, F>(
    listener: TcpListener,
    name: &str,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> impl Future<Output = std::io::Result<()>>
where
    H: Fn(Request<Bytes>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Bytes>> + Send + 'static,
{
    let layer = listener.local_addr().map(|address| ServerLayer::new(name).listening_on(address));
    async move {
        accept_loop(listener, layer?, HandlerService(handler), shutdown).await;
        Ok(())
    }
}

/// A `Fn(Request<Bytes>) -> Response<Bytes>` handler as a tower service of hyper requests.
#[derive(Clone)]
struct HandlerService<H>(H);

impl<H, F> Service<Request<hyper::body::Incoming>> for HandlerService<H>
where
    H: Fn(Request<Bytes>) -> F + Clone + Send + 'static,
    F: Future<Output = Response<Bytes>> + Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), hyper::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let handler = self.0.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(handler(Request::from_parts(parts, body)).await.map(Full::new))
        })
    }
}

async fn accept_loop<H, F>(
    listener: TcpListener,
    layer: ServerLayer,
    handler: HandlerService<H>,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Bytes>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Bytes>> + Send + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(service = %layer.name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(layer.layer(handler.clone()));
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await.is_err() {
        tracing::warn!(service = %layer.name, "connections still open after 5 s; shutting down anyway");
    }
}

/// The control path answered only by builds with coverage instrumentation: `POST` takes a snapshot of the
/// LLVM counters, writes it where `cargo llvm-cov report` finds it, resets the counters and answers the
/// snapshot (`.profraw` bytes), so the explorer measures each execution of a service in another process.
/// Builds without coverage (every normal build) do not answer it: the path goes to the handler as usual.
pub const COVERAGE_PATH: &str = "/__cloture/coverage";

fn coverage_snapshot(name: &str, method: &http::Method) -> Response<Bytes> {
    let respond = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response
    };
    if method != http::Method::POST {
        return respond(StatusCode::METHOD_NOT_ALLOWED, Bytes::from_static(b"POST only"));
    }
    let Some(bytes) = cloture_coverage::runtime::snapshot() else {
        return respond(StatusCode::INTERNAL_SERVER_ERROR, Bytes::from_static(b"no snapshot"));
    };
    // Profile tags take letters, digits, `-` and `_`; service names may also hold `.`.
    let tag = format!("cloture-{}", name.replace(|c: char| !(c.is_ascii_alphanumeric() || c == '-'), "_"));
    if let Err(error) = cloture_coverage::runtime::write_profraw(&bytes, &tag) {
        tracing::warn!(%error, "snapshot not written for cargo llvm-cov report");
    }
    cloture_coverage::runtime::reset();
    respond(StatusCode::OK, Bytes::from(bytes))
}
