//! The payments service: `POST /charges` charges a user and answers the charge (201), or 402 when the
//! amount is over the user's limit.

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// What the gateway asks payments to charge.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub user: String,
    /// Amount in cents.
    pub amount: u64,
}

/// A charge made.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
    pub amount: u64,
}

/// The largest charge accepted, in cents.
pub const LIMIT: u64 = 100_000;

/// The payments service's routes.
pub fn routes() -> Router {
    Router::new().route("/charges", post(charge))
}

async fn charge(Json(request): Json<ChargeRequest>) -> Result<(StatusCode, Json<Charge>), StatusCode> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    if request.amount > LIMIT {
        tracing::info!(user = %request.user, amount = request.amount, "charge refused");
        return Err(StatusCode::PAYMENT_REQUIRED);
    }
    let id = format!("ch_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    Ok((StatusCode::CREATED, Json(Charge { id, amount: request.amount })))
}
