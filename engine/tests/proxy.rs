//! Proxy mode on services cloture cannot instrument: a pair of stdlib-only Python services (`front` calls
//! `back`), each call going through a cloture proxy. `front` handles error statuses and refused or reset
//! connections, but not a timeout: cloture finds exactly that bug. Then the proxy alone, in front of bare
//! hyper upstreams: bodies stream through (D12), and a caller that stops reading is let go (D4).

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloture::context::Execution;
use cloture::net::{HarnessHealth, Limits};
use cloture::proxy::{Proxy, ProxySpec};
use cloture::report::{FailureClass, Outcome};
use cloture::trace::{CallOutcome, Transport};
use cloture::{Config, Fault};
use http::{Request, Response};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::{start_pair, tests_dir};

#[tokio::test(flavor = "current_thread")]
async fn proxies_find_the_unhandled_timeout_in_a_python_service() {
    let dir = tests_dir("python");
    let logs = common::scratch("proxy", "pair");
    let (mut system, front) = start_pair(&logs).await;
    let command = format!("python3 {}/check.py {front}", dir.display());
    let config = Config { deadline: Duration::from_secs(20), ..Config::default() };
    let report = cloture::explore(&config, system.command_test(&command)).await;
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();
    let report = report.expect("the exploration completes");
    let summary = report.terminal_summary();
    // Reference runs, then the five faults for a call whose time limit a proxy cannot know (connect, slow
    // and three statuses: a timeout is what slow gives the caller) on the one call front makes.
    assert_eq!(report.summary.executions, 7, "{summary}");
    let failing: Vec<_> = report.executions.iter().filter(|e| e.outcome == Outcome::Fail).collect();
    assert_eq!(failing.len(), 1, "{summary}");
    assert_eq!(failing[0].faults[0].fault, Fault::Slow);
    assert_eq!((failing[0].faults[0].from.as_str(), failing[0].faults[0].to.as_str()), ("front", "back"));
    let failure = failing[0].failure.as_ref().expect("failure");
    assert_eq!(failure.class, FailureClass::Crash, "{summary}");
    assert!(failure.message.contains("front answered 500"), "{summary}");
    assert_eq!(report.vulnerabilities.len(), 1);
}

// ---- the proxy alone ----

/// Serves `service` with bare hyper on a free loopback port: the real service behind a proxy.
async fn upstream<S, B>(service: S) -> SocketAddr
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let connection =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service.clone());
            tokio::spawn(connection);
        }
    });
    address
}

/// A proxy `front` → `back` in front of `upstream`, with `execution` current.
async fn proxy_to(upstream: SocketAddr, execution: &Arc<Execution>, limits: Limits) -> Proxy {
    let spec = ProxySpec {
        from: "front".into(),
        to: "back".into(),
        listen: 0,
        upstream: upstream.to_string(),
        fault_body: Default::default(),
        routes: Vec::new(),
    };
    let current = Arc::new(Mutex::new(Some(Arc::clone(execution))));
    Proxy::start_with(&spec, current, limits, HarnessHealth::new()).await.expect("the proxy starts")
}

/// An answer body fed chunk by chunk through a channel.
struct Chunks(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Where the head of an HTTP answer ends in `raw`, if it arrived.
fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|split| split + 4)
}

#[tokio::test]
async fn d12_a_large_body_streams_through_the_proxy_without_being_buffered() {
    const SIZE: usize = 20 * 1024 * 1024;
    // The upstream echoes the request body as its answer body, as it arrives.
    let echo = upstream(service_fn(|request: Request<Incoming>| async move {
        Ok::<_, Infallible>(Response::new(request.into_body()))
    }))
    .await;
    let execution = Execution::start(HashMap::new());
    let proxy = proxy_to(echo, &execution, Limits::default()).await;
    let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();

    let (mut reader, mut writer) = TcpStream::connect(proxy.address()).await.expect("connects").into_split();
    let (progress, mut received) = tokio::sync::watch::channel(0usize);
    let reading = tokio::spawn(async move {
        let mut raw = Vec::with_capacity(SIZE + 1024);
        let mut buffer = vec![0; 256 * 1024];
        loop {
            let n = reader.read(&mut buffer).await.expect("reads");
            if n == 0 {
                return raw;
            }
            raw.extend_from_slice(&buffer[..n]);
            let _ = progress.send(head_end(&raw).map_or(0, |end| raw.len() - end));
        }
    });
    let head = format!("POST /echo HTTP/1.1\r\nHost: back\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n");
    writer.write_all(head.as_bytes()).await.expect("writes the head");
    writer.write_all(&body[..SIZE / 2]).await.expect("writes the first half");
    // Streamed both ways, the echo of the first half comes back before the second half is sent; a proxy
    // that collects the request body (or the answer's) before passing it on would wait here forever.
    // (The value is not kept borrowed: that would block the reader's next update.)
    let first_echo = async { received.wait_for(|n| *n >= 1 << 20).await.map(|_| ()) };
    let echoed = tokio::time::timeout(Duration::from_secs(20), first_echo).await;
    assert!(echoed.is_ok(), "nothing came back before the whole request body was sent: the proxy buffers bodies");
    writer.write_all(&body[SIZE / 2..]).await.expect("writes the second half");
    let raw = tokio::time::timeout(Duration::from_secs(60), reading).await.expect("the answer in time").expect("read");
    let end = head_end(&raw).expect("an answer head");
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    assert!(raw[end..] == body[..], "the body arrived altered ({} bytes of {SIZE})", raw.len() - end);
    let trace = execution.trace();
    assert_eq!(trace.calls.len(), 1);
    assert_eq!(trace.calls[0].outcome, CallOutcome::Status(200));
    proxy.stop().await;
}

#[tokio::test]
async fn d12_an_answer_reaches_the_caller_chunk_by_chunk_before_the_upstream_ends_it() {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    // Server-sent events: the first event at once, the second once the test says so.
    let events = upstream(service_fn(move |_request: Request<Incoming>| {
        let released = released.lock().unwrap().take();
        async move {
            let (chunks, body) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                let _ = chunks.send(Bytes::from_static(b"data: first\n\n")).await;
                if let Some(released) = released {
                    let _ = released.await;
                }
                let _ = chunks.send(Bytes::from_static(b"data: second\n\n")).await;
            });
            Ok::<_, Infallible>(Response::new(Chunks(body)))
        }
    }))
    .await;
    let execution = Execution::start(HashMap::new());
    let proxy = proxy_to(events, &execution, Limits::default()).await;
    let mut stream = TcpStream::connect(proxy.address()).await.expect("connects");
    stream.write_all(b"GET /events HTTP/1.1\r\nHost: back\r\nConnection: close\r\n\r\n").await.expect("writes");
    let mut raw = Vec::new();
    let mut buffer = [0; 4096];
    let first = async {
        while !String::from_utf8_lossy(&raw).contains("data: first") {
            let n = stream.read(&mut buffer).await.expect("reads");
            assert!(n > 0, "closed before the first event: {}", String::from_utf8_lossy(&raw));
            raw.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the first event arrives while the upstream still sends");
    assert!(!String::from_utf8_lossy(&raw).contains("data: second"));
    assert_eq!(execution.trace().calls[0].outcome, CallOutcome::Status(200), "recorded once the head arrived");
    release.send(()).expect("the upstream waits");
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the end in time")
        .expect("reads");
    assert!(String::from_utf8_lossy(&raw).contains("data: second"), "{}", String::from_utf8_lossy(&raw));
    proxy.stop().await;
}

#[tokio::test]
async fn d12_an_answer_body_that_breaks_off_is_recorded_as_a_transport_failure() {
    // An upstream that announces 100 bytes, sends 10 and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("the proxy connects");
        let mut buffer = [0; 4096];
        let _ = stream.read(&mut buffer).await;
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789").await;
    });
    let execution = Execution::start(HashMap::new());
    let proxy = proxy_to(address, &execution, Limits::default()).await;
    let mut stream = TcpStream::connect(proxy.address()).await.expect("connects");
    stream.write_all(b"GET /broken HTTP/1.1\r\nHost: back\r\nConnection: close\r\n\r\n").await.expect("writes");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await.expect("ends in time");
    let end = head_end(&raw).expect("the head was passed on");
    assert!(raw.len() - end < 100, "the caller got a whole body: {}", String::from_utf8_lossy(&raw));
    let deadline = Instant::now() + Duration::from_secs(5);
    while execution.trace().calls[0].outcome != CallOutcome::Transport(Transport::Request) {
        assert!(Instant::now() < deadline, "recorded as {:?}", execution.trace().calls[0].outcome);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.stop().await;
}

#[tokio::test]
async fn d4_a_caller_that_stops_reading_its_answer_is_let_go_after_the_idle_timeout() {
    let (gone, upstream_gone) = tokio::sync::oneshot::channel::<usize>();
    let gone = Arc::new(Mutex::new(Some(gone)));
    // An endless answer: 64 KiB chunks until nobody takes them any more.
    let endless = upstream(service_fn(move |_request: Request<Incoming>| {
        let gone = gone.lock().unwrap().take();
        async move {
            let (chunks, body) = tokio::sync::mpsc::channel(1);
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let mut sent = 0;
                while chunks.send(chunk.clone()).await.is_ok() {
                    sent += 1;
                }
                if let Some(gone) = gone {
                    let _ = gone.send(sent);
                }
            });
            Ok::<_, Infallible>(Response::new(Chunks(body)))
        }
    }))
    .await;
    let execution = Execution::start(HashMap::new());
    let idle = Duration::from_millis(300);
    let limits = Limits { idle_timeout: idle, ..Limits::default() };
    let proxy = proxy_to(endless, &execution, limits).await;
    let mut stream = TcpStream::connect(proxy.address()).await.expect("connects");
    stream.write_all(b"GET /endless HTTP/1.1\r\nHost: back\r\n\r\n").await.expect("writes");
    // The caller reads nothing: the proxy's writes stall, and it lets the answer go.
    let sent = tokio::time::timeout(Duration::from_secs(20), upstream_gone)
        .await
        .expect("the proxy gave up on a caller that does not read")
        .expect("the upstream reports");
    assert!(sent > 0);
    drop(stream);
    proxy.stop().await;
}

#[tokio::test]
async fn d4_a_held_timeout_fault_outlasts_the_idle_timeout() {
    let echo = upstream(service_fn(|_request: Request<Incoming>| async move {
        Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::from_static(b"ok"))))
    }))
    .await;
    let limits = Limits { idle_timeout: Duration::from_millis(200), ..Limits::default() };
    // A fault-free run, to learn the call's key.
    let reference = Execution::start(HashMap::new());
    let proxy = proxy_to(echo, &reference, limits).await;
    let get = b"GET /numbers HTTP/1.1\r\nHost: back\r\nConnection: close\r\n\r\n";
    let mut stream = TcpStream::connect(proxy.address()).await.expect("connects");
    stream.write_all(get).await.expect("writes");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await.expect("in time").expect("reads");
    let key = reference.trace().calls[0].key;
    proxy.stop().await;

    let execution = Execution::start(HashMap::from([(key, Fault::Timeout)]));
    let current = Arc::new(Mutex::new(Some(Arc::clone(&execution))));
    let spec = ProxySpec {
        from: "front".into(),
        to: "back".into(),
        listen: 0,
        upstream: echo.to_string(),
        fault_body: Default::default(),
        routes: Vec::new(),
    };
    let proxy = Proxy::start_with(&spec, Arc::clone(&current), limits, HarnessHealth::new()).await.expect("starts");
    let mut stream = TcpStream::connect(proxy.address()).await.expect("connects");
    stream.write_all(get).await.expect("writes");
    // Held well past the idle timeout: no answer, and the connection stays open.
    let mut buffer = [0; 64];
    let held = tokio::time::timeout(Duration::from_millis(800), stream.read(&mut buffer)).await;
    assert!(held.is_err(), "the held request ended early: {held:?}");
    assert_eq!(execution.trace().calls[0].fault, Some(Fault::Timeout));
    // The execution ends: the proxy lets the request go without an answer.
    *current.lock().unwrap() = None;
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await.expect("let go in time");
    assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn a_caller_that_gives_up_on_a_held_slow_call_is_recorded_as_timing_out_at_its_own_limit() {
    let echo = upstream(service_fn(|_request: Request<Incoming>| async move {
        Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::from_static(b"ok"))))
    }))
    .await;
    let reference = Execution::start(HashMap::new());
    let proxy = proxy_to(echo, &reference, Limits::default()).await;
    let client = cloture::Client::new();
    let url = format!("http://{}/bookings/chris_rivers", proxy.address());
    client.get(url.as_str()).send().await.expect("the fault-free call is answered");
    let reference_call = reference.trace().calls[0].clone();
    assert_eq!(reference_call.site.to_string(), "front → back GET /bookings/chris_rivers");
    proxy.stop().await;

    let execution = Execution::start(HashMap::from([(reference_call.key, Fault::Slow)]));
    let proxy = proxy_to(echo, &execution, Limits::default()).await;
    // The caller's own time limit: 300 ms. It gives up, closing its connection.
    let url = format!("http://{}/bookings/chris_rivers", proxy.address());
    let gave_up = client.with_timeout(Duration::from_millis(300)).get(url.as_str()).send().await;
    assert!(gave_up.is_err(), "a held call gets no answer");
    let deadline = Instant::now() + Duration::from_secs(5);
    while execution.trace().calls[0].outcome == CallOutcome::Pending && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let call = execution.trace().calls[0].clone();
    assert_eq!(call.fault, Some(Fault::Slow));
    assert_eq!(call.outcome, CallOutcome::Transport(Transport::Timeout), "the caller's give-up is seen");
    let cloture::trace::TimeLimit::Within(limit) = call.limit else { panic!("a limit was learnt: {:?}", call.limit) };
    assert!(limit >= Duration::from_millis(250) && limit < Duration::from_secs(3), "{limit:?}");
    proxy.stop().await;
}

// ---- HTTP/2 and gRPC ----

/// An answer body of frames given in advance: data, then trailers.
type Frames =
    http_body_util::StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn frames(data: &[&'static [u8]], trailers: &[(&'static str, &'static str)]) -> Frames {
    let mut frames: Vec<_> = data.iter().map(|chunk| Ok(Frame::data(Bytes::from_static(chunk)))).collect();
    if !trailers.is_empty() {
        let mut map = http::HeaderMap::new();
        for (name, value) in trailers {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        frames.push(Ok(Frame::trailers(map)));
    }
    http_body_util::StreamBody::new(futures_util::stream::iter(frames))
}

/// Serves `service` on a free loopback port in HTTP/1.1 and in HTTP/2 with prior knowledge, or (`h2_only`)
/// in HTTP/2 only; counts the requests it gets.
async fn upstream_h2<S>(service: S, h2_only: bool) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Frames>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let address = listener.local_addr().expect("an address");
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let service = service_fn(move |request| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        service.call(request)
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service.clone();
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let builder = if h2_only { builder.http2_only() } else { builder };
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (address, requests)
}

/// A caller speaking HTTP/2 with prior knowledge on one connection to `address`.
async fn h2_caller(address: SocketAddr) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<Bytes>> {
    let stream = TcpStream::connect(address).await.expect("connects");
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("an HTTP/2 handshake");
    tokio::spawn(connection);
    sender
}

/// A gRPC-shaped request: content type `application/grpc`, one length-prefixed message.
fn grpc_request(path: &str) -> Request<http_body_util::Full<Bytes>> {
    let message = b"\x0a\x03abc";
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(message);
    Request::post(format!("http://back{path}"))
        .version(http::Version::HTTP_2)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .body(http_body_util::Full::new(Bytes::from(body)))
        .expect("a request")
}

/// The whole body of an answer: its data and its trailers.
async fn collected(response: Response<Incoming>) -> (http::response::Parts, Bytes, Option<http::HeaderMap>) {
    use http_body_util::BodyExt;
    let (head, body) = response.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(10), body.collect()).await.expect("in time").expect("a body");
    let trailers = body.trailers().cloned();
    (head, body.to_bytes(), trailers)
}

/// The upstream of the version tests: answers with the HTTP version it got and the connection headers that
/// reached it, its body followed by trailers (declared, for HTTP/1.1).
async fn versions_upstream(request: Request<Incoming>) -> Result<Response<Frames>, Infallible> {
    let hop = ["connection", "keep-alive", "x-named", "proxy-authorization", "upgrade", "transfer-encoding"];
    let arrived: Vec<&str> = hop.into_iter().filter(|name| request.headers().contains_key(*name)).collect();
    let te = request.headers().get(http::header::TE).map(|v| v.to_str().unwrap_or("?").to_string());
    let mut response = Response::new(frames(&[b"hello, ", b"caller"], &[("x-checksum", "42")]));
    let headers = response.headers_mut();
    headers.insert("x-version", format!("{:?}", request.version()).parse().expect("a header value"));
    headers.insert("x-hop", arrived.join(",").parse().expect("a header value"));
    headers.insert("x-te", te.unwrap_or_default().parse().expect("a header value"));
    headers.insert(http::header::TRAILER, http::HeaderValue::from_static("x-checksum"));
    Ok(response)
}

#[tokio::test]
async fn http2_and_http1_callers_share_the_proxy_port_and_each_reaches_the_upstream_in_its_version() {
    let (upstream, _) = upstream_h2(service_fn(versions_upstream), false).await;
    let execution = Execution::start(HashMap::new());
    let proxy = proxy_to(upstream, &execution, Limits::default()).await;

    // HTTP/2 with prior knowledge: passed on as HTTP/2, its trailers back.
    let mut h2 = h2_caller(proxy.address()).await;
    let request = Request::get("http://back/hello")
        .version(http::Version::HTTP_2)
        .header(http::header::TE, "trailers")
        .header("proxy-authorization", "Basic eDp5")
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("a request");
    let response = h2.send_request(request).await.expect("an answer over HTTP/2");
    let (head, body, trailers) = collected(response).await;
    assert_eq!(head.version, http::Version::HTTP_2);
    assert_eq!(head.headers["x-version"], "HTTP/2.0");
    assert_eq!((head.headers["x-hop"].to_str().unwrap(), head.headers["x-te"].to_str().unwrap()), ("", "trailers"));
    assert_eq!(body, "hello, caller");
    assert_eq!(trailers.expect("trailers")["x-checksum"], "42");

    // HTTP/1.1 on the same port: passed on as HTTP/1.1, connection headers not, trailers back when asked for.
    let stream = TcpStream::connect(proxy.address()).await.expect("connects");
    let (mut h1, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("an HTTP/1.1 handshake");
    tokio::spawn(connection);
    let request = Request::get("/hello")
        .header(http::header::HOST, "back")
        .header(http::header::CONNECTION, "keep-alive, x-named")
        .header("keep-alive", "timeout=5")
        .header("x-named", "only for the next hop")
        .header("proxy-authorization", "Basic eDp5")
        .header(http::header::TE, "trailers")
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("a request");
    let response = h1.send_request(request).await.expect("an answer over HTTP/1.1");
    let (head, body, trailers) = collected(response).await;
    assert_eq!(head.version, http::Version::HTTP_11);
    assert_eq!(head.headers["x-version"], "HTTP/1.1");
    assert_eq!((head.headers["x-hop"].to_str().unwrap(), head.headers["x-te"].to_str().unwrap()), ("", "trailers"));
    assert_eq!(body, "hello, caller");
    assert_eq!(trailers.expect("trailers")["x-checksum"], "42");

    let trace = execution.trace();
    assert_eq!(trace.calls.len(), 2);
    assert!(trace.calls.iter().all(|call| call.outcome == CallOutcome::Status(200) && call.method == "GET"));
    proxy.stop().await;
}

/// The gRPC upstream: answers every call with one message and `grpc-status` 13 (`INTERNAL`) in its trailers.
async fn failing_grpc_upstream(request: Request<Incoming>) -> Result<Response<Frames>, Infallible> {
    assert_eq!(request.version(), http::Version::HTTP_2);
    let body = frames(&[b"\x00\x00\x00\x00\x02\x08\x01"], &[("grpc-status", "13"), ("grpc-message", "broken")]);
    let mut response = Response::new(body);
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
    Ok(response)
}

#[tokio::test]
async fn a_grpc_status_in_the_upstreams_trailers_is_the_recorded_outcome_of_the_call() {
    let (upstream, requests) = upstream_h2(service_fn(failing_grpc_upstream), true).await;
    let execution = Execution::start(HashMap::new());
    let proxy = proxy_to(upstream, &execution, Limits::default()).await;
    let mut caller = h2_caller(proxy.address()).await;
    let response = caller.send_request(grpc_request("/shop.Inventory/Reserve")).await.expect("an answer");
    let (head, body, trailers) = collected(response).await;
    assert_eq!(head.status, 200);
    assert_eq!(body.len(), 7, "the message passed");
    let trailers = trailers.expect("trailers");
    assert_eq!(
        (trailers["grpc-status"].to_str().unwrap(), trailers["grpc-message"].to_str().unwrap()),
        ("13", "broken")
    );
    assert_eq!(requests.load(std::sync::atomic::Ordering::Relaxed), 1);
    let trace = execution.trace();
    assert_eq!((trace.calls[0].method.as_str(), trace.calls[0].path.as_str()), ("GRPC", "/shop.Inventory/Reserve"));
    assert_eq!(trace.calls[0].outcome, CallOutcome::Grpc(13));
    proxy.stop().await;
}

/// A proxy in front of `upstream` whose execution injects `fault` into the first gRPC call to `path` (its key
/// learnt from a fault-free run), and that execution.
async fn faulting_grpc_proxy(upstream: SocketAddr, path: &str, fault: Fault) -> (Proxy, Arc<Execution>) {
    let reference = Execution::start(HashMap::new());
    let proxy = proxy_to(upstream, &reference, Limits::default()).await;
    let mut caller = h2_caller(proxy.address()).await;
    let _ = collected(caller.send_request(grpc_request(path)).await.expect("an answer")).await;
    proxy.stop().await;
    let key = reference.trace().calls[0].key;
    let execution = Execution::start(HashMap::from([(key, fault)]));
    let proxy = proxy_to(upstream, &execution, Limits::default()).await;
    (proxy, execution)
}

#[tokio::test]
async fn an_injected_grpc_code_answers_a_grpc_call_trailers_only() {
    let (upstream, requests) = upstream_h2(service_fn(failing_grpc_upstream), true).await;
    let path = "/shop.Inventory/Reserve";
    let (proxy, execution) = faulting_grpc_proxy(upstream, path, Fault::Grpc(14)).await;
    let mut caller = h2_caller(proxy.address()).await;
    let response = caller.send_request(grpc_request(path)).await.expect("an answer");
    let (head, body, trailers) = collected(response).await;
    // Trailers only: HTTP 200 and the status in the one block of headers, the stream ended with it.
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["content-type"], "application/grpc");
    assert_eq!(head.headers["grpc-status"], "14");
    assert!(head.headers["grpc-message"].to_str().unwrap().starts_with("UNAVAILABLE"));
    assert!(body.is_empty() && trailers.is_none(), "{body:?} {trailers:?}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::Relaxed), 1, "only the reference run reached the upstream");
    let trace = execution.trace();
    assert_eq!((trace.calls[0].fault, &trace.calls[0].outcome), (Some(Fault::Grpc(14)), &CallOutcome::Grpc(14)));
    proxy.stop().await;
}

#[tokio::test]
async fn an_injected_connect_resets_the_http2_stream_and_not_the_connection() {
    let (upstream, _) = upstream_h2(service_fn(failing_grpc_upstream), true).await;
    let path = "/shop.Inventory/Reserve";
    let (proxy, execution) = faulting_grpc_proxy(upstream, path, Fault::Connect).await;
    let mut caller = h2_caller(proxy.address()).await;
    let error = caller.send_request(grpc_request(path)).await.expect_err("no answer");
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut reason = None;
    while let Some(error) = cause {
        reason = reason.or_else(|| error.downcast_ref::<h2::Error>().and_then(h2::Error::reason));
        cause = error.source();
    }
    assert_eq!(reason, Some(h2::Reason::REFUSED_STREAM), "{error}");
    // The next call, on the same connection, is passed on.
    let response = caller.send_request(grpc_request(path)).await.expect("the connection still serves");
    let (_, _, trailers) = collected(response).await;
    assert_eq!(trailers.expect("trailers")["grpc-status"], "13");
    let trace = execution.trace();
    assert_eq!(trace.calls[0].outcome, CallOutcome::Transport(Transport::Connect));
    assert_eq!(trace.calls[1].outcome, CallOutcome::Grpc(13));
    proxy.stop().await;
}

#[tokio::test]
async fn d4_an_http2_connection_is_bounded_in_streams_and_closed_when_idle_not_for_its_pings() {
    let (upstream, _) = upstream_h2(service_fn(versions_upstream), true).await;
    let execution = Execution::start(HashMap::new());
    let limits = Limits {
        header_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(600),
        max_streams: 2,
        ..Limits::default()
    };
    let proxy = proxy_to(upstream, &execution, limits).await;
    let stream = TcpStream::connect(proxy.address()).await.expect("connects");
    let (mut client, mut connection) = h2::client::handshake(stream).await.expect("an HTTP/2 handshake");
    let get = || Request::get("http://back/hello").body(()).expect("a request");
    let mut pings = connection.ping_pong().expect("pings");
    for _ in 0..2 {
        let (response, _) = client.send_request(get(), true).expect("a stream");
        let response = tokio::select! {
            response = response => response.expect("an answer"),
            ended = &mut connection => panic!("the connection ended: {ended:?}"),
        };
        assert_eq!(response.status(), 200);
        assert_eq!(connection.max_concurrent_send_streams(), 2, "the proxy's SETTINGS");
        // Pings and window updates, past the header timeout: no request begins, the connection stays.
        let wait = async {
            for _ in 0..5 {
                pings.ping(h2::Ping::opaque()).await.expect("a pong");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            () = wait => {}
            ended = &mut connection => panic!("closed before the idle timeout: {ended:?}"),
        }
    }
    // Idle past the idle timeout: closed.
    let closed = tokio::time::timeout(Duration::from_secs(5), &mut connection).await;
    assert!(closed.is_ok(), "an idle HTTP/2 connection stayed open");
    assert_eq!(execution.trace().calls.len(), 2);
    proxy.stop().await;
}

/// Waits until the first call of `execution` is recorded with `outcome`.
async fn recorded(execution: &Execution, outcome: CallOutcome) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let first = || execution.trace().calls.first().map(|call| call.outcome.clone());
    while first() != Some(outcome.clone()) {
        assert!(Instant::now() < deadline, "recorded as {:?}", first());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_held_call_its_caller_gives_up_on_timed_out() {
    let (upstream, _) = upstream_h2(service_fn(failing_grpc_upstream), false).await;
    let path = "/shop.Inventory/Reserve";
    // Over HTTP/2 the caller resets the stream.
    let (proxy, execution) = faulting_grpc_proxy(upstream, path, Fault::Slow).await;
    let mut caller = h2_caller(proxy.address()).await;
    let gave_up = tokio::time::timeout(Duration::from_millis(200), caller.send_request(grpc_request(path))).await;
    assert!(gave_up.is_err(), "the held call was answered: {gave_up:?}");
    recorded(&execution, CallOutcome::Transport(Transport::Timeout)).await;
    proxy.stop().await;

    // Over HTTP/1.1 it closes the connection.
    let (proxy, execution) = faulting_grpc_proxy(upstream, path, Fault::Slow).await;
    let mut stream = TcpStream::connect(proxy.address()).await.expect("connects");
    let head = "POST /shop.Inventory/Reserve HTTP/1.1\r\nHost: back\r\nContent-Type: application/grpc\r\n\
                Content-Length: 0\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("writes");
    let mut buffer = [0; 64];
    let held = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await;
    assert!(held.is_err(), "the held call was answered: {held:?}");
    drop(stream);
    recorded(&execution, CallOutcome::Transport(Transport::Timeout)).await;
    let key = execution.trace().calls[0].key;
    proxy.stop().await;

    // Let go by the proxy when the execution ends, the call is not one its caller gave up on: no outcome.
    let execution = Execution::start(HashMap::from([(key, Fault::Slow)]));
    let current = Arc::new(Mutex::new(Some(Arc::clone(&execution))));
    let spec = ProxySpec {
        from: "front".into(),
        to: "back".into(),
        listen: 0,
        upstream: upstream.to_string(),
        fault_body: Default::default(),
        routes: Vec::new(),
    };
    let proxy = Proxy::start(&spec, Arc::clone(&current)).await.expect("the proxy starts");
    let mut caller = h2_caller(proxy.address()).await;
    let answer = tokio::spawn(async move { caller.send_request(grpc_request(path)).await.map(|_| ()) });
    recorded(&execution, CallOutcome::Pending).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    *current.lock().unwrap() = None;
    let answer = tokio::time::timeout(Duration::from_secs(5), answer).await.expect("let go in time");
    assert!(answer.expect("the caller ran").is_err(), "the held call was answered");
    assert_eq!(execution.trace().calls[0].outcome, CallOutcome::Pending);
    proxy.stop().await;
}

#[tokio::test]
async fn a_grpc_call_is_named_by_its_path_even_when_the_caller_received_the_same_method() {
    let (upstream, _) = upstream_h2(service_fn(failing_grpc_upstream), true).await;
    let execution = Execution::start(HashMap::new());
    let current = Arc::new(Mutex::new(Some(Arc::clone(&execution))));
    let spec = |from: &str, to: &str| ProxySpec {
        from: from.into(),
        to: to.into(),
        listen: 0,
        upstream: upstream.to_string(),
        fault_body: Default::default(),
        routes: Vec::new(),
    };
    let entry = Proxy::start(&spec("test", "gateway"), Arc::clone(&current)).await.expect("the proxy starts");
    let inventory = Proxy::start(&spec("gateway", "inventory"), Arc::clone(&current)).await.expect("the proxy starts");
    // The gateway receives `/shop.Gateway/Reserve`, then calls `/shop.Inventory/Reserve`: a method name
    // is not a value of the path, as a segment the caller received would be in an HTTP path.
    for (proxy, path) in [(&entry, "/shop.Gateway/Reserve"), (&inventory, "/shop.Inventory/Reserve")] {
        let mut caller = h2_caller(proxy.address()).await;
        let _ = collected(caller.send_request(grpc_request(path)).await.expect("an answer")).await;
    }
    let sites: Vec<String> = execution.trace().calls.iter().map(|call| call.site.to_string()).collect();
    assert_eq!(
        sites,
        ["test → gateway GRPC /shop.Gateway/Reserve", "gateway → inventory GRPC /shop.Inventory/Reserve"]
    );
    entry.stop().await;
    inventory.stop().await;
}

#[tokio::test]
async fn a_service_that_speaks_no_http_1_is_ready_once_it_accepts_a_connection() {
    // A listener that accepts and never answers HTTP/1.1 (as a gRPC-only server would not).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let port = listener.local_addr().expect("an address").port();
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let file: cloture::external::ServicesFile = serde_json::from_value(serde_json::json!({
        "services": [{ "name": "quiet", "port": port, "ready": "tcp" }],
    }))
    .expect("a valid services file");
    let logs = common::scratch("proxy", "ready-tcp");
    let started = Instant::now();
    let mut system = cloture::external::System::start(&file, &logs, Default::default()).await.expect("ready");
    assert!(started.elapsed() < Duration::from_secs(5), "ready at once, not after the 20 s wait");
    system.stop().await;
    accepting.abort();
    std::fs::remove_dir_all(&logs).ok();
}
