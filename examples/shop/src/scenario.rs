//! The shop's functional test: a user checks out one kettle. It passes when the gateway answers the order;
//! with a fault injected it also accepts the gateway's graceful answers (502, 503, 504 with a JSON error).

use serde_json::json;

use crate::gateway::Order;

/// One checkout against the gateway at `url`.
#[derive(Clone, Debug)]
pub struct CheckoutTest {
    client: reqwest_middleware::ClientWithMiddleware,
    url: String,
}

impl CheckoutTest {
    pub fn new(url: &str) -> CheckoutTest {
        let client =
            reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(cloture::reqwest::Middleware).build();
        CheckoutTest { client, url: format!("{url}/checkout") }
    }

    /// Runs the test: `Err` says why it failed.
    pub async fn run(self) -> Result<(), String> {
        let order = json!({ "user": "ada", "item": "kettle", "quantity": 2 });
        let response = self.client.post(&self.url).json(&order).send().await.map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|error| error.to_string())?;
        match status {
            200 => {
                let order: Order = serde_json::from_str(&body).map_err(|error| format!("not an order: {error}"))?;
                (order.total == 2 * 2_999).then_some(()).ok_or_else(|| format!("wrong total {}", order.total))
            }
            502..=504 if cloture::fault_injected() && body.contains("\"error\"") => Ok(()),
            other => Err(format!("the gateway answered {other}: {body}")),
        }
    }
}
