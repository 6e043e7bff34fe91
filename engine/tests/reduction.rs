//! Dynamic reduction compares what happened to calls as typed values, never as text: an injected fault is
//! pruned when a real failure of the same kind was already seen at that call, however differently the two
//! are worded.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloture::plan::PruneReason;
use cloture::{Catalog, Client, Config, Fault};
use http::{Request, Response, StatusCode};
use tokio::net::TcpListener;

fn reply(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    response
}

/// `front` calls a `back` that is always slower than front's time limit, and falls back to a default.
async fn start_slow_system(stop: Arc<tokio::sync::Notify>) -> String {
    let back = TcpListener::bind("127.0.0.1:0").await.expect("bind back");
    let back_url = format!("http://{}", back.local_addr().expect("address"));
    let front = TcpListener::bind("127.0.0.1:0").await.expect("bind front");
    let front_url = format!("http://{}", front.local_addr().expect("address"));
    let slow = |_: Request<Bytes>| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        reply(StatusCode::OK, "late")
    };
    let s = Arc::clone(&stop);
    tokio::spawn(cloture::serve(back, "back", slow, async move { s.notified().await }));
    let client = Client::new().with_timeout(Duration::from_millis(20));
    let handler = move |_: Request<Bytes>| {
        let (client, url) = (client.clone(), format!("{back_url}/value"));
        async move {
            match client.get(url).send().await {
                Ok(_) => reply(StatusCode::OK, "fresh"),
                Err(error) if error.is_timeout() && !error.is_injected() => reply(StatusCode::OK, "default"),
                Err(_) => reply(StatusCode::SERVICE_UNAVAILABLE, "{}"),
            }
        }
    };
    tokio::spawn(cloture::serve(front, "front", handler, async move { stop.notified().await }));
    front_url
}

#[tokio::test(flavor = "current_thread")]
async fn a_real_timeout_prunes_the_injected_timeout_whatever_the_words_of_either() {
    let stop = Arc::new(tokio::sync::Notify::new());
    let front = start_slow_system(Arc::clone(&stop)).await;
    let config = Config {
        name: "slow back".into(),
        catalog: Catalog::default().only(vec![Fault::Timeout, Fault::Connect]),
        ..Config::default()
    };
    let client = Client::new();
    let report = cloture::explore(&config, || {
        let (client, url) = (client.clone(), format!("{front}/"));
        async move {
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
    // The real timeout's message ("no response within 20ms") and the injected one's ("request to back timed
    // out (injected)") share no text: only their typed kind makes them the same answer.
    let timeout_at_back = |faults: &[String]| faults.len() == 1 && faults[0].ends_with("GET /value timeout");
    let pruned: Vec<_> = report.pruned.iter().filter(|p| timeout_at_back(&p.faults)).collect();
    assert_eq!(pruned.len(), 1, "{:#?}", report.pruned);
    assert_eq!(pruned[0].reason, PruneReason::Observed);
    assert!(
        report.executions.iter().all(|e| e.faults.iter().all(|f| f.fault != Fault::Timeout)),
        "the injected timeout never ran"
    );
    assert!(report.executions.iter().any(|e| e.faults.iter().any(|f| f.fault == Fault::Connect)), "connect ran");
}
