//! The shop's functional test, and its exploration: the shop's bugs found at their lines, one of them on
//! the gRPC hop, and a call graph with HTTP and gRPC calls.

use cloture::graph::Edge;
use cloture::report::FailureClass;
use cloture::{Catalog, Config};
use shop::scenario::CheckoutTest;

/// The line of `path` (relative to the workspace) that holds `text`, which must be on exactly one line.
fn line_of(path: &str, text: &str) -> u32 {
    let source = std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).expect("source");
    let lines: Vec<usize> =
        source.lines().enumerate().filter(|(_, line)| line.contains(text)).map(|(at, _)| at).collect();
    assert_eq!(lines.len(), 1, "`{text}` is on one line of {path}");
    lines[0] as u32 + 1
}

const CHECKOUT: &str = "examples/shop/src/gateway/checkout.rs";

#[tokio::test]
async fn a_checkout_answers_the_order_without_any_fault() {
    let shop = shop::start().await.expect("the shop starts");
    let order = serde_json::json!({ "user": "ada", "item": "teapot", "quantity": 3 });
    let response = reqwest::Client::new().post(format!("{}/checkout", shop.url())).json(&order).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let order: shop::gateway::Order = response.json().await.unwrap();
    assert_eq!((order.item.as_str(), order.total), ("teapot", 3 * 1_850));
    assert!(order.charge.starts_with("ch_") && order.reservation.starts_with("res-teapot-"), "{order:?}");
    // The scenario of the exploration passes as a plain test too.
    CheckoutTest::new(&shop.url()).run().await.unwrap();
    shop.shutdown().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn exploration_finds_the_shops_bugs_in_the_gateways_handler() {
    let shop = shop::start().await.expect("the shop starts");
    let catalog = Catalog::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/faults.catalog"))).unwrap();
    let config = Config { name: "shop".into(), catalog, ..Config::default() };
    let test = CheckoutTest::new(&shop.url());
    let report = cloture::explore(&config, || test.clone().run()).await.unwrap();
    shop.shutdown().await.unwrap();
    let summary = report.terminal_summary();

    let catalog_call = line_of(CHECKOUT, "gateway.http.get(url)");
    let grpc_call = line_of(CHECKOUT, ".reserve(request).await.unwrap()");
    let payments_call = line_of(CHECKOUT, "gateway.http.post(url)");
    let at = |vulnerability: &cloture::report::Vulnerability, line: u32| {
        vulnerability.call_sites.iter().any(|site| site.file == CHECKOUT && site.line == line)
    };
    // No status check before decoding the catalog's answer: a panic on the same line.
    let decode = report.vulnerabilities.iter().find(|v| v.class == FailureClass::Crash && at(v, catalog_call));
    let decode = decode.unwrap_or_else(|| panic!("the decoding bug: {summary}"));
    assert!(decode.faults.iter().all(|fault| fault.family() == "status"), "{summary}");
    assert!(decode.locations.iter().any(|l| l.file == CHECKOUT && l.line == catalog_call), "{summary}");
    // An unwrap on the gRPC call's result: every gRPC fault crashes the gateway there.
    let grpc = report.vulnerabilities.iter().find(|v| v.family == "grpc" && at(v, grpc_call));
    let grpc = grpc.unwrap_or_else(|| panic!("the gRPC bug: {summary}"));
    assert_eq!(grpc.callees, ["inventory"]);
    assert!(grpc.locations.iter().any(|l| l.file == CHECKOUT && l.line == grpc_call), "{summary}");
    // No time limit on the payments call: a slow payments service hangs the checkout.
    let hang = report.vulnerabilities.iter().find(|v| v.class == FailureClass::Hang && at(v, payments_call));
    assert!(hang.is_some(), "the missing time limit: {summary}");

    let methods: Vec<&str> = report
        .call_graph
        .edges
        .iter()
        .filter_map(|edge| match &edge.edge {
            Edge::Calls { method, .. } => Some(method.as_str()),
            Edge::Contains => None,
        })
        .collect();
    for method in ["GET", "POST", "GRPC"] {
        assert!(methods.contains(&method), "the call graph has {method} calls: {methods:?}");
    }
}
