//! The robustness suite: each test pins a defect found by the reliability audit (named `dN_…` after it),
//! bounded in time and size, on loopback only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloture::report::FailureClass;
use cloture::{Client, Config, Report};
use http::{Request, Response, StatusCode};
use tokio::net::TcpListener;

/// `front` calls `back` once per request and answers 503 when that fails.
async fn start(stop: Arc<tokio::sync::Notify>) -> String {
    let back = TcpListener::bind("127.0.0.1:0").await.expect("bind back");
    let back_url = format!("http://{}", back.local_addr().expect("address"));
    let front = TcpListener::bind("127.0.0.1:0").await.expect("bind front");
    let front_url = format!("http://{}", front.local_addr().expect("address"));
    let s = Arc::clone(&stop);
    let ok = |_: Request<Bytes>| async { Response::new(Bytes::from_static(b"ok")) };
    tokio::spawn(cloture::serve(back, "back", ok, async move { s.notified().await }));
    let client = Client::new().with_timeout(Duration::from_secs(1));
    let handler = move |_: Request<Bytes>| {
        let (client, url) = (client.clone(), format!("{back_url}/x"));
        async move {
            let status = match client.get(url).send().await {
                Ok(response) if response.status() == 200 => StatusCode::OK,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = status;
            response
        }
    };
    tokio::spawn(cloture::serve(front, "front", handler, async move { stop.notified().await }));
    front_url
}

/// Explores a test that asks `front` and accepts 200 or 503, except that it fails without asking anything
/// on the runs `fails` says.
async fn explore_failing_on(fails: impl Fn(usize) -> bool) -> Report {
    let stop = Arc::new(tokio::sync::Notify::new());
    let front = start(Arc::clone(&stop)).await;
    let runs = AtomicUsize::new(0);
    let client = Client::new();
    let config = Config { name: "front".into(), ..Config::default() };
    let report = cloture::explore(&config, || {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        let (client, url, fail) = (client.clone(), format!("{front}/"), fails(run));
        async move {
            if fail {
                return Err("the test's own check failed".to_string());
            }
            let response = client.get(url).send().await.map_err(|e| e.to_string())?;
            match response.status().as_u16() {
                200 | 503 => Ok(()),
                other => Err(format!("status {other}")),
            }
        }
    })
    .await
    .expect("the exploration runs");
    stop.notify_waiters();
    report
}

#[tokio::test(flavor = "current_thread")]
async fn d6_a_failure_with_no_fault_injected_is_a_flaky_test_not_a_vulnerability() {
    // Runs 1 and 2 are the reference runs; run 3 is the first with a fault planned, and fails before any call.
    let report = explore_failing_on(|run| run == 3).await;
    assert!(report.vulnerabilities.is_empty(), "{}", report.terminal_summary());
    let flaky: Vec<_> = report.harness_errors().collect();
    assert_eq!(flaky.len(), 1, "{}", report.terminal_summary());
    let failure = flaky[0].failure.as_ref().expect("a failure");
    assert_eq!(failure.class, FailureClass::Error);
    assert!(failure.message.starts_with("flaky test: it failed with no fault injected"), "{}", failure.message);
    assert!(!report.summary.complete, "a run with a harness error is not complete");
    let summary = report.terminal_summary();
    assert!(summary.contains("failed in the harness, not in the services"), "{summary}");
    assert!(!summary.contains("every execution passed"), "{summary}");
}

#[tokio::test(flavor = "current_thread")]
async fn d4_a_test_that_fails_from_some_point_on_stops_the_run_without_a_fake_finding() {
    // From run 3 on nothing works any more (as when the harness is out of file descriptors).
    let report = explore_failing_on(|run| run >= 3).await;
    assert!(report.vulnerabilities.is_empty(), "{}", report.terminal_summary());
    assert!(!report.summary.complete);
    let stopped = report.summary.stopped.as_deref().unwrap_or_default();
    assert!(stopped.starts_with("the fault-free test fails now too"), "{stopped}");
    assert_eq!(report.harness_errors().count(), 1, "the run stops at the first such execution");
}

#[tokio::test(flavor = "current_thread")]
async fn d13_no_fault_tried_is_not_called_every_execution_passed() {
    let stop = Arc::new(tokio::sync::Notify::new());
    let front = start(Arc::clone(&stop)).await;
    let client = Client::new();
    let config = Config { name: "front".into(), max_executions: Some(2), ..Config::default() };
    let report = cloture::explore(&config, || {
        let (client, url) = (client.clone(), format!("{front}/"));
        async move { client.get(url).send().await.map(|_| ()).map_err(|e| e.to_string()) }
    })
    .await
    .expect("the exploration runs");
    stop.notify_waiters();
    let summary = report.terminal_summary();
    assert!(summary.contains("no fault was tried"), "{summary}");
    assert!(!summary.contains("every execution passed"), "{summary}");
    assert!(!report.summary.complete);
}

#[tokio::test(flavor = "current_thread")]
async fn d9_a_report_that_cannot_be_written_is_written_elsewhere_and_keeps_its_findings() {
    let stop = Arc::new(tokio::sync::Notify::new());
    let front = start(Arc::clone(&stop)).await;
    let dir = std::env::temp_dir().join(format!("cloture-unwritable-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("report.json")).expect("a directory where report.json should go");
    let client = Client::new();
    let config = Config { name: "front".into(), report_dir: Some(dir.clone()), ..Config::default() };
    let result = cloture::explore(&config, || {
        let (client, url) = (client.clone(), format!("{front}/"));
        async move { client.get(url).send().await.map(|_| ()).map_err(|e| e.to_string()) }
    })
    .await;
    stop.notify_waiters();
    let Err(cloture::Error::ReportNotWritten { fallback, summary, .. }) = result else {
        panic!("the failed write is reported: {result:?}");
    };
    assert!(summary.starts_with("cloture: front — "), "the findings are kept in the error: {summary}");
    let fallback = fallback.expect("a copy was written elsewhere");
    assert!(fallback.join("report.json").is_file() && fallback.join("report.html").is_file());
    std::fs::remove_dir_all(&fallback).ok();
    std::fs::remove_dir_all(&dir).ok();
}
