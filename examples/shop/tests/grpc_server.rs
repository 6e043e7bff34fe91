//! The server layer on a tonic server: a panic in a gRPC handler is a crash with its location, answered
//! `INTERNAL`; an `INTERNAL` the handler answers from an error it did not handle is a crash too.

use std::collections::HashMap;

use cloture::context::Execution;
use cloture::tower::{ClientLayer, Layer};
use shop::inventory::proto::inventory_client::InventoryClient;
use shop::inventory::proto::inventory_server::{Inventory, InventoryServer};
use shop::inventory::proto::{Reservation, ReserveRequest};
use tonic::{Code, Request, Response, Status};

/// An inventory that panics on one item and fails without handling it on another.
struct Broken;

#[tonic::async_trait]
impl Inventory for Broken {
    async fn reserve(&self, request: Request<ReserveRequest>) -> Result<Response<Reservation>, Status> {
        match request.into_inner().item.as_str() {
            "kettle" => panic!("no kettles in the stock table"),
            _ => Err(Status::internal("stock database unreachable")),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_and_an_internal_answer_of_a_grpc_handler_are_crashes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let layer = cloture::ServerLayer::new("broken-inventory").listening_on(address);
    let server = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(InventoryServer::new(Broken))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    let url = format!("http://{address}");
    let channel = tonic::transport::Channel::from_shared(url.clone()).unwrap().connect_lazy();
    let client = InventoryClient::with_origin(ClientLayer::new().layer(channel), url.parse().unwrap());

    let execution = Execution::start(HashMap::new());
    let context = execution.root_context().with_service("gateway");
    let (kettle, mug) = context
        .scope(async move {
            let kettle = ReserveRequest { item: "kettle".into(), quantity: 1 };
            let mug = ReserveRequest { item: "mug".into(), quantity: 1 };
            (client.clone().reserve(kettle).await, client.clone().reserve(mug).await)
        })
        .await;
    assert_eq!(kettle.unwrap_err().code(), Code::Internal);
    assert_eq!(mug.unwrap_err().code(), Code::Internal);

    let trace = execution.trace();
    let source = include_str!("grpc_server.rs");
    let line = source.lines().position(|line| line.contains("panic!(\"no kettles")).unwrap() as u32 + 1;
    assert_eq!(trace.crashes.len(), 2, "{:?}", trace.crashes);
    let panic = &trace.crashes[0];
    assert_eq!((panic.service.as_str(), panic.message.as_str()), ("broken-inventory", "no kettles in the stock table"));
    let location = panic.location.as_ref().expect("a panic's location");
    assert_eq!((location.file.as_str(), location.line), ("examples/shop/tests/grpc_server.rs", line));
    assert!(trace.crashes[1].message.contains("INTERNAL: stock database unreachable"), "{:?}", trace.crashes);
    // Both calls are recorded as gRPC calls that ended with INTERNAL.
    let outcomes: Vec<_> = trace.calls.iter().map(|call| (call.method.as_str(), call.outcome.clone())).collect();
    assert_eq!(
        outcomes,
        [("GRPC", cloture::trace::CallOutcome::Grpc(13)), ("GRPC", cloture::trace::CallOutcome::Grpc(13))]
    );
}
