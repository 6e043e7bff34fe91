//! The accept loop of cloture's own HTTP endpoints (the coordinator, the proxies) and the bounds it keeps
//! on their connections (`Limits`), with the `HarnessHealth` it keeps when the machine cannot give it a
//! connection — so that an execution spoilt by cloture itself can be told apart from a finding.
//!
//! Every connection is in one of three phases, tracked by `Activity`:
//! - *idle*: no request in progress and no byte of the next one yet. Closed after `idle_timeout`, and at
//!   once when every slot is taken and a new connection waits for one.
//! - *head*: the first bytes of a request arrived; the rest of its head must follow within
//!   `header_timeout` of the first byte (slow header lines are cut off).
//! - *busy*: a handler runs, until the body of its answer is done. The handler itself has no time limit (a
//!   proxy holds a `timeout` fault, an upstream may be slow to answer), but the peer must keep up: a request
//!   body that stops arriving (`Body`) or an answer that is not read (`Watched`) for `idle_timeout` ends
//!   the request.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while a kept-alive connection waits for its
//! next request, so it would close pooled connections after the header timeout, and a client reusing one at
//! that moment would get a transport error caused by the harness, not by the system under test.
//!
//! An endpoint speaks HTTP/1.1, or ([`Versions::Http1AndHttp2`], the proxies) HTTP/1.1 and HTTP/2 with
//! prior knowledge (h2c) on the same port, told apart by the HTTP/2 connection preface. On an HTTP/2
//! connection requests share the connection, so its phases are counted in streams: it is *idle* while no
//! stream is in flight (frames such as pings and window updates do not make it busy), *busy* while one is.
//! Its preface must arrive within `header_timeout` of its first byte; a head is bounded by size (hyper's
//! 16 KiB header list), not by time. At most `max_streams` requests are in flight on it at once; an idle
//! one is closed with a GOAWAY, so a client that was about to send on it learns its request was not
//! processed. Keep-alive pings, every `idle_timeout`, close a connection whose peer is gone.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The error type of bodies passed between hyper's server and client.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bounds on the connections of one endpoint (the coordinator, or one proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once. One more waits for a free slot (idle connections are closed to make
    /// room, and the wait is counted in [`HarnessHealth::waits_for_a_slot`]). Default 256.
    pub max_connections: usize,
    /// Time from the first byte of a request to the end of its head. Default 10 s.
    pub header_timeout: Duration,
    /// Time a connection may stay idle between requests, and a request body or the reading of an answer
    /// may stall. Default 60 s: longer than the 30 s for which [`crate::Client`] keeps an idle connection
    /// for reuse, so a connection is never closed under a call about to be sent on it.
    pub idle_timeout: Duration,
    /// Requests in flight at once on one HTTP/2 connection (its `SETTINGS_MAX_CONCURRENT_STREAMS`); the
    /// client holds more until one ends. Default 100.
    pub max_streams: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_streams: 100,
        }
    }
}

/// The HTTP versions an endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Versions {
    /// HTTP/1.1 only (the coordinator).
    Http1,
    /// HTTP/1.1, and HTTP/2 with prior knowledge (h2c) on the same port (the proxies).
    Http1AndHttp2,
}

/// Trouble of an endpoint that is the harness's, not the system's: connections it could not accept (out
/// of file descriptors or memory) and connections that had to wait for a free slot. While either grows,
/// calls through the endpoint may fail or stall because of cloture itself. Cheap to clone; clones share
/// the counts, so one value can watch the coordinator and every proxy of a system.
#[derive(Clone, Debug, Default)]
pub struct HarnessHealth(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    accept_failures: AtomicU64,
    waits_for_a_slot: AtomicU64,
}

impl HarnessHealth {
    /// Counts starting at zero.
    pub fn new() -> HarnessHealth {
        HarnessHealth::default()
    }

    /// Times `accept` failed for want of a resource (file descriptors, memory, buffers): a caller's
    /// connection was left waiting, or was refused by the kernel.
    pub fn accept_failures(&self) -> u64 {
        self.0.accept_failures.load(Ordering::Relaxed)
    }

    /// Connections that found every slot taken ([`Limits::max_connections`]) and had to wait.
    pub fn waits_for_a_slot(&self) -> u64 {
        self.0.waits_for_a_slot.load(Ordering::Relaxed)
    }

    /// Both counts together: an execution during which this grew may have failed because of cloture.
    pub fn troubles(&self) -> u64 {
        self.accept_failures() + self.waits_for_a_slot()
    }
}

/// Serves `service` in `versions` on the connections `listener` accepts, within `limits`, until `stop` is
/// notified; for cloture's own endpoints, which need no graceful shutdown (connections already accepted
/// are served to their end). Trouble accepting is counted in `health`; it never ends the loop.
pub(crate) async fn accept_until<S, B>(
    listener: TcpListener,
    stop: Arc<Notify>,
    service: S,
    limits: Limits,
    versions: Versions,
    health: HarnessHealth,
) where
    S: hyper::service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Asks idle connections to close, when a new one waits for a slot.
    let crowded = Arc::new(Notify::new());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    failed_to_accept(&health, &error).await;
                    continue;
                }
            },
            () = stop.notified() => return,
        };
        let slot = tokio::select! {
            slot = take_slot(&slots, &crowded, &health) => slot,
            () = stop.notified() => return,
        };
        tokio::spawn(serve(stream, service.clone(), limits, versions, slot, Arc::clone(&crowded)));
    }
}

/// Counts a failed `accept` that says the process or the machine is short of something, and backs off
/// instead of spinning. A connection that went away before it was accepted is no trouble of ours.
async fn failed_to_accept(health: &HarnessHealth, error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    if matches!(error.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        tracing::debug!(%error, "a connection went away before it was accepted");
        return;
    }
    let failures = health.0.accept_failures.fetch_add(1, Ordering::Relaxed) + 1;
    if failures.is_power_of_two() {
        tracing::warn!(%error, failures, "cannot accept connections: calls through cloture fail because of cloture");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// A slot for one more connection: at once when one is free, else after asking idle connections to close.
async fn take_slot(slots: &Arc<Semaphore>, crowded: &Notify, health: &HarnessHealth) -> OwnedSemaphorePermit {
    if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
        return slot;
    }
    let waits = health.0.waits_for_a_slot.fetch_add(1, Ordering::Relaxed) + 1;
    if waits.is_power_of_two() {
        tracing::warn!(waits, "every connection slot is taken: a new connection waits");
    }
    loop {
        // Asked again now and then: a connection that was busy a moment ago may be idle now.
        crowded.notify_waiters();
        let wait = tokio::time::timeout(Duration::from_millis(50), Arc::clone(slots).acquire_owned());
        if let Ok(slot) = wait.await {
            return slot.expect("the slots are never closed");
        }
    }
}

/// Serves one connection until it ends, is too slow for `limits`, or is idle when the endpoint is crowded.
async fn serve<S, B>(
    stream: TcpStream,
    service: S,
    limits: Limits,
    versions: Versions,
    _slot: OwnedSemaphorePermit,
    crowded: Arc<Notify>,
) where
    S: hyper::service::Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let preface = if versions == Versions::Http1AndHttp2 { 0 } else { NOT_HTTP2 };
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
        stall: limits.idle_timeout,
        stalled: None,
        preface,
    });
    let service = Tracked { inner: service, activity: Arc::clone(&activity), stall: limits.idle_timeout };
    let builder = builder(&limits, versions);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    loop {
        let changed = activity.changed.notified();
        let crowded = crowded.notified();
        let deadline = activity.deadline(&limits);
        tokio::select! {
            _ = connection.as_mut() => return,
            () = sleep_until(deadline) => {
                if activity.deadline(&limits).is_some_and(|at| at <= Instant::now()) {
                    tracing::debug!("closing a connection that was idle or slow for too long");
                    break;
                }
            }
            () = changed => {}
            () = crowded => {
                if activity.is_idle() {
                    break;
                }
            }
        }
    }
    if activity.is_http2() {
        // An HTTP/2 connection is closed with a GOAWAY: a request the client sent meanwhile is refused as not
        // processed (safe to retry), not lost with the connection.
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(limits.header_timeout, connection).await;
    }
}

/// hyper's connection builder for an endpoint's connections.
fn builder(limits: &Limits, versions: Versions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams.max(1))
        .keep_alive_interval(limits.idle_timeout);
    match versions {
        Versions::Http1 => builder.http1_only(),
        Versions::Http1AndHttp2 => builder,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Where a connection is; see the module documentation.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Idle(Instant),
    Head(Instant),
    Busy(usize),
}

/// The phase of one connection, moved on by its reads and its requests, watched by [`serve`].
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
    /// The connection began with the HTTP/2 preface: its reads do not begin a request's head.
    http2: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            changed: Notify::new(),
            http2: AtomicBool::new(false),
        }
    }

    fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    /// The whole HTTP/2 preface arrived: the connection is idle until its first stream.
    fn began_http2(&self) {
        self.http2.store(true, Ordering::Relaxed);
        let mut phase = self.phase();
        if let Phase::Head(_) = *phase {
            *phase = Phase::Idle(Instant::now());
        }
        drop(phase);
        self.changed.notify_one();
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // A poisoned phase is still a phase.
        self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes arrived: on an idle HTTP/1 connection, the head of a request begins.
    fn read(&self) {
        if self.is_http2() {
            return;
        }
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn enter(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Idle(_) | Phase::Head(_) => Phase::Busy(1),
        };
        drop(phase);
        self.changed.notify_one();
    }

    fn leave(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
        drop(phase);
        self.changed.notify_one();
    }

    fn is_idle(&self) -> bool {
        matches!(*self.phase(), Phase::Idle(_))
    }

    /// When the connection is to be closed if nothing happens; `None` while a request is handled.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match *self.phase() {
            Phase::Idle(since) => Some(since + limits.idle_timeout),
            Phase::Head(since) => Some(since + limits.header_timeout),
            Phase::Busy(_) => None,
        }
    }
}

/// A request handled on a connection, from the handler's call to the end of its answer's body.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: Arc<Activity>) -> InFlight {
        activity.enter();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// The connection's socket, telling [`Activity`] when bytes arrive and whether they began with the HTTP/2
/// preface, and failing a write that cannot progress for the stall time: the peer stopped reading its answer.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    stall: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    /// How many bytes of [`HTTP2_PREFACE`] the connection began with so far; [`NOT_HTTP2`] once it cannot.
    preface: usize,
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113, 3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// [`Watched::preface`] of a connection that is not HTTP/2 (or of an endpoint that speaks only HTTP/1).
const NOT_HTTP2: usize = usize::MAX;

impl Watched {
    /// Follows the first bytes of the connection, as hyper's own version detection reads them.
    fn sniff(&mut self, data: &[u8]) {
        if self.preface >= HTTP2_PREFACE.len() {
            return;
        }
        let take = data.len().min(HTTP2_PREFACE.len() - self.preface);
        if data[..take] != HTTP2_PREFACE[self.preface..self.preface + take] {
            self.preface = NOT_HTTP2;
            return;
        }
        self.preface += take;
        if self.preface == HTTP2_PREFACE.len() {
            self.activity.began_http2();
        }
    }

    fn watch_write(&mut self, cx: &mut Context<'_>, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if written.is_ready() {
            self.stalled = None;
            return written;
        }
        let stall = self.stall;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = None;
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading the answer")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.sniff(&buf.filled()[before..]);
            this.activity.read();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, data);
        this.watch_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, data);
        this.watch_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The endpoint's service, seen from hyper: each request is [`InFlight`] until its answer's body is done,
/// and its body is a [`Body`].
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    stall: Duration,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Answer<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::enter(Arc::clone(&self.activity));
        let stall = self.stall;
        let answer = self.inner.call(request.map(|incoming| Body { incoming, stall, stalled: None }));
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| Answer { body, _in_flight: in_flight }))
        })
    }
}

/// An answer's body, keeping its request [`InFlight`] until hyper is done with it.
pub(crate) struct Answer<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Answer<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body as an endpoint's handler reads it: the client's bytes as they arrive, never collected
/// here. A client that sends nothing for the stall time while the handler waits for more ends the body
/// with [`BodyStalled`].
pub(crate) struct Body {
    incoming: Incoming,
    stall: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

/// A request body stopped arriving for the stall time ([`Limits::idle_timeout`]).
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving for {0:?}")]
pub(crate) struct BodyStalled(pub Duration);

impl hyper::body::Body for Body {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.incoming).poll_frame(cx) {
            // The clock runs only while someone waits for the client, not while the reader is busy.
            this.stalled = None;
            return Poll::Ready(frame.map(|frame| frame.map_err(BoxError::from)));
        }
        let stall = this.stall;
        let stalled = this.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.stalled = None;
                Poll::Ready(Some(Err(BodyStalled(stall).into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn only_a_failed_accept_for_want_of_a_resource_is_trouble_of_the_harness() {
        let health = HarnessHealth::new();
        for kind in [io::ErrorKind::ConnectionAborted, io::ErrorKind::ConnectionReset, io::ErrorKind::Interrupted] {
            failed_to_accept(&health, &io::Error::from(kind)).await;
        }
        assert_eq!(health.accept_failures(), 0);
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS] {
            failed_to_accept(&health, &io::Error::from_raw_os_error(errno)).await;
        }
        assert_eq!(health.accept_failures(), 3);
        // Clones share the counts.
        let clone = health.clone();
        failed_to_accept(&clone, &io::Error::from_raw_os_error(libc::EMFILE)).await;
        assert_eq!((health.accept_failures(), health.troubles()), (4, 4));
    }
}
