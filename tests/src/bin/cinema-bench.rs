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
//! 5. In-process against separate processes against proxy mode: the same exploration with the services as
//!    four `cinema` processes (instrumented, reporting to the coordinator of `System::start`), and as four
//!    uninstrumented ones behind proxies; the test closure runs in this process in all three.
//! 6. The coordinator's cost per call: raw requests to a `Coordinator` (report, current, health).
//!
//! Sections 1–3, 5 and 6 run on one current-thread runtime, so no cross-core wake-ups blur the comparison; rounds
//! of each variant are interleaved so that noise on a shared machine hits all of them alike.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cinema::{CinemaConfig, Data, Edition, Service};
use cinema_tests::scenario::{Oracle, UserBookingsTest};
use cloture::context::Execution;
use cloture::coordinator::Coordinator;
use cloture::external::{ProxySpec, ServiceSpec, ServicesFile, System};
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
    cinema_tests::init_logging();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(bench());
    jobs(&runtime);
    runtime.block_on(processes());
    runtime.block_on(coordinator_cost());
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
    println!("(16 executions per exploration; the same executions whatever the jobs)");
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
        for _ in 0..explorations_per_round * 16 {
            test.clone().run().await.expect("fault-free request passes");
        }
        plain_time += started.elapsed();
        plain_requests += explorations_per_round * 14;

        let started = Instant::now();
        for _ in 0..explorations_per_round * 16 {
            let (status, _) = get(&bare, format!("{bare_users}/users/chris_rivers/bookings")).await;
            assert_eq!(status, 200);
        }
        bare_time += started.elapsed();
        bare_requests += explorations_per_round * 16;
    }
    let explore_us = per(explore_time, explore_executions);
    let bare_us = per(bare_time, bare_requests);
    let plain_us = per(plain_time, plain_requests);
    let free_us = per(free_time, free_executions);
    println!("## executions per second (cinema faulty test, hardened, chris_rivers, in-process, current_thread)");
    println!("cloture exploration:        {:>8.1} µs/execution  {:>8.0} executions/s", explore_us, 1e6 / explore_us);
    println!("  (16 executions per exploration; faulted executions skip the calls a fault replaces)");
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
    println!("\n## executions needed, hardened, dwight_schrute (1 bookings call + 4 movie calls), 7 faults per call");
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

/// Free loopback ports (released before use: another program could take one in between).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("address").port()).collect()
}

/// The `cinema` binary next to this one (`cargo build --release -p cinema`).
fn cinema_binary() -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.parent()?.join("cinema");
    path.is_file().then_some(path)
}

fn service(name: &str, command: Option<String>, port: u16) -> ServiceSpec {
    ServiceSpec { name: name.into(), command, port, ready: "/health-check".into(), env: BTreeMap::new() }
}

/// The four cinema services as processes started by `System::start`, users in `edition`; and users' port.
fn cinema_processes(cinema: &Path, edition: &str) -> (ServicesFile, u16) {
    let cinema = format!("'{}'", cinema.display());
    let [users, movies, showtimes, bookings] = free_ports(4)[..] else { unreachable!("four ports") };
    let users_command = format!(
        "{cinema} users --port {users} --edition {edition} --bookings-url http://127.0.0.1:{bookings} \
         --movies-url http://127.0.0.1:{movies}"
    );
    let services = vec![
        service("movies", Some(format!("{cinema} movies --port {movies}")), movies),
        service("showtimes", Some(format!("{cinema} showtimes --port {showtimes}")), showtimes),
        service("bookings", Some(format!("{cinema} bookings --port {bookings}")), bookings),
        service("users", Some(users_command), users),
    ];
    (ServicesFile { services, proxies: Vec::new() }, users)
}

/// Users' time limit per call in proxy mode: an injected `timeout` at a proxy is a real wait for it.
const PROXY_USERS_TIMEOUT_MS: u64 = 50;

/// The four cinema services as uninstrumented processes (no coordinator in their environment), users calling
/// bookings and movies through proxies; the services file attaches to them and puts the proxies in: users →
/// bookings, users → movies, and the entry proxy test → users. Returns the children, the file and the entry
/// proxy's port.
fn uninstrumented_cinema(cinema: &Path, logs: &Path) -> (Vec<tokio::process::Child>, ServicesFile, u16) {
    let [users, movies, showtimes, bookings, to_bookings, to_movies, entry] = free_ports(7)[..] else {
        unreachable!("seven ports")
    };
    let timeout = PROXY_USERS_TIMEOUT_MS.to_string();
    let commands: [(&str, u16, Vec<String>); 4] = [
        ("movies", movies, vec![]),
        ("showtimes", showtimes, vec![]),
        ("bookings", bookings, vec![]),
        (
            "users",
            users,
            ["--edition", "hardened", "--timeout-ms", &timeout]
                .into_iter()
                .map(String::from)
                .chain(["--bookings-url".into(), format!("http://127.0.0.1:{to_bookings}")])
                .chain(["--movies-url".into(), format!("http://127.0.0.1:{to_movies}")])
                .collect(),
        ),
    ];
    std::fs::create_dir_all(logs).expect("log directory");
    let children = commands
        .into_iter()
        .map(|(name, port, extra)| {
            let log = std::fs::File::create(logs.join(format!("{name}.log"))).expect("log file");
            tokio::process::Command::new(cinema)
                .arg(name)
                .args(["--port", &port.to_string()])
                .args(extra)
                .env_remove(cloture::coordinator::COORDINATOR_ENV)
                .env_remove("CLOTURE_SERVICES")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("cinema starts")
        })
        .collect();
    let proxy = |from: &str, to: &str, listen: u16, upstream: u16| ProxySpec {
        from: from.into(),
        to: to.into(),
        listen,
        upstream: format!("127.0.0.1:{upstream}"),
        fault_body: Default::default(),
        routes: Vec::new(),
    };
    let file = ServicesFile {
        services: vec![
            service("movies", None, movies),
            service("showtimes", None, showtimes),
            service("bookings", None, bookings),
            service("users", None, users),
        ],
        proxies: vec![
            proxy("users", "bookings", to_bookings, bookings),
            proxy("users", "movies", to_movies, movies),
            proxy("test", "users", entry, users),
        ],
    };
    (children, file, entry)
}

/// Per exploration: executions, failed ones, executions with faults, injected timeouts.
fn counts(report: &cloture::Report) -> [usize; 4] {
    let faulted = report.executions.iter().filter(|e| !e.faults.is_empty()).count();
    let timeouts =
        report.executions.iter().flat_map(|e| &e.faults).filter(|f| f.fault == cloture::Fault::Timeout).count();
    [report.summary.executions, report.summary.failed, faulted, timeouts]
}

/// Section 5: in-process against separate processes against proxy mode, rounds interleaved.
async fn processes() {
    println!("\n## in-process vs separate processes vs proxy mode");
    let Some(cinema_bin) = cinema_binary() else {
        println!("skipped: no `cinema` binary next to this one; build it: cargo build --release -p cinema");
        return;
    };
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let catalog = cloture::Catalog::load(&cloture::cli::workspace_root().join("cinema/faults.catalog"))
        .expect("cinema/faults.catalog parses (run from the workspace)");
    let config = Config { order: cloture::plan::Order::Breadth, catalog, ..Config::default() };
    let logs = std::env::temp_dir().join(format!("cloture-bench-{}", std::process::id()));
    let start = |file: ServicesFile, dir: &'static str| {
        let logs = logs.join(dir);
        async move { System::start(&file, &logs, Default::default()).await.expect("the cinema starts") }
    };

    // Sanity check, once: the recitation edition in processes, explored with the in-process test closure.
    let (cinema_file, users) = cinema_processes(&cinema_bin, "recitation");
    let mut system = start(cinema_file, "recitation").await;
    let test = UserBookingsTest::new(&format!("http://127.0.0.1:{users}"), "chris_rivers", Oracle::Accepting);
    let report = cloture::explore(&config, || test.clone().run()).await.expect("exploration");
    system.stop().await;
    assert_eq!(report.vulnerabilities.len(), 3, "recitation in processes: {}", report.terminal_summary());

    // 1. In-process.
    let in_process = cinema::start(CinemaConfig::new(Edition::Hardened)).await.expect("cinema starts");
    let local_test = UserBookingsTest::new(&in_process.url(Service::Users), "chris_rivers", Oracle::Accepting);
    // 2. Four instrumented processes; the test's request carries the execution, parent and plan headers.
    let (cinema_file, users) = cinema_processes(&cinema_bin, "hardened");
    let mut separate = start(cinema_file, "hardened").await;
    let separate_test = UserBookingsTest::new(&format!("http://127.0.0.1:{users}"), "chris_rivers", Oracle::Accepting);
    // 3. Four uninstrumented processes behind proxies. The proxies take their faults from the coordinator's
    // current execution, which `System::in_execution` sets around the in-process test.
    let (mut children, proxy_file, entry) = uninstrumented_cinema(&cinema_bin, &logs.join("proxy"));
    let mut proxied = start(proxy_file, "proxy-system").await;
    let entry_url = format!("http://127.0.0.1:{entry}");
    cloture::register_service("users", &format!("127.0.0.1:{entry}"));
    let proxy_test = UserBookingsTest::new(&entry_url, "chris_rivers", Oracle::Accepting);
    let run_proxied = || proxied.in_execution(proxy_test.clone().run());

    // Warm up connections and caches.
    for _ in 0..3 {
        cloture::explore(&config, || local_test.clone().run()).await.expect("exploration");
        cloture::explore(&config, || separate_test.clone().run()).await.expect("exploration");
        cloture::explore(&config, run_proxied).await.expect("exploration");
    }

    let per_round = [100, 20, 4];
    let mut time = [Duration::ZERO; 3];
    let mut totals = [[0usize; 4]; 3];
    let mut proxy_failures = std::collections::BTreeSet::new();
    for _ in 0..rounds {
        for (setup, explorations) in per_round.into_iter().enumerate() {
            let started = Instant::now();
            for _ in 0..explorations {
                let report = match setup {
                    0 => cloture::explore(&config, || local_test.clone().run()).await,
                    1 => cloture::explore(&config, || separate_test.clone().run()).await,
                    _ => cloture::explore(&config, run_proxied).await,
                }
                .expect("exploration");
                let counted = counts(&report);
                if setup < 2 {
                    assert!(
                        counted[1] == 0 && counted[2] > 0,
                        "hardened, setup {setup}: {}",
                        report.terminal_summary()
                    );
                }
                let failing = report.executions.iter().filter(|e| e.outcome == cloture::report::Outcome::Fail);
                proxy_failures.extend(failing.flat_map(|e| &e.faults).map(|f| format!("{} → {}", f.fault, f.to)));
                for (total, count) in totals[setup].iter_mut().zip(counted) {
                    *total += count;
                }
            }
            time[setup] += started.elapsed();
        }
    }
    assert!(totals[2][2] > 0, "proxy mode injected no fault");
    for (what, failure) in [("separate processes", separate.failure()), ("proxy mode", proxied.failure())] {
        assert!(failure.is_none(), "{what}: {failure:?}");
    }

    let us: Vec<f64> = (0..3).map(|setup| per(time[setup], totals[setup][0])).collect();
    let explorations: Vec<usize> = per_round.iter().map(|n| n * rounds).collect();
    let timeout_us = (totals[2][3] * PROXY_USERS_TIMEOUT_MS as usize) as f64 * 1e3 / totals[2][0] as f64;
    let core_us = us[2] - timeout_us;
    println!("(cinema faulty test, hardened, chris_rivers, bfs; the test closure in this process, current_thread;");
    println!(" the services in-process, as 4 `cinema` processes reporting to the coordinator, or as 4 uninstrumented");
    println!(" `cinema` processes behind 3 proxies)");
    let labels = ["in-process", "separate processes", "proxy mode"];
    for (setup, label) in labels.iter().enumerate() {
        let [executions, failed, faulted, _] = totals[setup];
        let n = explorations[setup] as f64;
        println!(
            "{:<42}{:>8.1} µs/execution  {:>8.0} executions/s  ({:.1} executions, {:.1} faulted, {:.1} failed per exploration)",
            format!("{label}:"),
            us[setup],
            1e6 / us[setup],
            executions as f64 / n,
            faulted as f64 / n,
            failed as f64 / n,
        );
    }
    println!("{:<42}{:>8.2}x", "ratio separate processes / in-process:", us[1] / us[0]);
    println!("{:<42}{:>8.2}x", "ratio proxy mode / in-process:", us[2] / us[0]);
    println!("proxy mode, of which:");

    println!(
        "{:<42}{:>8.1} µs/execution  (users waits --timeout-ms {PROXY_USERS_TIMEOUT_MS} per injected timeout)",
        "  injected timeouts, ≈:", timeout_us
    );
    println!(
        "{:<42}{:>8.1} µs/execution  {:>8.0} executions/s  {:>6.2}x in-process",
        "proxy mode without the timeouts, ≈:",
        core_us,
        1e6 / core_us,
        core_us / us[0]
    );
    if !proxy_failures.is_empty() {
        let faults: Vec<String> = proxy_failures.into_iter().collect();
        println!("proxy mode fails with: {} (users answers 500)", faults.join(", "));
    }
    println!("sanity: recitation in processes: {} vulnerabilities", report.vulnerabilities.len());

    separate.stop().await;
    proxied.stop().await;
    for child in &mut children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    in_process.shutdown().await.expect("shutdown");
    std::fs::remove_dir_all(&logs).ok();
}

async fn post(client: &Bare, url: String, body: Bytes) -> u16 {
    let request = Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("a valid request");
    let response = client.request(request).await.expect("bare request");
    let status = response.status().as_u16();
    response.into_body().collect().await.expect("bare body");
    status
}

/// Section 6: raw requests to a coordinator, from a pooled hyper client on the same runtime.
async fn coordinator_cost() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(10);
    let coordinator = Coordinator::bind(0).await.expect("the coordinator starts");
    let base = coordinator.url();
    let client = bare_client();
    let health = format!("{base}/v1/health");
    let current = format!("{base}/v1/current?service=users&method=GET&path=%2Fusers%2Fchris_rivers%2Fbookings");
    for _ in 0..200 {
        get(&client, health.clone()).await;
    }
    let requests = 1000;
    let mut time = [Duration::ZERO; 3];
    for _ in 0..rounds {
        let execution = Execution::start(HashMap::new());
        coordinator.set_current(Some(Arc::clone(&execution)));

        let started = Instant::now();
        for _ in 0..requests {
            assert_eq!(get(&client, health.clone()).await.0, 200);
        }
        time[0] += started.elapsed();

        let started = Instant::now();
        let mut parent = String::new();
        for _ in 0..requests {
            let (status, body) = get(&client, current.clone()).await;
            assert_eq!(status, 200);
            let answer: serde_json::Value = serde_json::from_slice(&body).expect("json");
            parent = answer["parent"].as_str().expect("a parent key").to_string();
        }
        time[1] += started.elapsed();

        // What users sends for one request: its parent, its status and its one call to bookings.
        let report = serde_json::json!({
            "service": "users", "parent": parent, "status": 200,
            "calls": [{ "key": "00000000000000aa", "parent": parent, "from": "users", "to": "bookings",
                "method": "GET", "path": "/bookings/chris_rivers", "site": "cinema/src/users/hardened.rs:23:47",
                "fault": null, "outcome": { "status": 200 } }],
        });
        let body = Bytes::from(report.to_string());
        let url = format!("{base}/v1/executions/{}/report", execution.id());
        let started = Instant::now();
        for _ in 0..requests {
            assert_eq!(post(&client, url.clone(), body.clone()).await, 204);
        }
        time[2] += started.elapsed();
        coordinator.set_current(None);
    }
    let n = rounds * requests;
    let us: Vec<f64> = time.iter().map(|t| per(*t, n)).collect();
    println!("\n## the coordinator's cost per call (raw requests to Coordinator::bind(0), pooled hyper client,");
    println!("   client and coordinator on one current_thread runtime)");
    println!("GET /v1/health (the HTTP round trip):       {:>7.2} µs/request", us[0]);
    println!(
        "GET /v1/current, execution current:         {:>7.2} µs/request  (+{:.2} over health)",
        us[1],
        us[1] - us[0]
    );
    println!(
        "POST /v1/executions/{{id}}/report, 1 call:    {:>7.2} µs/request  (+{:.2} over health)",
        us[2],
        us[2] - us[0]
    );
    coordinator.shutdown().await;
}
