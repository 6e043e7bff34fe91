//! The reqwest middleware answers each planned fault as reqwest's own answer: a status with an empty
//! body, errors for which `is_connect()` / `is_timeout()` hold, and holds that reqwest's own timeouts end
//! (the request's, and the client's, which the middleware cannot read).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use cloture::context::Execution;
use cloture::trace::{CallOutcome, TimeLimit, Trace, Transport};
use cloture::{CallKey, Fault};
use reqwest_middleware::ClientWithMiddleware;

async fn echo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().route("/stock", get(|| async { "in stock" }));
    let app = app.layer(cloture::ServerLayer::new("stock").listening_on(address));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/stock")
}

fn client(timeout: Option<Duration>) -> ClientWithMiddleware {
    let mut builder = reqwest::Client::builder();
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    reqwest_middleware::ClientBuilder::new(builder.build().unwrap()).with(cloture::reqwest::Middleware).build()
}

/// The call under test, on one line: its site is this line in every execution.
async fn call(
    client: &ClientWithMiddleware,
    url: &str,
    limit: Option<Duration>,
) -> reqwest_middleware::Result<reqwest::Response> {
    match limit {
        Some(limit) => client.get(url).timeout(limit).send().await,
        None => client.get(url).send().await,
    }
}

async fn run(
    plan: HashMap<CallKey, Fault>,
    client: &ClientWithMiddleware,
    url: &str,
    limit: Option<Duration>,
) -> (reqwest_middleware::Result<reqwest::Response>, Trace) {
    let execution = Execution::start(plan);
    let context = execution.root_context().with_service("shop");
    let result = context.scope(call(client, url, limit)).await;
    (result, execution.trace())
}

fn reqwest_error(result: reqwest_middleware::Result<reqwest::Response>) -> reqwest::Error {
    match result {
        Err(reqwest_middleware::Error::Reqwest(error)) => error,
        other => panic!("not a reqwest error: {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn planned_faults_are_reqwests_own_answers() {
    let url = echo().await;
    let plain = client(None);
    let (answer, trace) = run(HashMap::new(), &plain, &url, Some(Duration::from_secs(2))).await;
    assert_eq!(answer.unwrap().text().await.unwrap(), "in stock");
    let call = &trace.calls[0];
    assert_eq!((call.to.as_str(), call.limit), ("stock", TimeLimit::Within(Duration::from_secs(2))));
    assert_eq!(call.site.file, "examples/shop/tests/reqwest_faults.rs");
    let key = call.key;
    let limit = Some(Duration::from_secs(2));

    let (answer, _) = run(HashMap::from([(key, Fault::Status(503))]), &plain, &url, limit).await;
    let answer = answer.unwrap();
    assert_eq!((answer.status().as_u16(), answer.url().as_str()), (503, url.as_str()));
    assert_eq!(answer.bytes().await.unwrap().len(), 0);

    let (answer, trace) = run(HashMap::from([(key, Fault::Connect)]), &plain, &url, limit).await;
    let error = reqwest_error(answer);
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(error.url().map(|url| url.as_str()), Some(url.as_str()));
    assert_eq!(trace.calls[0].outcome, CallOutcome::Transport(Transport::Connect));

    let (answer, _) = run(HashMap::from([(key, Fault::Timeout)]), &plain, &url, limit).await;
    assert!(reqwest_error(answer).is_timeout());

    // A slow callee: the request's own timeout ends the call, in virtual time.
    let started = Instant::now();
    let (answer, trace) = run(HashMap::from([(key, Fault::Slow)]), &plain, &url, limit).await;
    assert!(reqwest_error(answer).is_timeout());
    assert_eq!(trace.calls[0].outcome, CallOutcome::Transport(Transport::Timeout));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

    // A delay within the limit: the answer comes, late.
    let (answer, _) = run(HashMap::from([(key, Fault::Delay(Duration::from_millis(500)))]), &plain, &url, limit).await;
    assert_eq!(answer.unwrap().text().await.unwrap(), "in stock");
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_callee_meets_the_clients_own_timeout_which_no_one_can_read() {
    let url = echo().await;
    let bounded = client(Some(Duration::from_millis(300)));
    let (answer, trace) = run(HashMap::new(), &bounded, &url, None).await;
    assert!(answer.is_ok());
    assert_eq!(trace.calls[0].limit, TimeLimit::Unknown);
    let key = trace.calls[0].key;
    let (answer, trace) = run(HashMap::from([(key, Fault::Slow)]), &bounded, &url, None).await;
    let error = reqwest_error(answer);
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(error.url().map(|url| url.as_str()), Some(url.as_str()));
    assert_eq!(trace.calls[0].outcome, CallOutcome::Transport(Transport::Timeout));
}
