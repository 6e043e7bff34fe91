//! The catalog service: items and their prices. `GET /items/{id}` answers the item or 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// An item for sale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub name: String,
    /// Price in cents.
    pub price: u64,
}

/// The items on sale.
pub fn items() -> HashMap<String, Item> {
    [("kettle", "Kettle", 2_999), ("teapot", "Teapot", 1_850), ("mug", "Mug", 650)]
        .into_iter()
        .map(|(id, name, price)| (id.to_string(), Item { id: id.to_string(), name: name.to_string(), price }))
        .collect()
}

/// The catalog's routes.
pub fn routes() -> Router {
    Router::new().route("/items/{id}", get(item)).with_state(Arc::new(items()))
}

async fn item(
    State(items): State<Arc<HashMap<String, Item>>>,
    Path(id): Path<String>,
) -> Result<Json<Item>, StatusCode> {
    tracing::debug!(%id, "item asked for");
    items.get(&id).cloned().map(Json).ok_or(StatusCode::NOT_FOUND)
}
