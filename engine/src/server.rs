//! The server side of instrumentation: a hyper HTTP/1 server loop that every instrumented service runs.
//!
//! For each request it reads the propagated context headers, reports to the execution which service
//! received the call, runs the handler inside that execution's [`Context`] and catches a panic in the
//! handler: the panic becomes a 500 and a recorded [`Crash`](crate::trace::Crash) with its message and
//! source location. A handler that answers 500 from an unhandled error marks the response with an
//! [`Unhandled`] extension so the crash keeps its location too. Services register their address under their
//! name so the client can name a call's target without depending on ports.

use std::collections::HashMap;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::call::{CallKey, CallSite};
use crate::context::{Context, Execution};
use crate::coordinator;
use crate::panic::{install_panic_hook, CatchPanic};
use crate::propagate;
use crate::registry::register_service;
use crate::trace::{parse_plan, RemoteReport};

/// Marks a 500 response produced from an error the handler did not handle: carried as a response
/// extension, read by [`serve`], never sent on the wire.
#[derive(Clone, Debug)]
pub struct Unhandled {
    pub message: String,
    pub location: &'static Location<'static>,
}

/// Serves `handler` on `listener` as the service `name` until `shutdown` resolves, then lets in-flight
/// requests finish (up to five seconds) and returns.
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
    install_panic_hook();
    let registered = listener.local_addr().map(|address| register_service(name, &address.to_string()));
    let name: Arc<str> = Arc::from(name);
    async move {
        registered?;
        accept_loop(listener, name, handler, shutdown).await;
        Ok(())
    }
}

async fn accept_loop<H, F>(listener: TcpListener, name: Arc<str>, handler: H, shutdown: impl Future<Output = ()>)
where
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
                    tracing::warn!(service = %name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service_name = Arc::clone(&name);
        let service = service_fn(move |request| handle(Arc::clone(&service_name), handler.clone(), request));
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
        tracing::warn!(service = %name, "connections still open after 5 s; shutting down anyway");
    }
}

async fn handle<H, F>(
    name: Arc<str>,
    handler: H,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error>
where
    H: Fn(Request<Bytes>) -> F,
    F: Future<Output = Response<Bytes>>,
{
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let request = Request::from_parts(parts, body);
    if request.uri().path() == COVERAGE_PATH && cloture_coverage::runtime::enabled() {
        return Ok(coverage_snapshot(&name, &request).map(Full::new));
    }
    let incoming = propagate::extract(request.headers());
    let local = incoming.as_ref().and_then(|incoming| Execution::lookup(incoming.execution));
    let response = match (local, incoming) {
        // In-process: the execution lives here.
        (Some(execution), Some(incoming)) => in_context(&execution, &name, incoming.parent, &handler, request).await,
        // Another process runs the execution: decide from the plan in the headers, report afterwards.
        (None, Some(incoming)) if coordinator::configured().is_some() => {
            match incoming.plan.as_deref().map(parse_plan).unwrap_or(Ok(HashMap::new())) {
                Ok(plan) => remote(incoming.execution, plan, incoming.parent, &name, &handler, request).await,
                Err(why) => {
                    tracing::warn!(service = %name, %why, "ignoring a malformed plan header");
                    plain(&name, &handler, request).await
                }
            }
        }
        // No context: in coordinator mode, a request of an external test; ask which execution is on.
        (None, None) if coordinator::configured().is_some() => {
            let path = request.uri().path().to_string();
            match coordinator::current(&name, request.method().as_str(), &path).await {
                Some((id, parent, plan)) => remote(id, plan, parent, &name, &handler, request).await,
                None => plain(&name, &handler, request).await,
            }
        }
        _ => plain(&name, &handler, request).await,
    };
    Ok(response.map(Full::new))
}

/// The control path answered only by builds with coverage instrumentation: `POST` takes a snapshot of the
/// LLVM counters, writes it where `cargo llvm-cov report` finds it, resets the counters and answers the
/// snapshot (`.profraw` bytes), so the explorer measures each execution of a service in another process.
/// Builds without coverage (every normal build) do not answer it: the path goes to the handler as usual.
pub const COVERAGE_PATH: &str = "/__cloture/coverage";

fn coverage_snapshot(name: &str, request: &Request<Bytes>) -> Response<Bytes> {
    let respond = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response
    };
    if request.method() != http::Method::POST {
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

/// Runs the handler inside `execution`'s context: panics and unhandled errors become recorded crashes.
async fn in_context<H, F>(
    execution: &Arc<Execution>,
    name: &Arc<str>,
    parent: CallKey,
    handler: &H,
    request: Request<Bytes>,
) -> Response<Bytes>
where
    H: Fn(Request<Bytes>) -> F,
    F: Future<Output = Response<Bytes>>,
{
    execution.received(parent, name);
    let _in_flight = execution.enter();
    let context = Context { execution: Arc::clone(execution), service: Arc::clone(name), parent };
    match CatchPanic::new(context.scope(handler(request))).await {
        Ok(response) => {
            if let Some(unhandled) = response.extensions().get::<Unhandled>() {
                let location = CallSite::from_location(unhandled.location);
                execution.crashed(name, unhandled.message.clone(), Some(location));
            }
            response
        }
        Err(panic) => {
            execution.crashed(name, panic.message, panic.location);
            internal_error()
        }
    }
}

/// Handles one request of an execution run by another process, then reports what was observed to the
/// coordinator before answering.
async fn remote<H, F>(
    id: u64,
    plan: HashMap<CallKey, crate::Fault>,
    parent: CallKey,
    name: &Arc<str>,
    handler: &H,
    request: Request<Bytes>,
) -> Response<Bytes>
where
    H: Fn(Request<Bytes>) -> F,
    F: Future<Output = Response<Bytes>>,
{
    let execution = Execution::remote(id, plan);
    let response = in_context(&execution, name, parent, handler, request).await;
    execution.quiesce().await;
    let trace = execution.trace();
    let report = RemoteReport {
        service: name.to_string(),
        parent,
        status: response.status().as_u16(),
        calls: trace.calls,
        crashes: trace.crashes,
    };
    coordinator::report(id, &report).await;
    response
}

/// Handles a request outside any execution.
async fn plain<H, F>(name: &str, handler: &H, request: Request<Bytes>) -> Response<Bytes>
where
    H: Fn(Request<Bytes>) -> F,
    F: Future<Output = Response<Bytes>>,
{
    match CatchPanic::new(handler(request)).await {
        Ok(response) => response,
        Err(panic) => {
            tracing::error!(service = %name, message = %panic.message, "handler panicked");
            internal_error()
        }
    }
}

fn internal_error() -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(br#"{"error":"Internal Server Error"}"#));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
