//! The tower client layer on a hyper-util client: calls named at the caller's line, the context passed on,
//! and each planned fault answered as the stack's own answer (a status with an empty body, a refused
//! connection, a timeout at once, a hold that the caller's own time limit ends).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloture::context::Execution;
use cloture::tower::{BoxError, ClientLayer, ClientService, Layer};
use cloture::{CallKey, Fault};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

type Hyper = hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>;

async fn stock() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/stock", listener.local_addr().unwrap());
    let server = cloture::serve(
        listener,
        "stock",
        |request: Request<Bytes>| async move {
            let parent = request.headers().contains_key("x-cloture-parent");
            Response::new(Bytes::from(if parent { "with context" } else { "without context" }))
        },
        std::future::pending(),
    );
    tokio::spawn(server);
    url
}

fn client() -> ClientService<Hyper> {
    ClientLayer::new().layer(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http())
}

/// The call under test, on one line: its site is this line in every execution.
async fn get(mut client: ClientService<Hyper>, url: &str) -> Result<(u16, Bytes), BoxError> {
    let response = client.call(Request::get(url).body(Empty::new()).unwrap()).await?;
    Ok((response.status().as_u16(), response.into_body().collect().await?.to_bytes()))
}

async fn run(plan: HashMap<CallKey, Fault>, url: &str) -> (Result<(u16, Bytes), BoxError>, cloture::trace::Trace) {
    let execution = Execution::start(plan);
    let context = execution.root_context().with_service("shop");
    let result = context.scope(tokio::time::timeout(Duration::from_secs(5), get(client(), url))).await;
    (result.unwrap_or_else(|_| Err("the caller's own time limit".into())), execution.trace())
}

#[tokio::test(flavor = "current_thread")]
async fn a_hyper_util_client_with_the_layer_gets_the_planned_faults_as_its_own_answers() {
    let url = stock().await;
    let (answer, trace) = run(HashMap::new(), &url).await;
    assert_eq!(answer.unwrap(), (200, Bytes::from("with context")));
    let call = &trace.calls[0];
    let source = include_str!("integrations.rs");
    let line = source.lines().position(|line| line.contains("let response = client.call(")).unwrap() as u32 + 1;
    assert_eq!((call.site.file.as_str(), call.site.line), ("engine/tests/integrations.rs", line));
    assert_eq!((call.from.as_str(), call.to.as_str(), call.method.as_str()), ("shop", "stock", "GET"));
    let key = call.key;

    let (answer, _) = run(HashMap::from([(key, Fault::Status(503))]), &url).await;
    assert_eq!(answer.unwrap(), (503, Bytes::new()));
    let io_kind = |error: BoxError| error.downcast::<std::io::Error>().map(|error| error.kind()).ok();
    let (answer, _) = run(HashMap::from([(key, Fault::Connect)]), &url).await;
    assert_eq!(io_kind(answer.unwrap_err()), Some(std::io::ErrorKind::ConnectionRefused));
    let (answer, _) = run(HashMap::from([(key, Fault::Timeout)]), &url).await;
    assert_eq!(io_kind(answer.unwrap_err()), Some(std::io::ErrorKind::TimedOut));
    // Held for a day, in virtual time: the caller's five-second limit ends it at once.
    let started = Instant::now();
    let (answer, trace) = run(HashMap::from([(key, Fault::Slow)]), &url).await;
    assert_eq!(answer.unwrap_err().to_string(), "the caller's own time limit");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(trace.calls[0].fault, Some(Fault::Slow));
    let (answer, trace) = run(HashMap::from([(key, Fault::Delay(Duration::from_millis(300)))]), &url).await;
    assert_eq!(answer.unwrap(), (200, Bytes::from("with context")));
    assert_eq!(trace.calls[0].outcome, cloture::trace::CallOutcome::Status(200));
}

#[tokio::test(flavor = "current_thread")]
async fn outside_an_execution_the_layer_passes_calls_through_untouched() {
    let url = stock().await;
    assert_eq!(get(client(), &url).await.unwrap(), (200, Bytes::from("without context")));
}
