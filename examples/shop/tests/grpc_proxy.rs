//! Proxy mode with tonic on both ends: the shop's inventory served by a plain tonic server (no cloture
//! layer: a gRPC service cloture cannot instrument), a cloture proxy `gateway` → `inventory` in front of
//! it, and the shop's generated client calling the proxy over a plain tonic channel. The proxy records
//! each call as a gRPC call named by its route, answers `grpc:CODE` faults trailers-only, resets the
//! stream for `connect`, and records a non-OK status the inventory answers as the call's outcome.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloture::call::{CallKey, CallSite};
use cloture::context::Execution;
use cloture::external::{ServicesFile, System};
use cloture::proxy::{Proxy, ProxySpec};
use cloture::report::Outcome;
use cloture::trace::{CallOutcome, Transport};
use cloture::{Config, Fault};
use shop::inventory::proto::inventory_client::InventoryClient;
use shop::inventory::proto::inventory_server::{Inventory, InventoryServer};
use shop::inventory::proto::{Reservation, ReserveRequest};
use shop::inventory::Stock;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

const RESERVE: &str = "/shop.Inventory/Reserve";

/// The shop's stock, counting the calls that reach it.
struct Counted {
    stock: Stock,
    calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Inventory for Counted {
    async fn reserve(&self, request: Request<ReserveRequest>) -> Result<Response<Reservation>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.stock.reserve(request).await
    }
}

/// Serves the inventory with tonic alone on a free loopback port; the count of calls that reached it.
async fn inventory() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let address = listener.local_addr().expect("an address");
    let calls = Arc::new(AtomicUsize::new(0));
    let service = InventoryServer::new(Counted { stock: Stock::default(), calls: Arc::clone(&calls) });
    let server = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    (address, calls)
}

fn spec(listen: u16, upstream: SocketAddr) -> ProxySpec {
    ProxySpec {
        from: "gateway".into(),
        to: "inventory".into(),
        listen,
        upstream: upstream.to_string(),
        fault_body: Default::default(),
        routes: Vec::new(),
    }
}

/// A plain tonic client of `address` (no cloture layer), each call bounded by `timeout`.
fn client(address: SocketAddr, timeout: Duration) -> InventoryClient<Channel> {
    let endpoint = Channel::from_shared(format!("http://{address}")).expect("a valid URL").timeout(timeout);
    InventoryClient::new(endpoint.connect_lazy())
}

async fn reserve(client: &mut InventoryClient<Channel>, item: &str, quantity: u32) -> Result<Reservation, Status> {
    let request = ReserveRequest { item: item.into(), quantity };
    let answer = tokio::time::timeout(Duration::from_secs(10), client.reserve(request)).await;
    answer.expect("an answer in time").map(Response::into_inner)
}

/// The inventory behind a proxy whose current execution the test chooses, and a client of the proxy.
struct Setup {
    current: Arc<Mutex<Option<Arc<Execution>>>>,
    proxy: Proxy,
    calls: Arc<AtomicUsize>,
    client: InventoryClient<Channel>,
}

impl Setup {
    async fn start() -> Setup {
        let (upstream, calls) = inventory().await;
        let current = Arc::new(Mutex::new(None));
        let proxy = Proxy::start(&spec(0, upstream), Arc::clone(&current)).await.expect("the proxy starts");
        let client = client(proxy.address(), Duration::from_secs(10));
        Setup { current, proxy, calls, client }
    }

    /// Makes a new execution with `plan` the proxy's current one.
    fn execute(&self, plan: HashMap<CallKey, Fault>) -> Arc<Execution> {
        let execution = Execution::start(plan);
        *self.current.lock().unwrap() = Some(Arc::clone(&execution));
        execution
    }

    /// The key of the first reservation of an execution, learnt from a fault-free one.
    async fn first_key(&mut self) -> CallKey {
        let reference = self.execute(HashMap::new());
        reserve(&mut self.client, "kettle", 1).await.expect("a reservation without faults");
        reference.trace().calls[0].key
    }

    fn upstream_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_grpc_call_through_the_proxy_gets_its_answer_and_is_recorded_as_a_named_grpc_call() {
    let mut setup = Setup::start().await;
    let execution = setup.execute(HashMap::new());
    let reservation = reserve(&mut setup.client, "kettle", 2).await.expect("a reservation");
    assert_eq!((reservation.id.as_str(), reservation.left), ("res-kettle-999998", 999_998));
    assert_eq!(setup.upstream_calls(), 1);
    let trace = execution.trace();
    assert_eq!(trace.calls.len(), 1, "{:?}", trace.calls);
    let call = &trace.calls[0];
    assert_eq!((call.from.as_str(), call.to.as_str()), ("gateway", "inventory"));
    assert_eq!((call.method.as_str(), call.path.as_str()), ("GRPC", RESERVE));
    // A gRPC OK is its HTTP answer: status 200, no non-OK grpc-status in its head or its trailers.
    assert_eq!((call.fault, &call.outcome), (None, &CallOutcome::Status(200)));
    assert_eq!(call.site, CallSite::named("gateway", "inventory", "GRPC", RESERVE));
    assert_eq!(call.site.to_string(), "gateway → inventory GRPC /shop.Inventory/Reserve");
    setup.proxy.stop().await;
}

#[tokio::test]
async fn an_injected_grpc_code_reaches_the_tonic_client_and_not_the_inventory() {
    let mut setup = Setup::start().await;
    let key = setup.first_key().await;
    let execution = setup.execute(HashMap::from([(key, Fault::Grpc(14))]));
    let status = reserve(&mut setup.client, "kettle", 1).await.expect_err("the injected status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "UNAVAILABLE (injected)");
    assert_eq!(setup.upstream_calls(), 1, "only the fault-free run reached the inventory");
    let trace = execution.trace();
    assert_eq!((trace.calls[0].fault, &trace.calls[0].outcome), (Some(Fault::Grpc(14)), &CallOutcome::Grpc(14)));
    setup.proxy.stop().await;
}

#[tokio::test]
async fn an_injected_connect_fails_one_tonic_call_and_the_next_on_the_channel_passes() {
    let mut setup = Setup::start().await;
    let key = setup.first_key().await;
    let execution = setup.execute(HashMap::from([(key, Fault::Connect)]));
    // The proxy resets the call's stream (REFUSED_STREAM): tonic reports UNAVAILABLE, as for a refused
    // connection.
    let status = reserve(&mut setup.client, "kettle", 1).await.expect_err("no answer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(setup.upstream_calls(), 1);
    // The channel, its connection only rid of one stream, carries the next call.
    let reservation = reserve(&mut setup.client, "kettle", 1).await.expect("the next call passes");
    assert_eq!(reservation.left, 999_998);
    assert_eq!(setup.upstream_calls(), 2);
    let trace = execution.trace();
    let outcomes: Vec<_> = trace.calls.iter().map(|call| (call.fault, call.outcome.clone())).collect();
    assert_eq!(
        outcomes,
        [(Some(Fault::Connect), CallOutcome::Transport(Transport::Connect)), (None, CallOutcome::Status(200))]
    );
    setup.proxy.stop().await;
}

#[tokio::test]
async fn a_non_ok_status_the_inventory_answers_is_the_recorded_outcome_of_the_call() {
    let mut setup = Setup::start().await;
    let execution = setup.execute(HashMap::new());
    let unknown = reserve(&mut setup.client, "anvil", 1).await.expect_err("no anvils");
    assert_eq!((unknown.code(), unknown.message()), (Code::NotFound, "no item anvil"));
    let too_many = reserve(&mut setup.client, "mug", 2_000_000).await.expect_err("not that many mugs");
    assert_eq!(too_many.code(), Code::ResourceExhausted, "{too_many:?}");
    assert_eq!(setup.upstream_calls(), 2, "both were passed on");
    let trace = execution.trace();
    let outcomes: Vec<_> = trace.calls.iter().map(|call| (call.method.as_str(), call.outcome.clone())).collect();
    assert_eq!(outcomes, [("GRPC", CallOutcome::Grpc(5)), ("GRPC", CallOutcome::Grpc(8))]);
    setup.proxy.stop().await;
}

#[tokio::test]
async fn a_held_call_the_tonic_client_gives_up_on_is_recorded_as_timed_out() {
    let mut setup = Setup::start().await;
    let key = setup.first_key().await;
    let execution = setup.execute(HashMap::from([(key, Fault::Slow)]));
    let mut impatient = client(setup.proxy.address(), Duration::from_millis(300));
    let status = reserve(&mut impatient, "kettle", 1).await.expect_err("no answer in time");
    // tonic's own time limit (`Endpoint::timeout`) ends the call as CANCELLED.
    assert_eq!((status.code(), status.message()), (Code::Cancelled, "Timeout expired"));
    // The client reset the stream while the execution went on: the call timed out at the caller, it does
    // not hang.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while execution.trace().calls[0].outcome != CallOutcome::Transport(Transport::Timeout) {
        assert!(tokio::time::Instant::now() < deadline, "recorded as {:?}", execution.trace().calls[0].outcome);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(setup.upstream_calls(), 1);
    setup.proxy.stop().await;
}

/// A free loopback port, for the proxy of a services file (ports are fixed there).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

#[tokio::test(flavor = "current_thread")]
async fn an_exploration_tries_the_grpc_faults_on_a_call_through_the_proxy() {
    let (upstream, _) = inventory().await;
    let logs = std::env::temp_dir().join(format!("cloture-grpc-proxy-{}", std::process::id()));
    // A port taken between choosing and binding it means another port.
    let mut attempt = 0;
    let (mut system, port) = loop {
        attempt += 1;
        let port = free_port();
        let file = ServicesFile { services: Vec::new(), proxies: vec![spec(port, upstream)] };
        match System::start(&file, &logs, Default::default()).await {
            Ok(system) => break (system, port),
            Err(error) if attempt < 5 => eprintln!("retrying on another port: {error}"),
            Err(error) => panic!("the proxy did not start: {error}"),
        }
    };
    // The test is a caller that copes with an unavailable inventory and with its own time limit (a
    // second: tonic ends the call as CANCELLED), not with an inventory that fails otherwise.
    let client = client(SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1));
    let system_ref = &system;
    let test = || {
        let mut client = client.clone();
        system_ref.in_execution(async move {
            match reserve(&mut client, "teapot", 1).await {
                Ok(reservation) if reservation.id.starts_with("res-teapot-") => Ok(()),
                Ok(reservation) => Err(format!("an unexpected reservation: {reservation:?}")),
                Err(status) if matches!(status.code(), Code::Unavailable | Code::Cancelled) => Ok(()),
                Err(status) => Err(status.to_string()),
            }
        })
    };
    let config = Config { harness: Some(system.health()), ..Config::default() };
    let report = cloture::explore(&config, test).await;
    system.stop().await;
    std::fs::remove_dir_all(&logs).ok();
    let report = report.expect("the exploration completes");
    let summary = report.terminal_summary();
    let tried: Vec<_> = report.executions.iter().flat_map(|execution| &execution.faults).collect();
    assert!(
        tried.iter().all(|fault| fault.method == "GRPC" && fault.path == RESERVE && fault.site.is_named()),
        "{summary}"
    );
    // A proxy does not know the caller's time limit: no `timeout`, `slow` stands for it; gRPC codes, no
    // HTTP statuses.
    let faults: BTreeSet<String> = tried.iter().map(|fault| fault.fault.to_string()).collect();
    let expected = ["connect", "grpc:DEADLINE_EXCEEDED", "grpc:INTERNAL", "grpc:UNAVAILABLE", "slow"];
    assert_eq!(faults, expected.into_iter().map(String::from).collect(), "{summary}");
    let failing: Vec<_> = report.executions.iter().filter(|execution| execution.outcome == Outcome::Fail).collect();
    // `connect` (UNAVAILABLE), `slow` (its own time limit) and `grpc:UNAVAILABLE` are coped with.
    let failed: BTreeSet<String> =
        failing.iter().flat_map(|execution| &execution.faults).map(|fault| fault.fault.to_string()).collect();
    assert_eq!(failing.len(), 2, "{summary}");
    assert_eq!(failed, ["grpc:DEADLINE_EXCEEDED".to_string(), "grpc:INTERNAL".to_string()].into(), "{summary}");
    assert_eq!(report.vulnerabilities.len(), 1, "{summary}");
}
