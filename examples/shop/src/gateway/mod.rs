//! The gateway: the shop's front door. `POST /checkout` prices the item at the catalog (HTTP), reserves
//! it at the inventory (gRPC) and charges the user at payments (HTTP). The clients it calls them with are
//! built here; the handler is in `checkout.rs`.

mod checkout;

use std::sync::Arc;

use axum::routing::post;
use axum::Router;
use cloture::tower::{ClientService, Layer};
use reqwest_middleware::ClientWithMiddleware;
use tonic::transport::Channel;

use crate::inventory::proto::inventory_client::InventoryClient;

pub use checkout::{Order, OrderRequest};

/// Where the gateway's dependencies are, as base URLs (`http://127.0.0.1:5101`).
#[derive(Clone, Debug)]
pub struct Upstreams {
    pub catalog: String,
    pub inventory: String,
    pub payments: String,
}

/// What the handlers share: the clients and where to call.
#[derive(Clone, Debug)]
pub struct Gateway {
    http: ClientWithMiddleware,
    inventory: InventoryClient<ClientService<Channel>>,
    upstreams: Upstreams,
}

impl Gateway {
    /// The gateway's clients: reqwest for the HTTP services, a tonic channel for the inventory.
    pub fn new(upstreams: Upstreams) -> anyhow::Result<Gateway> {
        let http =
            reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(cloture::reqwest::Middleware).build();
        let channel = Channel::from_shared(upstreams.inventory.clone())?.connect_lazy();
        // The origin puts the inventory's address into each request, where the layer names the callee.
        let origin = upstreams.inventory.parse()?;
        let inventory = InventoryClient::with_origin(cloture::tower::ClientLayer::new().layer(channel), origin);
        Ok(Gateway { http, inventory, upstreams })
    }
}

/// The gateway's routes.
pub fn routes(gateway: Gateway) -> Router {
    Router::new().route("/checkout", post(checkout::checkout)).with_state(Arc::new(gateway))
}
