//! End-to-end tests of the explorer on a two-service system built right here: `front` calls `back` once
//! (or `n` times). The fragile front has no time limit and handles only connection errors, so a slow back
//! makes it hang and error statuses crash it; the robust one has a time limit and answers 503 to anything.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloture::report::{FailureClass, Outcome};
use cloture::{Client, Config, Fault};
use http::{Request, Response, StatusCode};
use tokio::net::TcpListener;

struct System {
    front: String,
    stop: Arc<tokio::sync::Notify>,
}

fn json(status: StatusCode, body: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response
}

async fn start(robust: bool) -> System {
    let stop = Arc::new(tokio::sync::Notify::new());
    let back = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let back_url = format!("http://{}", back.local_addr().unwrap());
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_url = format!("http://{}", front.local_addr().unwrap());
    let s = stop.clone();
    tokio::spawn(cloture::serve(
        back,
        "back",
        |_req: Request<Bytes>| async { json(StatusCode::OK, "[1,2,3]".into()) },
        async move { s.notified().await },
    ));
    let client = if robust { Client::new().with_timeout(Duration::from_secs(1)) } else { Client::new() };
    let s = stop.clone();
    let handler = move |request: Request<Bytes>| {
        let client = client.clone();
        let back_url = back_url.clone();
        async move {
            let times: usize = request.uri().path().trim_start_matches('/').parse().unwrap_or(1);
            let mut total = 0u64;
            for i in 0..times {
                let response = match client.get(format!("{back_url}/numbers/{i}")).send().await {
                    Err(error) if error.is_connect() => return json(StatusCode::SERVICE_UNAVAILABLE, "{}".into()),
                    Err(error) if robust => return json(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
                    Ok(response) if robust && response.status() != 200 => {
                        return json(StatusCode::SERVICE_UNAVAILABLE, "{}".into())
                    }
                    other => other.expect("back answered"),
                };
                let numbers: Vec<u64> = response.json().expect("back sends numbers");
                total += numbers.iter().sum::<u64>();
            }
            json(StatusCode::OK, total.to_string())
        }
    };
    tokio::spawn(cloture::serve(front, "front", handler, async move { s.notified().await }));
    System { front: front_url, stop }
}

fn config() -> Config {
    Config { name: "front sums".into(), deadline: Duration::from_secs(2), ..Config::default() }
}

async fn explore(system: &System, times: usize, config: &Config) -> cloture::Report {
    let client = Client::new();
    let url = format!("{}/{times}", system.front);
    let expected = (6 * times).to_string();
    cloture::explore(config, || {
        let client = client.clone();
        let url = url.clone();
        let expected = expected.clone();
        async move {
            let response = client.get(url).send().await.map_err(|e| e.to_string())?;
            if response.status() == 200 {
                assert_eq!(String::from_utf8_lossy(response.bytes()), expected);
            } else if !(cloture::fault_injected() && response.status() == 503) {
                return Err(format!("unexpected status {}", response.status()));
            }
            Ok::<(), String>(())
        }
    })
    .await
    .expect("exploration completes")
}

#[tokio::test(flavor = "current_thread")]
async fn fragile_front_hangs_when_back_is_slow_and_crashes_on_statuses_but_not_connect() {
    let system = start(false).await;
    let report = explore(&system, 1, &config()).await;
    system.stop.notify_waiters();
    assert_eq!(report.summary.executions, 2 + 5, "{}", report.terminal_summary());
    let faulty: Vec<_> = report.executions.iter().filter(|e| !e.reference).collect();
    for execution in &faulty {
        let fault = execution.faults[0].fault;
        assert_eq!(execution.faults.len(), 1);
        assert_eq!(execution.faults[0].to, "back");
        assert!(execution.faults[0].site.file.ends_with("engine/tests/explore.rs"), "{:?}", execution.faults[0].site);
        assert_ne!(fault, Fault::Timeout, "a call without a time limit is never given a timeout");
        if fault == Fault::Connect {
            assert_eq!(execution.outcome, Outcome::Pass);
        } else if fault == Fault::Slow {
            let failure = execution.failure.as_ref().expect("failure");
            assert_eq!(failure.class, FailureClass::Hang, "{failure:?}");
            assert!(failure.message.starts_with("front waits forever when back is slow"), "{}", failure.message);
            assert_eq!(failure.location.as_ref(), Some(&execution.faults[0].site), "the call without a limit");
        } else {
            let failure = execution.failure.as_ref().expect("failure");
            assert_eq!(failure.class, FailureClass::Crash, "{fault}: {failure:?}");
            let location = failure.location.as_ref().expect("a crash location");
            assert_eq!(location.file, "engine/tests/explore.rs", "{location}");
        }
    }
    // The hang on a slow back, and the status crash at the decode line: two vulnerabilities.
    assert_eq!(report.vulnerabilities.len(), 2, "{}", report.terminal_summary());
}

#[tokio::test(flavor = "current_thread")]
async fn robust_front_passes_everything_and_reduction_prunes_unreachable_calls() {
    let system = start(true).await;
    let mut with = config();
    with.order = cloture::plan::Order::Breadth;
    let reduced = explore(&system, 3, &with).await;
    let mut without = with.clone();
    without.reduce = false;
    let full = explore(&system, 3, &without).await;
    system.stop.notify_waiters();
    assert_eq!(reduced.summary.failed, 0, "{}", reduced.terminal_summary());
    assert_eq!(full.summary.failed, 0);
    assert!(
        reduced.summary.executions < full.summary.executions,
        "{} vs {}",
        reduced.summary.executions,
        full.summary.executions
    );
    assert!(reduced.summary.pruned > 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_test_that_fails_without_faults_stops_with_a_clear_error() {
    let config = config();
    let error = cloture::explore(&config, || async { Err::<(), _>("wrong answer") }).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("fails without faults") && text.contains("wrong answer"), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_test_that_fails_only_in_the_second_reference_run_stops_too() {
    let runs = std::cell::Cell::new(0);
    let flaky = || {
        runs.set(runs.get() + 1);
        let run = runs.get();
        async move {
            if run == 2 {
                Err::<(), _>("flaky answer")
            } else {
                Ok(())
            }
        }
    };
    let error = cloture::explore(&config(), flaky).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("fails without faults") && text.contains("flaky answer"), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_hanging_test_is_classified_as_timeout() {
    let system = start(true).await;
    let mut config = config();
    config.deadline = Duration::from_millis(200);
    let client = Client::new();
    let url = format!("{}/1", system.front);
    let report = cloture::explore(&config, || {
        let client = client.clone();
        let url = url.clone();
        async move {
            let response = client.get(url).send().await.map_err(|e| e.to_string())?;
            if response.status() != 200 {
                // Hang instead of answering.
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok::<(), String>(())
        }
    })
    .await
    .unwrap();
    system.stop.notify_waiters();
    let timeouts = report
        .executions
        .iter()
        .filter(|e| e.failure.as_ref().is_some_and(|f| f.class == FailureClass::Timeout))
        .count();
    assert_eq!(timeouts, 6, "{}", report.terminal_summary());
    // front's 1 s limit outlasts the 200 ms deadline when back is slow: limits that collide, said so.
    let slow = report.executions.iter().find(|e| e.faults.iter().any(|f| f.fault == Fault::Slow)).expect("slow ran");
    let message = &slow.failure.as_ref().expect("it failed").message;
    assert!(
        message.contains("front's time limit on the call to back (1s) is not shorter than the deadline"),
        "{message}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_closed_before_any_answer_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            drop(stream);
        }
    });
    let error = Client::new().get(url).send().await.unwrap_err();
    assert!(error.is_connect(), "{error}");
    assert!(!error.is_injected());
}

#[tokio::test(flavor = "current_thread")]
async fn abort_abandons_a_hanging_execution_at_once_and_the_report_says_so() {
    let system = start(true).await;
    let config = Config { deadline: Duration::from_secs(60), ..config() };
    let abort = config.cancel.clone();
    let client = Client::new();
    let url = format!("{}/1", system.front);
    let started = std::time::Instant::now();
    let report = cloture::explore(&config, || {
        let (client, url, abort) = (client.clone(), url.clone(), abort.clone());
        async move {
            let response = client.get(url).send().await.map_err(|e| e.to_string())?;
            if response.status() != 200 {
                // Hang, as a broken test would; someone presses Ctrl-C twice.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    abort.abort();
                });
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok::<(), String>(())
        }
    })
    .await
    .unwrap();
    system.stop.notify_waiters();
    assert!(started.elapsed() < Duration::from_secs(10), "the hanging execution was abandoned");
    assert!(!report.summary.complete);
    assert!(report.summary.stopped.as_deref().unwrap_or_default().contains("interrupted twice"));
    let last = report.executions.last().unwrap();
    let failure = last.failure.as_ref().unwrap();
    assert_eq!(failure.class, FailureClass::Error);
    assert!(failure.message.contains("abandoned"), "{}", failure.message);
}

#[tokio::test(flavor = "current_thread")]
async fn abort_during_a_reference_run_is_an_interruption_not_a_failing_test() {
    let config = Config { deadline: Duration::from_secs(60), ..config() };
    let abort = config.cancel.clone();
    let report = cloture::explore(&config, || {
        let abort = abort.clone();
        async move {
            // The fault-free run hangs; someone presses Ctrl-C twice.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                abort.abort();
            });
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), String>(())
        }
    })
    .await
    .expect("an interrupted exploration still gives its report");
    assert!(!report.summary.complete);
    assert!(report.summary.stopped.as_deref().unwrap_or_default().contains("interrupted twice"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_replay_report_carries_the_explorations_replay_command() {
    let system = start(false).await;
    let dir = std::env::temp_dir().join(format!("cloture-replay-line-{}", std::process::id()));
    let config = Config { report_dir: Some(dir.clone()), replay_command: "again {id} {name}".into(), ..config() };
    let client = Client::new();
    let url = format!("{}/1", system.front);
    let test = || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.get(url).send().await.map_err(|e| e.to_string())?;
            match response.status().as_u16() {
                200 => Ok(()),
                other => Err(format!("status {other}")),
            }
        }
    };
    let explored = cloture::explore(&config, &test).await.unwrap();
    let id = explored.vulnerabilities[0].executions[0].clone();
    let replayed = cloture::explore::replay(&config, &id, &test).await.unwrap();
    system.stop.notify_waiters();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(replayed.executions[0].outcome, Outcome::Fail, "{}", replayed.terminal_summary());
    assert_eq!(replayed.vulnerabilities[0].replay, format!("again {id} 'front sums'"));
    assert_eq!(replayed.config.replay_command, "again {id} 'front sums'");
}
