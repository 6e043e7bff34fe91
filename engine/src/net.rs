//! The accept loop of cloture's own HTTP endpoints (the coordinator, the proxies).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Serves `service` over HTTP/1 on every connection `listener` accepts until `stop` is notified; for
/// cloture's own endpoints (the coordinator, proxies), which need no graceful shutdown.
pub(crate) async fn accept_until<S>(listener: TcpListener, stop: Arc<tokio::sync::Notify>, service: S)
where
    S: hyper::service::Service<Request<hyper::body::Incoming>, Response = Response<Full<Bytes>>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = stop.notified() => return,
        };
        let _ = stream.set_nodelay(true);
        let connection =
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service.clone());
        tokio::spawn(connection);
    }
}
