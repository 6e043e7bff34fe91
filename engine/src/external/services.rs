//! The services file: which services make up the system, how to start or attach to them, and the proxies
//! in front of those cloture cannot instrument (see docs/external.md). Everything is checked when the file
//! is read, before anything starts; errors name the file and the rule.

use std::path::Path;

use serde::Deserialize;

pub use crate::proxy::ProxySpec;
use crate::registry::valid_service_name;
use crate::text::printable;
use crate::trace::TEST_SERVICE;

/// The services file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesFile {
    pub services: Vec<ServiceSpec>,
    #[serde(default)]
    pub proxies: Vec<ProxySpec>,
}

/// One service.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    /// Shell command that runs the service in the foreground; absent: attach to a running service.
    #[serde(default)]
    pub command: Option<String>,
    pub port: u16,
    /// Path answered once the service is ready (any status below 500), or [`READY_TCP`]: ready once it
    /// accepts a connection (a service that speaks only HTTP/2 or gRPC, or no HTTP at all).
    #[serde(default = "default_ready")]
    pub ready: String,
    /// Extra environment for the command.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

/// The `ready` of a service that is ready once it accepts a connection.
pub const READY_TCP: &str = "tcp";

fn default_ready() -> String {
    "/".to_string()
}

impl ServicesFile {
    /// Reads and checks a services file; errors name the file and what is wrong.
    pub fn load(path: &Path) -> Result<ServicesFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: ServicesFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a services file: {e}", path.display()))?;
        file.check().map_err(|why| format!("{}: {why}", path.display()))?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        if self.services.is_empty() {
            return Err("no services".to_string());
        }
        let mut names = std::collections::HashSet::new();
        let mut ports = std::collections::HashSet::new();
        for service in &self.services {
            service.check()?;
            if !names.insert(service.name.as_str()) {
                return Err(format!("service `{}` is listed twice", service.name));
            }
            if !ports.insert(service.port) {
                return Err(format!("service `{}`: port {} is used twice", service.name, service.port));
            }
        }
        for proxy in &self.proxies {
            let what = format!("proxy {} → {}", printable(&proxy.from), printable(&proxy.to));
            if !ports.insert(proxy.listen) || proxy.listen == 0 {
                return Err(format!("{what}: port {} is 0 or used twice", proxy.listen));
            }
            if !valid_service_name(&proxy.from) || !valid_service_name(&proxy.to) {
                return Err(format!("{what}: not service names"));
            }
            // `from` may be the functional test itself (an entry proxy); `to` must be a listed service.
            if proxy.from != TEST_SERVICE && !names.contains(proxy.from.as_str()) {
                return Err(format!("{what}: `{}` is not a service of this file (nor `{TEST_SERVICE}`)", proxy.from));
            }
            if !names.contains(proxy.to.as_str()) {
                return Err(format!("{what}: `{}` is not a service of this file", proxy.to));
            }
            if !valid_upstream(&proxy.upstream) {
                return Err(format!("{what}: upstream `{}` is not host:port", printable(&proxy.upstream)));
            }
        }
        Ok(())
    }
}

impl ServiceSpec {
    fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if !valid_service_name(name) {
            return Err(format!("`{}` is not a service name (letters, digits, - _ .)", printable(name)));
        }
        if self.port == 0 {
            return Err(format!("service `{name}`: port 0 cannot be waited for; give the port it listens on"));
        }
        let plain = |c: char| c.is_ascii_graphic();
        let path = self.ready.starts_with('/') && self.ready.chars().all(plain);
        if !path && self.ready != READY_TCP {
            return Err(format!(
                "service `{name}`: ready must be a path that starts with / and holds no spaces or control \
                 characters, or \"{READY_TCP}\" (ready once it accepts a connection)"
            ));
        }
        for (key, value) in &self.env {
            if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                return Err(format!("service `{name}`: environment entry `{}` is not KEY=VALUE", printable(key)));
            }
        }
        Ok(())
    }
}

/// `host:port` with a port number.
fn valid_upstream(upstream: &str) -> bool {
    upstream.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: serde_json::Value) -> Result<(), String> {
        serde_json::from_value::<ServicesFile>(json).map_err(|e| e.to_string())?.check()
    }

    fn back_and_front(proxy: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "services": [
                { "name": "back", "command": "true", "port": 17100 },
                { "name": "front", "command": "true", "port": 17101 },
            ],
            "proxies": [proxy],
        })
    }

    #[test]
    fn d15_a_proxy_between_services_of_the_file_passes() {
        let entry =
            serde_json::json!({ "from": "test", "to": "front", "listen": 17103, "upstream": "127.0.0.1:17101" });
        assert_eq!(check(back_and_front(entry)), Ok(()));
    }

    #[test]
    fn d15_a_proxy_naming_services_not_in_the_file_is_refused() {
        let stray =
            serde_json::json!({ "from": "front", "to": "elsewhere", "listen": 17102, "upstream": "127.0.0.1:17100" });
        let error = check(back_and_front(stray)).expect_err("refused");
        assert!(error.contains("`elsewhere` is not a service of this file"), "{error}");
        let stray =
            serde_json::json!({ "from": "nobody", "to": "back", "listen": 17102, "upstream": "127.0.0.1:17100" });
        assert!(check(back_and_front(stray)).expect_err("refused").contains("`nobody`"));
    }

    #[test]
    fn d15_an_upstream_that_is_not_host_and_port_is_refused() {
        let proxy = serde_json::json!({ "from": "front", "to": "back", "listen": 17102, "upstream": "not a host" });
        let error = check(back_and_front(proxy)).expect_err("refused");
        assert!(error.contains("upstream `not a host` is not host:port"), "{error}");
    }

    #[test]
    fn d15_a_ready_path_with_a_line_break_or_a_space_is_refused_at_once() {
        let file = |ready: &str| serde_json::json!({ "services": [{ "name": "a", "command": "true", "port": 17124, "ready": ready }] });
        for ready in ["/\r\nX: y", "/a b", "TCP", "health"] {
            let error = check(file(ready)).expect_err("refused");
            assert!(error.contains("ready must be a path"), "{error}");
            assert!(error.contains("or \"tcp\""), "{error}");
            assert!(!error.contains('\n'), "one line: {error:?}");
        }
        assert!(check(file("tcp")).is_ok(), "ready once it accepts a connection");
        assert!(check(file("/health")).is_ok());
    }

    #[test]
    fn d15_an_environment_key_holding_an_equals_sign_is_refused() {
        let file = serde_json::json!({ "services": [{ "name": "a", "command": "true", "port": 17124, "env": { "A=B": "c" } }] });
        assert!(check(file).expect_err("refused").contains("environment entry `A=B`"));
    }
}
