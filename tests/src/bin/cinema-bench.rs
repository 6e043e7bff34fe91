//! `cinema-bench`: the numbers in BENCHMARKS.md, measured side by side in one run (`make bench`).
//!
//! 1. Executions per second of the cinema's faulty test explored in-process, next to the floor: the same
//!    chain of requests (test → users → bookings + movies) through bare hyper with no cloture at all.
//! 2. Added latency per instrumented call: one GET through cloture's client inside an execution, against the
//!    bare hyper-util client, to the same bare server.
//! 3. Executions needed with and without dynamic reduction (deterministic counts, no clock).
//! 4. Concurrent executions (`--jobs`): jobs 1 against jobs 2, on the current-thread runtime (concurrency,
//!    not parallelism) and on a two-worker multi-thread runtime (the services' handlers may then run in
//!    parallel; the explorer still polls its executions on one task).
//!
//! Sections 1–3 run on one current-thread runtime, so no cross-core wake-ups blur the comparison; rounds
//! of each variant are interleaved so that noise on a shared machine hits all of them alike.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cinema::{CinemaConfig, Data, Edition, Service};
use cinema_tests::scenario::{Oracle, UserBookingsTest};
use cloture::Config;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as BareClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Bare = BareClient<HttpConnector, Full<Bytes>>;

fn bare_client() -> Bare {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    BareClient::builder(TokioExecutor::new()).build(connector)
}

/// Serves `answer` with bare hyper on a free loopback port.
async fn bare_server<F, Fut>(answer: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let answer = answer.clone();
            let service = service_fn(move |request| {
                let answer = answer.clone();
                async move { Ok::<_, Infallible>(answer(request).await) }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    address
}

async fn get(client: &Bare, url: String) -> (u16, Bytes) {
    let request = Request::get(url).body(Full::new(Bytes::new())).expect("a valid request");
    let response = client.request(request).await.expect("bare request");
    let status = response.status().as_u16();
    (status, response.into_body().collect().await.expect("bare body").to_bytes())
}

fn json(value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from(serde_json::to_vec(value).expect("serializes"))))
}

/// The floor: users → bookings + movies with bare hyper, the same data and the same JSON work.
async fn bare_cinema(data: &Data) -> String {
    let bookings = Arc::clone(&data.bookings);
    let bookings_at = bare_server(move |request: Request<Incoming>| {
        let bookings = Arc::clone(&bookings);
        async move {
            let user = request.uri().path().trim_start_matches("/bookings/").to_string();
            json(&bookings.get(&user))
        }
    })
    .await;
    let movies = Arc::clone(&data.movies);
    let movies_at = bare_server(move |request: Request<Incoming>| {
        let movies = Arc::clone(&movies);
        async move {
            let id = request.uri().path().trim_start_matches("/movies/").to_string();
            let movie = movies.get(&id).expect("known movie");
            json(&serde_json::json!({"director": movie.director, "id": movie.id, "rating": movie.rating,
                "title": movie.title, "uri": format!("/movies/{id}")}))
        }
    })
    .await;
    let client = bare_client();
    let users_at = bare_server(move |request: Request<Incoming>| {
        let client = client.clone();
        async move {
            let user = request.uri().path().trim_start_matches("/users/").trim_end_matches("/bookings").to_string();
            let (_, body) = get(&client, format!("http://{bookings_at}/bookings/{user}")).await;
            let booked: BTreeMap<String, Vec<String>> = serde_json::from_slice(&body).expect("bookings");
            let mut result = BTreeMap::new();
            for (date, ids) in booked {
                let mut movies = Vec::new();
                for id in ids {
                    let (_, body) = get(&client, format!("http://{movies_at}/movies/{id}")).await;
                    let movie: serde_json::Value = serde_json::from_slice(&body).expect("movie");
                    movies.push(
                        serde_json::json!({"rating": movie["rating"], "title": movie["title"], "uri": movie["uri"]}),
                    );
                }
                result.insert(date, movies);
            }
            json(&result)
        }
    })
    .await;
    format!("http://{users_at}")
}

fn per(duration: Duration, count: usize) -> f64 {
    duration.as_secs_f64() * 1e6 / count as f64
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(bench());
    jobs(&runtime);
}

/// Section 4: executions per second with jobs 1 and 2, on the current-thread runtime and on a two-worker
/// multi-thread runtime, each with its own cinema; rounds interleave all four variants.
fn jobs(current: &tokio::runtime::Runtime) {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(10);
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let runtimes = [("current_thread", current), ("multi_thread, 2 workers", &multi)];
    let catalog = cloture::Catalog::load(&cloture::cli::workspace_root().join("cinema/faults.catalog"))
        .expect("cinema/faults.catalog parses (run from the workspace)");
    let config = Config { order: cloture::plan::Order::Breadth, catalog, ..Config::default() };
    let explorations_per_round = 50;
    let systems: Vec<(cinema::Cinema, UserBookingsTest)> = runtimes
        .iter()
        .map(|(_, runtime)| {
            runtime.block_on(async {
                let cinema = cinema::start(CinemaConfig::new(Edition::Hardened)).await.expect("cinema starts");
                let test = UserBookingsTest::new(&cinema.url(Service::Users), "chris_rivers", Oracle::Accepting);
                // Warm up connections and caches, with both settings.
                for jobs in [1, 2] {
                    let config = Config { jobs, ..config.clone() };
                    for _ in 0..10 {
                        cloture::explore(&config, || test.clone().run()).await.expect("exploration");
                    }
                }
                (cinema, test)
            })
        })
        .collect();
    let mut totals = [[(Duration::ZERO, 0usize); 2]; 2];
    for _ in 0..rounds {
        for (index, (_, runtime)) in runtimes.iter().enumerate() {
            let test = &systems[index].1;
            for (slot, jobs) in [1, 2].into_iter().enumerate() {
                let config = Config { jobs, ..config.clone() };
                let started = Instant::now();
                let executions = runtime.block_on(async {
                    let mut executions = 0;
                    for _ in 0..explorations_per_round {
                        let report = cloture::explore(&config, || test.clone().run()).await.expect("exploration");
                        executions += report.summary.executions;
                    }
                    executions
                });
                totals[index][slot].0 += started.elapsed();
                totals[index][slot].1 += executions;
            }
        }
    }
    println!("\n## concurrent executions (--jobs), cinema faulty test, hardened, chris_rivers, in-process");
    println!("(14 executions per exploration; the same executions whatever the jobs)");
    for (index, (name, _)) in runtimes.iter().enumerate() {
        let us: Vec<f64> = totals[index].iter().map(|(time, count)| per(*time, *count)).collect();
        for (slot, jobs) in [1, 2].into_iter().enumerate() {
            let label = format!("{name}, jobs {jobs}:");
            println!("{label:<42}{:>8.1} µs/execution  {:>8.0} executions/s", us[slot], 1e6 / us[slot]);
        }
        println!("{:<42}{:>8.2}x", format!("{name}, jobs 2 / jobs 1:"), us[0] / us[1]);
    }
    for ((cinema, _), (_, runtime)) in systems.into_iter().zip(runtimes) {
        runtime.block_on(cinema.shutdown()).expect("shutdown");
    }
}

async fn bench() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(10);
    let data = Data::embedded();
    let cinema = cinema::start(CinemaConfig::new(Edition::Hardened)).await.expect("cinema starts");
    let users = cinema.url(Service::Users);
    let bare_users = bare_cinema(&data).await;
    let bare = bare_client();
    let test = UserBookingsTest::new(&users, "chris_rivers", Oracle::Accepting);
    let catalog = cloture::Catalog::load(&cloture::cli::workspace_root().join("cinema/faults.catalog"))
        .expect("cinema/faults.catalog parses (run from the workspace)");
    let config = Config { order: cloture::plan::Order::Breadth, catalog: catalog.clone(), ..Config::default() };
    // Only the two fault-free reference runs: every execution makes the whole chain of requests.
    let fault_free = Config { catalog: catalog.clone().only(Vec::new()), ..config.clone() };

    // Warm up connections and caches.
    for _ in 0..200 {
        get(&bare, format!("{bare_users}/users/chris_rivers/bookings")).await;
    }
    cloture::explore(&config, || test.clone().run()).await.expect("exploration");

    // 1. Explorations vs bare chain, interleaved rounds.
    let explorations_per_round = 50;
    let (mut explore_time, mut explore_executions) = (Duration::ZERO, 0usize);
    let (mut free_time, mut free_executions) = (Duration::ZERO, 0usize);
    let (mut plain_time, mut plain_requests) = (Duration::ZERO, 0usize);
    let (mut bare_time, mut bare_requests) = (Duration::ZERO, 0usize);
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..explorations_per_round {
            let report = cloture::explore(&config, || test.clone().run()).await.expect("exploration");
            explore_executions += report.summary.executions;
        }
        explore_time += started.elapsed();

        let started = Instant::now();
        for _ in 0..explorations_per_round * 7 {
            let report = cloture::explore(&fault_free, || test.clone().run()).await.expect("exploration");
            free_executions += report.summary.executions;
        }
        free_time += started.elapsed();

        let started = Instant::now();
        for _ in 0..explorations_per_round * 14 {
            test.clone().run().await.expect("fault-free request passes");
        }
        plain_time += started.elapsed();
        plain_requests += explorations_per_round * 14;

        let started = Instant::now();
        for _ in 0..explorations_per_round * 14 {
            let (status, _) = get(&bare, format!("{bare_users}/users/chris_rivers/bookings")).await;
            assert_eq!(status, 200);
        }
        bare_time += started.elapsed();
        bare_requests += explorations_per_round * 14;
    }
    let explore_us = per(explore_time, explore_executions);
    let bare_us = per(bare_time, bare_requests);
    let plain_us = per(plain_time, plain_requests);
    let free_us = per(free_time, free_executions);
    println!("## executions per second (cinema faulty test, hardened, chris_rivers, in-process, current_thread)");
    println!("cloture exploration:        {:>8.1} µs/execution  {:>8.0} executions/s", explore_us, 1e6 / explore_us);
    println!("  (14 executions per exploration; faulted executions skip the calls a fault replaces)");
    println!("cloture, fault-free runs:   {:>8.1} µs/execution  {:>8.0} executions/s", free_us, 1e6 / free_us);
    println!("cinema, no exploration:     {:>8.1} µs/request    {:>8.0} requests/s", plain_us, 1e6 / plain_us);
    println!("bare hyper chain (floor):   {:>8.1} µs/request    {:>8.0} requests/s", bare_us, 1e6 / bare_us);
    println!("ratio exploration / floor:  {:>8.2}x", explore_us / bare_us);
    println!("ratio fault-free / floor:   {:>8.2}x", free_us / bare_us);
    println!("ratio cinema / floor:       {:>8.2}x", plain_us / bare_us);

    // 2. Added latency per instrumented call.
    let hello =
        bare_server(|_request: Request<Incoming>| async { Response::new(Full::new(Bytes::from_static(b"{}"))) }).await;
    let url = format!("http://{hello}/hello");
    let client = cloture::Client::new();
    let calls = 2000;
    let (mut instrumented, mut plain, mut raw) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let execution = cloture::context::Execution::start(Default::default());
        let context = execution.root_context();
        let client_ref = &client;
        let url_ref = &url;
        // Calls from a service context (not the test's), so they are registered and decided like any
        // inter-service call.
        let service_context = context.with_service("bench");
        let started = Instant::now();
        service_context
            .scope(async move {
                for _ in 0..calls {
                    client_ref.get(url_ref.as_str()).send().await.expect("call");
                }
            })
            .await;
        instrumented += started.elapsed();
        let started = Instant::now();
        for _ in 0..calls {
            client.get(url.as_str()).send().await.expect("call");
        }
        plain += started.elapsed();
        let started = Instant::now();
        for _ in 0..calls {
            get(&bare, url.clone()).await;
        }
        raw += started.elapsed();
    }
    let n = rounds * calls;
    println!("\n## one call to a bare server");
    println!("cloture client, in an execution: {:>7.2} µs/call", per(instrumented, n));
    println!("cloture client, no execution:    {:>7.2} µs/call", per(plain, n));
    println!("bare hyper-util client:          {:>7.2} µs/call", per(raw, n));
    println!("added by instrumentation:        {:>7.2} µs/call", per(instrumented, n) - per(raw, n));

    // 3. Executions with and without dynamic reduction (counts, not times).
    let dwight = UserBookingsTest::new(&users, "dwight_schrute", Oracle::Accepting);
    println!("\n## executions needed, hardened, dwight_schrute (1 bookings call + 4 movie calls), 6 faults per call");
    println!("(reference runs included; bfs order)");
    for max_faults in [1, 2, 3] {
        let mut counts = Vec::new();
        for reduce in [true, false] {
            let config = Config { max_faults, reduce, ..config.clone() };
            let report = cloture::explore(&config, || dwight.clone().run()).await.expect("exploration");
            counts.push((report.summary.executions, report.summary.pruned));
        }
        println!(
            "max_faults {max_faults}: with reduction {:>5} executions ({} pruned), without {:>5} executions",
            counts[0].0, counts[0].1, counts[1].0
        );
    }
    cinema.shutdown().await.expect("shutdown");
}
