//! A small service written without cloture in mind — axum handlers, reqwest between them — made explorable
//! by adding cloture's server layer and reqwest middleware where the router and the client are built, and
//! nothing else: cloture finds its bug at the line that has it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use cloture::graph::Node;
use reqwest_middleware::ClientWithMiddleware;
use serde::{Deserialize, Serialize};

// The service, as its authors wrote it.

#[derive(Serialize, Deserialize)]
struct Price {
    cents: u64,
}

#[derive(Serialize, Deserialize)]
struct Quote {
    symbol: String,
    cents: u64,
}

struct Quotes {
    http: ClientWithMiddleware,
    prices: String,
}

async fn price(Path(symbol): Path<String>) -> Json<Price> {
    Json(Price { cents: symbol.len() as u64 * 100 })
}

async fn quote(State(quotes): State<Arc<Quotes>>, Path(symbol): Path<String>) -> Json<Quote> {
    let url = format!("{}/prices/{symbol}", quotes.prices);
    let price: Price = quotes.http.get(url).send().await.unwrap().json().await.unwrap();
    Json(Quote { symbol, cents: price.cents })
}

// What makes it explorable: the layer where each router is built, the middleware where the client is.

async fn serve(name: &str, router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = router.layer(cloture::ServerLayer::new(name).listening_on(address));
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn client() -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(cloture::reqwest::Middleware).build()
}

#[tokio::test(flavor = "current_thread")]
async fn cloture_finds_the_unchecked_decode_at_its_line_with_only_the_layer_and_the_middleware() {
    let prices = serve("prices", Router::new().route("/prices/{symbol}", get(price))).await;
    let quotes = Quotes { http: client(), prices: format!("http://{prices}") };
    let router = Router::new().route("/quotes/{symbol}", get(quote)).with_state(Arc::new(quotes));
    let quotes = serve("quotes", router).await;

    let test_client = client();
    let url = format!("http://{quotes}/quotes/ACME");
    let config = cloture::Config { name: "quotes".into(), ..cloture::Config::default() };
    let report = cloture::explore(&config, || {
        let (client, url) = (test_client.clone(), url.clone());
        async move {
            let response = client.get(url).send().await.map_err(|error| error.to_string())?;
            match response.status().as_u16() {
                200 => Ok(()),
                other => Err(format!("status {other}")),
            }
        }
    })
    .await
    .unwrap();

    let source = include_str!("own_service.rs");
    let line = source.lines().position(|line| line.contains(".send().await.unwrap().json()")).unwrap() as u32 + 1;
    let file = "examples/shop/tests/own_service.rs";
    let summary = report.terminal_summary();
    let crash = report.vulnerabilities.iter().find(|v| v.class == cloture::report::FailureClass::Crash);
    let crash = crash.unwrap_or_else(|| panic!("a crash: {summary}"));
    assert_eq!(crash.callees, ["prices"], "{summary}");
    assert!(crash.call_sites.iter().all(|site| site.file == file && site.line == line), "{summary}");
    assert!(crash.locations.iter().all(|site| site.file == file && site.line == line), "{summary}");
    // The test's own call is recorded at the test's line, never faulted.
    let test_line = source.lines().position(|line| line.contains("client.get(url).send().await.map_err")).unwrap() + 1;
    let test_site = report.call_graph.nodes.iter().any(|node| match &node.node {
        Node::Site { service, site } => service == "test" && site.file == file && site.line as usize == test_line,
        Node::Service { .. } => false,
    });
    assert!(test_site, "the test's call site is its own line: {:?}", report.call_graph.nodes);
}
