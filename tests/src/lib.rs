//! What the integration tests share: GET through cloture's client, a request with any method over a
//! raw socket, the functional test's expected body, and stand-ins for a failing service: a closed port, a
//! listener that never answers, a server that answers every request with an error status, and users
//! started alone, pointed wherever a test wants; and the log subscriber of the crate's programs.

pub mod scenario;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context as _};
use cinema::{users, Data, Edition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What `GET /users/chris_rivers/bookings` answers, byte for byte.
pub const CHRIS_RIVERS_BOOKINGS: &str =
    r#"{"20151201":[{"rating":8.8,"title":"Creed","uri":"/movies/267eedb8-0f5d-42d5-8f43-72426b9fb3e6"}]}"#;

/// A response's status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub body: String,
}

impl Fetched {
    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("the body is not JSON: {}", self.body))
    }

    /// The message of an error body `{"error": message}`.
    pub fn error(&self) -> anyhow::Result<String> {
        match self.json()? {
            serde_json::Value::Object(object) if object.len() == 1 => match object.get("error") {
                Some(serde_json::Value::String(message)) => Ok(message.clone()),
                _ => bail!("not an error body: {}", self.body),
            },
            _ => bail!("not an error body: {}", self.body),
        }
    }
}

/// GETs `url` through a [`cloture::Client`], with a 10 s limit so that a hanging service fails the test.
pub async fn get(url: impl Into<String>) -> anyhow::Result<Fetched> {
    let url = url.into();
    let response = cloture::Client::new()
        .get(url.as_str())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let body = String::from_utf8(response.bytes().to_vec()).with_context(|| format!("GET {url}: body not UTF-8"))?;
    Ok(Fetched { status: response.status().as_u16(), body })
}

/// Sends `METHOD path` with an empty body to `address` over a plain socket and reads the whole response.
pub async fn request(address: SocketAddr, method: &str, path: &str) -> anyhow::Result<Fetched> {
    let mut stream = TcpStream::connect(address).await?;
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .context("no response within 10 s")??;
    let response = String::from_utf8(response).context("response not UTF-8")?;
    let (head, body) = response.split_once("\r\n\r\n").context("no end of headers")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    Ok(Fetched { status, body: body.to_string() })
}

/// The URL of a port of 127.0.0.1 that refuses connections (it was free a moment ago).
pub async fn closed_port() -> anyhow::Result<String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let address = listener.local_addr()?;
    drop(listener);
    Ok(format!("http://{address}"))
}

/// A listener that never accepts: connections complete (the kernel's backlog) and requests are never
/// answered. Kept open while this lives.
pub struct Silent {
    pub url: String,
    _listener: TcpListener,
}

pub async fn silent() -> anyhow::Result<Silent> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    Ok(Silent { url: format!("http://{}", listener.local_addr()?), _listener: listener })
}

/// A task serving until dropped, at `url`.
pub struct Running {
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server answering every request with `status` (e.g. `500 Internal Server Error`) and `{"error": reason}`.
pub async fn failing(status: &'static str) -> anyhow::Result<Running> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let reason = status.split_once(' ').map_or(status, |(_, reason)| reason);
    let body = serde_json::json!({ "error": reason }).to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                // Read the request head first: closing a socket with unread data resets the connection.
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(Running { url, task })
}

/// Users of `edition` alone on a free port, calling bookings and movies at the URLs given, with `timeout`.
pub async fn users_alone(
    edition: Edition,
    bookings_url: &str,
    movies_url: &str,
    timeout: Duration,
) -> anyhow::Result<Running> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = users::State::new(&Data::embedded(), edition, bookings_url, movies_url).with_timeout(timeout);
    let task = tokio::spawn(async move {
        if let Err(error) = users::run(listener, state, std::future::pending()).await {
            panic!("users stopped: {error}");
        }
    });
    Ok(Running { url, task })
}

/// Installs the log subscriber of the programs (`cinema-faulty`, `cinema-bench`): to stderr, filtered by
/// `RUST_LOG`, by default cloture's warnings and errors. The services run in the same process, and their
/// own logs (an error for every failure they do not handle: exactly what an exploration provokes, and
/// reports) are off by default; `RUST_LOG=cinema=error` shows them.
pub fn init_logging() {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,cinema=off".to_string());
    let filter = EnvFilter::builder().with_default_directive(LevelFilter::WARN.into()).parse_lossy(directives);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}
