//! The shop: a second example system, written the way Rust services are written today — axum handlers,
//! reqwest between HTTP services, one tonic gRPC hop, tracing. Four services: the `gateway` (`POST
//! /checkout`) calls the `catalog` (HTTP), the `inventory` (gRPC) and `payments` (HTTP).
//!
//! The handlers do not know cloture: only where routers and clients are built (here and in
//! `gateway/mod.rs`) are its layers added. [`start`] runs the four services in-process on free loopback
//! ports, as `shop-faulty` and the tests do.

pub mod catalog;
pub mod gateway;
pub mod inventory;
pub mod payments;
pub mod scenario;

use std::net::SocketAddr;

use axum::Router;
use cloture::ServerLayer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The shop's services, running.
pub struct Shop {
    pub gateway: SocketAddr,
    pub catalog: SocketAddr,
    pub inventory: SocketAddr,
    pub payments: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Shop {
    /// The gateway's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.gateway)
    }

    /// Stops every service and waits for them.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}

/// Starts the four services on free ports of 127.0.0.1.
pub async fn start() -> anyhow::Result<Shop> {
    let (stop, stopped) = watch::channel(false);
    let bind = || TcpListener::bind("127.0.0.1:0");
    let (catalog, inventory, payments, gateway) = (bind().await?, bind().await?, bind().await?, bind().await?);
    let addresses = [catalog.local_addr()?, inventory.local_addr()?, payments.local_addr()?, gateway.local_addr()?];
    let upstreams = gateway::Upstreams {
        catalog: format!("http://{}", addresses[0]),
        inventory: format!("http://{}", addresses[1]),
        payments: format!("http://{}", addresses[2]),
    };
    let tasks = vec![
        tokio::spawn(serve_http("catalog", catalog, catalog::routes(), stopped.clone())),
        tokio::spawn(serve_grpc(inventory, stopped.clone())),
        tokio::spawn(serve_http("payments", payments, payments::routes(), stopped.clone())),
        tokio::spawn(serve_http("gateway", gateway, gateway::routes(gateway::Gateway::new(upstreams)?), stopped)),
    ];
    let [catalog, inventory, payments, gateway] = addresses;
    Ok(Shop { gateway, catalog, inventory, payments, stop, tasks })
}

/// Serves an axum router until the shop stops.
async fn serve_http(
    name: &str,
    listener: TcpListener,
    routes: Router,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = routes.layer(ServerLayer::new(name).listening_on(listener.local_addr()?));
    axum::serve(listener, app).with_graceful_shutdown(until_stopped(stopped)).await
}

/// Serves the inventory's gRPC service until the shop stops.
async fn serve_grpc(listener: TcpListener, stopped: watch::Receiver<bool>) -> std::io::Result<()> {
    let layer = ServerLayer::new("inventory").listening_on(listener.local_addr()?);
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(inventory::InventoryServer::new(inventory::Stock::default()))
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), until_stopped(stopped))
        .await
        .map_err(std::io::Error::other)
}

async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stopped| *stopped).await;
}
