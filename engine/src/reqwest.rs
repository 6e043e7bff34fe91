//! reqwest (feature `reqwest`): [`Middleware`], a `reqwest_middleware::Middleware` through which cloture
//! observes and faults a reqwest client's calls:
//! `reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(cloture::reqwest::Middleware).build()`.
//!
//! It does for a call what [`crate::Client`] does, through the same decision ([`crate::inject`]): the call
//! site is the caller's own code ([`crate::site`]), the time limit the request's own (`RequestBuilder::
//! timeout`; unknown when only the client has one, which reqwest does not let anyone read). Injected faults
//! are reqwest's own answers: `status:NNN` a response with that status and an empty body, `connect` and
//! `timeout` a `reqwest::Error` for which `is_connect()` (`is_timeout()`) holds — made by a client of
//! cloture's whose connector fails at once, so no request leaves. `slow` sends the request to a loopback
//! listener of cloture's that never answers, so reqwest's own timeouts (the client's included) end it as
//! they would end a real call; `delay:D` holds the call inside the request's timeout before sending it. Add it last, so that it runs closest to the wire: after
//! middlewares that set headers (OpenTelemetry's), before none that retry.

use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};

use ::reqwest::ResponseBuilderExt;
use http::Extensions;
use reqwest_middleware::{Next, Result};

use crate::fault::Fault;
use crate::inject::{answered, failed, held, Call, Injection, Outbound};
use crate::trace::TimeLimit;

/// The middleware; see the module's documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Middleware;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Middleware {
    async fn handle(
        &self,
        mut request: ::reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<::reqwest::Response> {
        // First thing in the first poll: the caller's future is on the stack.
        let site = crate::site::caller();
        let url = request.url().clone();
        let authority = match url.port_or_known_default() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let call = Call {
            file: site.file,
            line: site.line,
            column: site.column,
            method: request.method().as_str(),
            authority: &authority,
            path: url.path(),
            limit: request.timeout().map_or(TimeLimit::Unknown, |limit| TimeLimit::Within(*limit)),
        };
        let Some(outbound) = Outbound::begin(&call) else {
            return next.run(request, extensions).await;
        };
        let hold = match outbound.injection() {
            Injection::Answer(fault) => return injected(fault, request, url).await,
            Injection::Send { hold } => hold,
        };
        outbound.propagate(request.headers_mut());
        let result = match request.timeout().copied() {
            // A callee that never answers: the request goes to a listener of cloture's that accepts and
            // stays silent, so whichever timeout reqwest has (the request's, or the client's, which cannot
            // be read) ends it as it would end a real one, and none leaves it hanging.
            _ if hold == Fault::Slow.hold() => {
                *request.url_mut() = silent_url(&url);
                next.run(request, extensions).await.map_err(|error| match error {
                    reqwest_middleware::Error::Reqwest(error) => {
                        reqwest_middleware::Error::Reqwest(error.with_url(url))
                    }
                    other => other,
                })
            }
            // reqwest's timeout would start only when the request is sent: the hold is inside it.
            Some(limit) if hold.is_some() => {
                match tokio::time::timeout(limit, held(hold, next.run(request, extensions))).await {
                    Ok(result) => result,
                    Err(_) => Err(failing(Fault::Timeout, url).await),
                }
            }
            _ => held(hold, next.run(request, extensions)).await,
        };
        outbound.finish(match &result {
            Ok(response) => answered(response.status(), response.headers()),
            Err(reqwest_middleware::Error::Reqwest(error)) => failed(error),
            Err(reqwest_middleware::Error::Middleware(error)) => failed(error.as_ref()),
        });
        result
    }
}

/// The answer of a fault that answers at once.
async fn injected(fault: Fault, request: ::reqwest::Request, url: ::reqwest::Url) -> Result<::reqwest::Response> {
    match fault {
        Fault::Status(code) => {
            let status = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            let response = http::Response::builder().status(status).url(url).body(Vec::<u8>::new());
            Ok(::reqwest::Response::from(response.expect("a status and a URL make a response")))
        }
        Fault::Grpc(code) => {
            let (parts, _) = crate::fault::injected_grpc(code).into_parts();
            let mut response = http::Response::builder().status(parts.status).url(url);
            if let Some(headers) = response.headers_mut() {
                headers.extend(parts.headers);
            }
            Ok(::reqwest::Response::from(response.body(Vec::<u8>::new()).expect("a gRPC answer is a response")))
        }
        Fault::Connect | Fault::Timeout => {
            drop(request);
            // Ready at once: the failing connector answers without any I/O or timer.
            Err(failing(fault, url).await)
        }
        Fault::Slow | Fault::Delay(_) => unreachable!("faults that hold a call are made by the middleware"),
    }
}

/// `url` sent to a loopback listener that accepts connections, reads nothing and never answers (one per
/// process, on a thread of its own; it keeps the last 256 connections open).
fn silent_url(url: &::reqwest::Url) -> ::reqwest::Url {
    static SILENT: OnceLock<u16> = OnceLock::new();
    let port = *SILENT.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port for silent callees");
        let port = listener.local_addr().expect("a bound listener has an address").port();
        std::thread::Builder::new()
            .name("cloture-silent".into())
            .spawn(move || {
                let mut open = std::collections::VecDeque::new();
                for stream in listener.incoming().flatten() {
                    open.push_back(stream);
                    if open.len() > 256 {
                        open.pop_front();
                    }
                }
            })
            .expect("a thread for silent callees");
        port
    });
    let mut silent = url.clone();
    let _ = silent.set_scheme("http");
    let _ = silent.set_host(Some("127.0.0.1"));
    let _ = silent.set_port(Some(port));
    silent
}

/// reqwest's own error for a `connect` or `timeout` fault, naming `url`: a request sent by a client whose
/// connector fails at once with the matching `io::Error`.
async fn failing(fault: Fault, url: ::reqwest::Url) -> reqwest_middleware::Error {
    static REFUSING: OnceLock<::reqwest::Client> = OnceLock::new();
    static TIMING_OUT: OnceLock<::reqwest::Client> = OnceLock::new();
    let (client, kind) = match fault {
        Fault::Connect => (&REFUSING, std::io::ErrorKind::ConnectionRefused),
        _ => (&TIMING_OUT, std::io::ErrorKind::TimedOut),
    };
    let client = client.get_or_init(|| {
        ::reqwest::Client::builder()
            .no_proxy()
            .connector_layer(Failing(kind))
            .build()
            .expect("a client without TLS or proxies builds")
    });
    match client.get(url.clone()).send().await {
        Err(error) => reqwest_middleware::Error::Reqwest(error.with_url(url)),
        Ok(_) => unreachable!("the failing connector never connects"),
    }
}

/// A connector layer whose connector fails at once with an `io::Error` of one kind (labelled injected).
#[derive(Clone, Copy, Debug)]
struct Failing(std::io::ErrorKind);

impl<S> tower_layer::Layer<S> for Failing {
    type Service = FailingConnector<S>;

    fn layer(&self, _: S) -> FailingConnector<S> {
        FailingConnector { kind: self.0, _inner: std::marker::PhantomData }
    }
}

#[derive(Debug)]
struct FailingConnector<S> {
    kind: std::io::ErrorKind,
    _inner: std::marker::PhantomData<fn() -> S>,
}

impl<S> Clone for FailingConnector<S> {
    fn clone(&self) -> Self {
        FailingConnector { kind: self.kind, _inner: std::marker::PhantomData }
    }
}

impl<S: tower_service::Service<T>, T> tower_service::Service<T> for FailingConnector<S> {
    type Response = S::Response;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::future::Ready<std::result::Result<S::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: T) -> Self::Future {
        std::future::ready(Err(Box::new(std::io::Error::new(self.kind, "injected by cloture"))))
    }
}
