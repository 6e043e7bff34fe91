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

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
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
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_connections: 256, header_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(60) }
    }
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

/// Serves `service` over HTTP/1 on the connections `listener` accepts, within `limits`, until `stop` is
/// notified; for cloture's own endpoints, which need no graceful shutdown (connections already accepted
/// are served to their end). Trouble accepting is counted in `health`; it never ends the loop.
pub(crate) async fn accept_until<S, B>(
    listener: TcpListener,
    stop: Arc<Notify>,
    service: S,
    limits: Limits,
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
        tokio::spawn(serve(stream, service.clone(), limits, slot, Arc::clone(&crowded)));
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
async fn serve<S, B>(stream: TcpStream, service: S, limits: Limits, _slot: OwnedSemaphorePermit, crowded: Arc<Notify>)
where
    S: hyper::service::Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io =
        TokioIo::new(Watched { stream, activity: Arc::clone(&activity), stall: limits.idle_timeout, stalled: None });
    let service = Tracked { inner: service, activity: Arc::clone(&activity), stall: limits.idle_timeout };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None);
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
                    return;
                }
            }
            () = changed => {}
            () = crowded => {
                if activity.is_idle() {
                    return;
                }
            }
        }
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
}

impl Activity {
    fn new() -> Activity {
        Activity { phase: Mutex::new(Phase::Idle(Instant::now())), changed: Notify::new() }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // A poisoned phase is still a phase.
        self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes arrived: on an idle connection, the head of a request begins.
    fn read(&self) {
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

/// The connection's socket, telling [`Activity`] when bytes arrive, and failing a write that cannot
/// progress for the stall time: the peer stopped reading its answer.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    stall: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Watched {
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
