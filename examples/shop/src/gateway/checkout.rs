//! `POST /checkout`: price, reserve, charge.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::Gateway;
use crate::catalog::Item;
use crate::inventory::proto::ReserveRequest;
use crate::payments::{Charge, ChargeRequest};

/// What a user orders.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrderRequest {
    pub user: String,
    pub item: String,
    pub quantity: u32,
}

/// An order placed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub item: String,
    pub quantity: u32,
    pub total: u64,
    pub reservation: String,
    pub charge: String,
}

pub(super) async fn checkout(
    State(gateway): State<Arc<Gateway>>,
    Json(order): Json<OrderRequest>,
) -> Result<Json<Order>, GatewayError> {
    tracing::info!(user = %order.user, item = %order.item, "checkout");
    let url = format!("{}/items/{}", gateway.upstreams.catalog, order.item);
    let item: Item = gateway.http.get(url).send().await?.json().await.expect("the catalog answers an item");

    let mut request = tonic::Request::new(ReserveRequest { item: item.id.clone(), quantity: order.quantity });
    request.set_timeout(Duration::from_secs(2));
    let reservation = gateway.inventory.clone().reserve(request).await.unwrap().into_inner();

    let total = item.price * u64::from(order.quantity);
    let charge = ChargeRequest { user: order.user.clone(), amount: total };
    let url = format!("{}/charges", gateway.upstreams.payments);
    let response = gateway.http.post(url).json(&charge).send().await?;
    if !response.status().is_success() {
        return Err(GatewayError::Upstream(format!("payments answered {}", response.status())));
    }
    let charge: Charge = response.json().await.map_err(|error| GatewayError::Upstream(error.to_string()))?;
    Ok(Json(Order { item: item.id, quantity: order.quantity, total, reservation: reservation.id, charge: charge.id }))
}

/// What went wrong with a dependency: 502, or 504 when it did not answer in time.
#[derive(Debug, thiserror::Error)]
pub(super) enum GatewayError {
    #[error("a dependency failed: {0}")]
    Upstream(String),
    #[error("a dependency did not answer in time")]
    Timeout,
}

impl From<reqwest_middleware::Error> for GatewayError {
    fn from(error: reqwest_middleware::Error) -> GatewayError {
        if let reqwest_middleware::Error::Reqwest(error) = &error {
            if error.is_timeout() {
                return GatewayError::Timeout;
            }
        }
        GatewayError::Upstream(error.to_string())
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "checkout failed");
        let status = match self {
            GatewayError::Upstream(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        };
        (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}
