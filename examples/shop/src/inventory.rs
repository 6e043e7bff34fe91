//! The inventory service, over gRPC (tonic): `shop.Inventory/Reserve` takes units of an item out of stock.

use std::collections::HashMap;
use std::sync::Mutex;

use tonic::{Request, Response, Status};

/// The code generated from `proto/inventory.proto`.
pub mod proto {
    tonic::include_proto!("shop");
}

use proto::inventory_server::Inventory;
pub use proto::inventory_server::InventoryServer;
use proto::{Reservation, ReserveRequest};

/// Stock per item.
#[derive(Debug)]
pub struct Stock {
    units: Mutex<HashMap<String, u32>>,
}

impl Default for Stock {
    fn default() -> Stock {
        let units = [("kettle", 1_000_000), ("teapot", 1_000_000), ("mug", 1_000_000)];
        Stock { units: Mutex::new(units.into_iter().map(|(item, n)| (item.to_string(), n)).collect()) }
    }
}

#[tonic::async_trait]
impl Inventory for Stock {
    async fn reserve(&self, request: Request<ReserveRequest>) -> Result<Response<Reservation>, Status> {
        let ReserveRequest { item, quantity } = request.into_inner();
        let mut units = self.units.lock().expect("stock lock poisoned");
        let left = units.get_mut(&item).ok_or_else(|| Status::not_found(format!("no item {item}")))?;
        if *left < quantity {
            return Err(Status::resource_exhausted(format!("only {left} of {item} left")));
        }
        *left -= quantity;
        Ok(Response::new(Reservation { id: format!("res-{item}-{left}"), left: *left }))
    }
}
