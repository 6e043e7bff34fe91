//! Faults as they really happen, each on a small system of its own found by one default exploration: a
//! retry loop whose every attempt fails, a call without a time limit, a call whose only time limit is
//! around it (not a bug), and a fallback that answers 200 with partial data (a warning, not a failure).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloture::report::{FailureClass, WarningKind};
use cloture::{Client, Config, Fault, Report};
use http::{Request, Response, StatusCode};
use tokio::net::TcpListener;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
}

/// Starts `back` (answers `[1,2,3]`) and `front`, whose handler `front` gets a client and back's URL.
async fn system<H, F>(stop: &Arc<tokio::sync::Notify>, front: H) -> String
where
    H: Fn(Client, String) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Bytes>> + Send + 'static,
{
    let back = TcpListener::bind("127.0.0.1:0").await.expect("bind back");
    let back_url = format!("http://{}/numbers", back.local_addr().expect("address"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind front");
    let front_url = format!("http://{}/", listener.local_addr().expect("address"));
    let numbers = |_: Request<Bytes>| async { reply(StatusCode::OK, "[1,2,3]") };
    let s = Arc::clone(stop);
    tokio::spawn(cloture::serve(back, "back", numbers, async move { s.notified().await }));
    let client = Client::new();
    let handler = move |_: Request<Bytes>| front(client.clone(), back_url.clone());
    let s = Arc::clone(stop);
    tokio::spawn(cloture::serve(listener, "front", handler, async move { s.notified().await }));
    front_url
}

/// One default exploration of a test that asks front and accepts a 200, or a 503 under faults.
async fn explore(front_url: String) -> Report {
    let client = Client::new();
    let config = Config { name: "front".into(), ..Config::default() };
    cloture::explore(&config, || {
        let (client, url) = (client.clone(), front_url.clone());
        async move {
            let response = client.get(url).send().await.map_err(|e| e.to_string())?;
            match response.status().as_u16() {
                200 => Ok(()),
                503 if cloture::fault_injected() => Ok(()),
                other => Err(format!("status {other}")),
            }
        }
    })
    .await
    .expect("the exploration runs")
}

fn sum(body: &[u8]) -> Option<u64> {
    let numbers: Vec<u64> = serde_json::from_slice(body).ok()?;
    Some(numbers.iter().sum())
}

#[tokio::test(flavor = "current_thread")]
async fn a_retry_loop_whose_every_attempt_fails_ends_in_the_crash_it_hides() {
    let stop = Arc::new(tokio::sync::Notify::new());
    let front = system(&stop, |client: Client, url: String| async move {
        let client = client.with_timeout(Duration::from_secs(1));
        for _attempt in 0..3 {
            if let Ok(response) = client.get(url.as_str()).send().await {
                if response.status() == 200 {
                    return reply(StatusCode::OK, sum(response.bytes()).unwrap_or(0).to_string());
                }
            }
        }
        // The author never thought every attempt could fail.
        panic!("back failed three times in a row");
    })
    .await;
    let report = explore(front).await;
    stop.notify_waiters();
    let crash = report.vulnerabilities.iter().find(|v| v.class == FailureClass::Crash).expect("the crash is found");
    assert!(crash.message.contains("back failed three times in a row"), "{}", report.terminal_summary());
    let first = report.execution(&crash.executions[0]).expect("its execution");
    assert_eq!(first.faults.len(), 3, "every attempt failed: {:?}", first.faults);
    assert_eq!(report.config.max_faults, 2, "found at the default --max-faults");
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_without_a_time_limit_hangs_when_its_callee_is_slow() {
    let stop = Arc::new(tokio::sync::Notify::new());
    let front = system(&stop, |client: Client, url: String| async move {
        match client.get(url).send().await {
            Ok(response) => reply(StatusCode::OK, response.bytes().clone()),
            Err(_) => reply(StatusCode::SERVICE_UNAVAILABLE, ""),
        }
    })
    .await;
    let started = std::time::Instant::now();
    let report = explore(front).await;
    stop.notify_waiters();
    let hang = report.vulnerabilities.iter().find(|v| v.class == FailureClass::Hang).expect("the hang is found");
    assert!(hang.title.starts_with("front waits forever when back is slow"), "{}", hang.title);
    assert!(
        hang.locations[0].file.ends_with("engine/tests/faults.rs"),
        "the call without a limit: {:?}",
        hang.locations
    );
    assert!(started.elapsed() < Duration::from_secs(5), "no real wait for the 10 s deadline: {:?}", started.elapsed());
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_whose_only_time_limit_is_an_outer_tokio_timeout_is_not_a_bug() {
    let stop = Arc::new(tokio::sync::Notify::new());
    let front = system(&stop, |client: Client, url: String| async move {
        match tokio::time::timeout(Duration::from_secs(2), client.get(url).send()).await {
            Ok(Ok(response)) if response.status() == 200 => reply(StatusCode::OK, response.bytes().clone()),
            _ => reply(StatusCode::SERVICE_UNAVAILABLE, ""),
        }
    })
    .await;
    let report = explore(front).await;
    stop.notify_waiters();
    assert_eq!(report.summary.failed, 0, "{}", report.terminal_summary());
    assert!(report.executions.iter().any(|e| e.faults.iter().any(|f| f.fault == Fault::Slow)), "slow was tried");
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_whose_only_time_limit_is_a_tower_timeout_layer_is_not_a_bug() {
    use tower::{ServiceBuilder, ServiceExt};
    let stop = Arc::new(tokio::sync::Notify::new());
    let front = system(&stop, |client: Client, url: String| async move {
        let call = tower::service_fn(move |url: String| {
            let client = client.clone();
            async move { client.get(url).send().await }
        });
        let limited = ServiceBuilder::new().timeout(Duration::from_secs(2)).service(call);
        match limited.oneshot(url).await {
            Ok(response) if response.status() == 200 => reply(StatusCode::OK, response.bytes().clone()),
            _ => reply(StatusCode::SERVICE_UNAVAILABLE, ""),
        }
    })
    .await;
    let report = explore(front).await;
    stop.notify_waiters();
    assert_eq!(report.summary.failed, 0, "{}", report.terminal_summary());
}

#[tokio::test(flavor = "current_thread")]
async fn a_fallback_answering_200_with_partial_data_is_a_masked_failure() {
    let stop = Arc::new(tokio::sync::Notify::new());
    let front = system(&stop, |client: Client, url: String| async move {
        let client = client.with_timeout(Duration::from_secs(1));
        let total = match client.get(url).send().await {
            Ok(response) if response.status() == 200 => sum(response.bytes()).unwrap_or(0),
            // "Better an empty answer than an error": the caller cannot tell.
            _ => 0,
        };
        reply(StatusCode::OK, total.to_string())
    })
    .await;
    let report = explore(front).await;
    stop.notify_waiters();
    assert_eq!(report.summary.failed, 0, "the test accepts any 200: {}", report.terminal_summary());
    let masked: Vec<_> =
        report.executions.iter().filter(|e| e.warnings.iter().any(|w| w.kind == WarningKind::MaskedFailure)).collect();
    assert!(!masked.is_empty(), "{}", report.terminal_summary());
    assert!(masked.iter().all(|e| !e.faults.is_empty()));
    assert!(report.terminal_summary().contains("masked failure: the test accepted a 200 to GET / whose body differs"));
}
