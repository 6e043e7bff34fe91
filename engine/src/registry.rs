//! The service-name registry of this process: which service listens at which address, so that a call's
//! target is named by its service (stable across runs and processes) rather than by its port.
//!
//! [`crate::serve`] registers a service when it is called; services of other processes come from the
//! `CLOTURE_SERVICES` environment variable or are registered by the code that starts them.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

pub use crate::call::valid_service_name;

/// Environment variable naming services of other processes: `users=127.0.0.1:5000,bookings=127.0.0.1:5003`.
pub const SERVICES_ENV: &str = "CLOTURE_SERVICES";

fn names() -> &'static RwLock<HashMap<String, Arc<str>>> {
    static NAMES: OnceLock<RwLock<HashMap<String, Arc<str>>>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = HashMap::new();
        for entry in std::env::var(SERVICES_ENV).unwrap_or_default().split(',') {
            if let Some((name, authority)) = entry.trim().split_once('=') {
                if valid_service_name(name) {
                    insert(&mut names, name, authority);
                }
            }
        }
        RwLock::new(names)
    })
}

/// Names `authority` and, for a loopback address, its `localhost` alias.
fn insert(names: &mut HashMap<String, Arc<str>>, name: &str, authority: &str) {
    let name: Arc<str> = Arc::from(name);
    if let Some(port) = authority.strip_prefix("127.0.0.1:") {
        names.insert(format!("localhost:{port}"), Arc::clone(&name));
    }
    names.insert(authority.to_string(), name);
}

/// Records that the service `name` listens at `authority` (`host:port`). [`crate::serve`] does this itself;
/// call it for services in other processes.
pub fn register_service(name: &str, authority: &str) {
    insert(&mut names().write().expect("service names poisoned"), name, authority);
}

/// The name of the service at `authority`, or the authority itself when unknown.
pub fn service_name(authority: &str) -> Arc<str> {
    names().read().expect("service names poisoned").get(authority).cloned().unwrap_or_else(|| Arc::from(authority))
}
