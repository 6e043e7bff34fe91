//! The HTTP client services use for outbound calls: the one place faults are injected.
//!
//! `Client::get` is a plain `#[track_caller]` function that captures the caller's source location and
//! returns a [`RequestBuilder`]; `#[track_caller]` on an `async fn` would be ignored on stable Rust. When the
//! current task runs inside an execution's [`Context`], `send` registers the call, asks the execution whether
//! to inject a fault (an in-process map lookup, no network), and either returns the fault at once or makes
//! the real request with the context headers added. Outside an execution it is a plain pooled HTTP/1 client.
//! The decision and the record are [`crate::inject`]'s, shared with the integrations of other clients.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::call::CallKey;
use crate::fault::Fault;
use crate::inject::{answered, held, Call, Injection, Outbound};
use crate::trace::{CallOutcome, TimeLimit, Transport};

/// A pooled HTTP/1 client whose calls cloture can observe and fault. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    timeout: Option<Duration>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Client {
    pub fn new() -> Client {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Client { inner, timeout: None }
    }

    /// A default timeout for every request of this client.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = Some(timeout);
        self
    }

    /// Starts a GET request. The call site recorded is the caller's source location.
    #[track_caller]
    pub fn get(&self, url: impl Into<String>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Starts a request with any method. The call site recorded is the caller's source location.
    #[track_caller]
    pub fn request(&self, method: Method, url: impl Into<String>) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method,
            url: url.into(),
            body: Bytes::new(),
            headers: HeaderMap::new(),
            timeout: self.timeout,
            site: Location::caller(),
        }
    }
}

/// A request being built; `send` makes it.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    method: Method,
    url: String,
    body: Bytes,
    headers: HeaderMap,
    timeout: Option<Duration>,
    site: &'static Location<'static>,
}

impl RequestBuilder {
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: http::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sends the request and reads the whole response.
    pub async fn send(self) -> Result<Response, Error> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|_| Error::new(ErrorKind::Request, format!("`{}` is not a valid URL", self.url)))?;
        let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default();
        let path = uri.path().to_string();
        let call = Call {
            file: self.site.file(),
            line: self.site.line(),
            column: self.site.column(),
            method: self.method.as_str(),
            authority: &authority,
            path: &path,
            limit: self.timeout.map_or(TimeLimit::None, TimeLimit::Within),
        };
        let Some(outbound) = Outbound::begin(&call) else {
            return self.transmit(uri, None, None).await;
        };
        let hold = match outbound.injection() {
            Injection::Answer(fault) => return injected(fault, outbound.target()),
            Injection::Send { hold } => hold,
        };
        // A slow callee: the wait happens inside the caller's time limit, which ends it if there is one (and
        // so does any limit the caller set around this call). In an exploration the wait is virtual.
        let result = self.transmit(uri, Some(&outbound), hold).await;
        outbound.finish(match &result {
            Ok(response) => answered(response.status, &response.headers),
            Err(error) => error.kind.outcome(),
        });
        if let Ok(response) = &result {
            outbound.test_answered(response.status.as_u16(), &response.body);
        }
        result.map(|response| Response { key: Some(outbound.key()), ..response })
    }

    async fn transmit(self, uri: Uri, outbound: Option<&Outbound>, hold: Option<Duration>) -> Result<Response, Error> {
        let mut request = Request::builder()
            .method(self.method)
            .uri(uri)
            .body(Full::new(self.body))
            .map_err(|error| Error::new(ErrorKind::Request, error.to_string()))?;
        request.headers_mut().extend(self.headers);
        if let Some(outbound) = outbound {
            outbound.propagate(request.headers_mut());
        }
        let exchange = held(hold, async {
            let response = self.client.inner.request(request).await.map_err(|error| {
                let kind = if error.is_connect() || reset_before_answer(&error) {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Request
                };
                Error::new(kind, error_chain(&error))
            })?;
            let (parts, body) = response.into_parts();
            let body =
                body.collect().await.map_err(|error| Error::new(ErrorKind::Request, error_chain(&error)))?.to_bytes();
            Ok(Response { status: parts.status, headers: parts.headers, body, key: None })
        });
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or_else(|_| Err(Error::new(ErrorKind::Timeout, format!("no response within {limit:?}")))),
            None => exchange.await,
        }
    }
}

/// The answer of a fault that answers at once.
fn injected(fault: Fault, target: &str) -> Result<Response, Error> {
    match fault {
        Fault::Connect => Err(Error {
            kind: ErrorKind::Connect,
            message: format!("connection to {target} refused (injected)"),
            injected: true,
        }),
        Fault::Timeout => Err(Error {
            kind: ErrorKind::Timeout,
            message: format!("request to {target} timed out (injected)"),
            injected: true,
        }),
        Fault::Status(code) => {
            let (status, body) = crate::fault::injected_status(code);
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(Response { status, headers, body, key: None })
        }
        Fault::Grpc(code) => {
            // What a gRPC server answers (trailers only), should a plan name a gRPC code for this call.
            let (parts, body) = crate::fault::injected_grpc(code).into_parts();
            Ok(Response { status: parts.status, headers: parts.headers, body, key: None })
        }
        Fault::Slow | Fault::Delay(_) => unreachable!("faults that hold a call are made by `transmit`"),
    }
}

/// Whether the connection was closed or reset before any answer arrived: for the caller, the same as a
/// refused connection (no request was served).
fn reset_before_answer(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_incomplete_message) {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            if matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe) {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A whole response.
#[derive(Clone, Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The call's key in the execution it was made in, if any.
    key: Option<CallKey>,
}

impl Response {
    /// The key of the call that got this response, inside an exploration.
    pub fn call_key(&self) -> Option<CallKey> {
        self.key
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// Decodes the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|error| Error::new(ErrorKind::Decode, format!("response body is not the expected JSON: {error}")))
    }
}

/// What kind of failure a call met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Timeout,
    Request,
    Decode,
}

impl ErrorKind {
    /// The outcome a call that failed this way is recorded with.
    fn outcome(self) -> CallOutcome {
        match self {
            ErrorKind::Connect => CallOutcome::Transport(Transport::Connect),
            ErrorKind::Timeout => CallOutcome::Transport(Transport::Timeout),
            // A body that does not decode comes after a response: `send` never fails that way.
            ErrorKind::Request | ErrorKind::Decode => CallOutcome::Transport(Transport::Request),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Request => "request",
            ErrorKind::Decode => "decode",
        })
    }
}

/// A failed call: transport error, timeout, or a body that did not decode.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    injected: bool,
}

impl Error {
    fn new(kind: ErrorKind, message: String) -> Error {
        Error { kind, message, injected: false }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The connection could not be made (refused, reset before a response).
    pub fn is_connect(&self) -> bool {
        self.kind == ErrorKind::Connect
    }

    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    pub fn is_decode(&self) -> bool {
        self.kind == ErrorKind::Decode
    }

    /// Whether cloture injected this error.
    pub fn is_injected(&self) -> bool {
        self.injected
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
