//! What cloture's integrations cost per call, against the bare client, side by side in one run: reqwest
//! with and without `cloture::reqwest::Middleware`, a hyper-util client with and without
//! `cloture::tower::ClientLayer`, `cloture::Client`, and the layer over a client that answers in memory at
//! once (what the layer itself costs, without the network's noise). Every other call is a real GET over
//! loopback to a `cloture::serve` service (the same for all), made as a service inside an execution, so the
//! instrumented clients register the call, decide (no fault) and name the call site from the stack each time.
//!
//! `cargo bench -p cloture --features tower,reqwest --bench integrations [-- CALLS]` (default 4,000 calls
//! per client, in rounds that alternate the clients). Release builds have no line tables unless asked: the
//! call site is then the caller's function (see `engine/src/site.rs`); the cost is the same either way.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloture::context::Execution;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_layer::Layer;
use tower_service::Service;

/// Calls per round and client; rounds alternate the clients so that drift hits all alike.
const ROUND: usize = 200;

type Hyper = hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>;

struct Clients {
    url: String,
    reqwest: reqwest::Client,
    middleware: reqwest_middleware::ClientWithMiddleware,
    hyper: Hyper,
    layered: cloture::tower::ClientService<Hyper>,
    cloture: cloture::Client,
    layered_memory: cloture::tower::ClientService<Memory>,
}

/// A client that answers at once, in memory: the layer over it costs what the layer itself costs.
#[derive(Clone, Copy)]
struct Memory;

impl Service<Request<Empty<Bytes>>> for Memory {
    type Response = Response<Empty<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Empty<Bytes>>) -> Self::Future {
        std::future::ready(Ok(Response::new(Empty::new())))
    }
}

fn main() {
    let calls: usize = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(4000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime builds");
    runtime.block_on(bench(calls.div_ceil(ROUND)));
}

async fn bench(rounds: usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("bound");
    let server = cloture::serve(listener, "echo", |_| async { Response::new(Bytes::from_static(b"ok")) }, async {
        std::future::pending::<()>().await
    });
    tokio::spawn(server);
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let hyper: Hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let reqwest = reqwest::Client::builder().no_proxy().build().expect("a client builds");
    let clients = Clients {
        url: format!("http://{address}/ping"),
        middleware: reqwest_middleware::ClientBuilder::new(reqwest.clone()).with(cloture::reqwest::Middleware).build(),
        layered: cloture::tower::ClientLayer::new().layer(hyper.clone()),
        reqwest,
        hyper,
        cloture: cloture::Client::new(),
        layered_memory: cloture::tower::ClientLayer::new().layer(Memory),
    };
    let names = [
        "reqwest",
        "reqwest + cloture middleware",
        "hyper-util",
        "hyper-util + cloture layer",
        "cloture::Client",
        "in-memory client",
        "in-memory client + cloture layer",
    ];
    let mut totals = [Duration::ZERO; 7];
    // One execution per round keeps its trace small; warm-up first (connections, the call-site cache).
    for round in 0..=rounds {
        let execution = Execution::start(HashMap::new());
        let context = execution.root_context().with_service("bench");
        let times = context.scope(round_of(&clients)).await;
        if round > 0 {
            for (total, time) in totals.iter_mut().zip(times) {
                *total += time;
            }
        }
    }
    let calls = (rounds * ROUND) as f64;
    let per_call = |total: Duration| total.as_secs_f64() * 1e6 / calls;
    println!("## Cost per call of the integrations ({} calls each, loopback GET, no fault)", rounds * ROUND);
    println!("| client | µs per call | over the bare client |");
    println!("|---|---|---|");
    for (index, name) in names.iter().enumerate() {
        let bare = match index {
            1 => Some(totals[0]),
            3 | 4 => Some(totals[2]),
            6 => Some(totals[5]),
            _ => None,
        };
        let over =
            bare.map_or("—".to_string(), |bare| format!("{:+.1} µs", per_call(totals[index]) - per_call(bare)));
        println!("| {name} | {:.1} | {over} |", per_call(totals[index]));
    }
}

/// One round: `ROUND` calls with each client in turn; the time each took.
async fn round_of(clients: &Clients) -> [Duration; 7] {
    let mut times = [Duration::ZERO; 7];
    let (mut layered, mut memory, mut layered_memory) =
        (clients.layered.clone(), Memory, clients.layered_memory.clone());
    for (client, time) in times.iter_mut().enumerate() {
        let started = Instant::now();
        for _ in 0..ROUND {
            match client {
                0 => expect_ok(clients.reqwest.get(&clients.url).send().await.expect("reqwest").bytes().await),
                1 => expect_ok(clients.middleware.get(&clients.url).send().await.expect("middleware").bytes().await),
                2 => {
                    let response = clients.hyper.request(request(&clients.url)).await.expect("hyper-util");
                    expect_ok(response.into_body().collect().await.map(|body| body.to_bytes()));
                }
                3 => {
                    let response = layered.call(request(&clients.url)).await.expect("layered");
                    expect_ok(response.into_body().collect().await.map(|body| body.to_bytes()));
                }
                4 => expect_ok(clients.cloture.get(&clients.url).send().await.map(|response| response.bytes().clone())),
                5 => drop(memory.call(request(&clients.url)).await.expect("in memory")),
                _ => drop(layered_memory.call(request(&clients.url)).await.expect("in memory")),
            }
        }
        *time = started.elapsed();
    }
    times
}

fn request(url: &str) -> Request<Empty<Bytes>> {
    Request::get(url).body(Empty::new()).expect("a valid request")
}

fn expect_ok<E: std::fmt::Debug>(body: Result<Bytes, E>) {
    assert_eq!(body.expect("a body").as_ref(), b"ok");
}
