//! Call identity: where a call is made from ([`CallSite`]) and the stable key that names one call of one
//! execution ([`CallKey`]).
//!
//! A call key is Filibuster's "execution index" made compact: a hash of the parent call's key, the call
//! site, the method, the target service, the path and how many times that same tuple was already called
//! under the same parent. It does not depend on ports, timing or addresses, so the same call in a re-run of
//! the same fault set gets the same key. Pure code: no I/O.

use std::fmt;
use std::panic::Location;
use std::str::FromStr;

/// The place in a service's source that made an outbound call: the same coordinates llvm-cov reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallSite {
    /// Source path as the compiler saw it (relative to the workspace root for workspace members).
    pub file: String,
    pub line: u32,
    pub column: u32,
}

/// What names a call site seen only on the wire: `users → bookings GET /bookings/{user}`.
const NAMED: &str = " → ";

impl CallSite {
    /// The site of a call seen only on the wire (through a proxy): named by caller, callee, method and
    /// route, with no line in any source.
    pub fn named(from: &str, to: &str, method: &str, route: &str) -> CallSite {
        CallSite { file: format!("{from}{NAMED}{to} {method} {route}"), line: 0, column: 0 }
    }

    /// Whether this is the site of a call seen only on the wire (printed by its name alone).
    pub fn is_named(&self) -> bool {
        self.line == 0 && self.column == 0 && self.file.contains(NAMED)
    }

    pub fn from_location(location: &Location<'_>) -> Self {
        CallSite { file: location.file().replace('\\', "/"), line: location.line(), column: location.column() }
    }
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_named() {
            return f.write_str(&self.file);
        }
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

serde_as_text!(CallSite);

impl FromStr for CallSite {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // A name holds a route, which may end in `:N:M` (`/v1/time/10:30:00`): it never has a line.
        if text.contains(NAMED) {
            return Ok(CallSite { file: text.to_string(), line: 0, column: 0 });
        }
        let mut parts = text.rsplitn(3, ':');
        let column = parts.next().and_then(|c| c.parse().ok());
        let line = parts.next().and_then(|l| l.parse().ok());
        match (parts.next().filter(|f| !f.is_empty()), line, column) {
            (Some(file), Some(line), Some(column)) => Ok(CallSite { file: file.to_string(), line, column }),
            _ => Err(format!("call site `{text}` is not of the form path:line:column")),
        }
    }
}

/// Whether `name` can name a service: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The stable name of one call in one execution. Printed as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

impl CallKey {
    /// The parent of calls made by the functional test itself.
    pub const ROOT: CallKey = CallKey(0);

    /// Derives the key of a call from its identity. `count` is how many calls with the same
    /// (parent, site, method, target, path) were made before this one under the same parent.
    pub fn derive(parent: CallKey, identity: &CallIdentity<'_>, count: u32) -> CallKey {
        let mut hash = Fnv::new();
        hash.write(&parent.0.to_le_bytes());
        identity.hash_into(&mut hash);
        hash.write(&count.to_le_bytes());
        // Never collide with ROOT.
        CallKey(hash.finish().max(1))
    }
}

impl fmt::Display for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for CallKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 16 {
            return Err(format!("call key `{text}` is not 16 hex digits"));
        }
        u64::from_str_radix(text, 16).map(CallKey).map_err(|_| format!("call key `{text}` is not 16 hex digits"))
    }
}

serde_as_text!(CallKey);

/// Everything but the parent and the count that identifies a call.
#[derive(Clone, Copy, Debug)]
pub struct CallIdentity<'a> {
    /// Source file of the call site (or, for a call seen only on the wire, the proxy's `proxy:from->to`).
    pub file: &'a str,
    pub line: u32,
    pub column: u32,
    pub method: &'a str,
    pub target: &'a str,
    pub path: &'a str,
}

impl<'a> CallIdentity<'a> {
    /// A hash of the identity alone, used to count repeated identical calls under one parent.
    pub fn fingerprint(&self, parent: CallKey) -> u64 {
        let mut hash = Fnv::new();
        hash.write(&parent.0.to_le_bytes());
        self.hash_into(&mut hash);
        hash.finish()
    }

    /// The identity of a call made at `site`.
    pub fn at(site: &'a Location<'a>, method: &'a str, target: &'a str, path: &'a str) -> CallIdentity<'a> {
        CallIdentity { file: site.file(), line: site.line(), column: site.column(), method, target, path }
    }

    /// The call site as a value.
    pub fn site(&self) -> CallSite {
        CallSite { file: self.file.replace('\\', "/"), line: self.line, column: self.column }
    }

    fn hash_into(&self, hash: &mut Fnv) {
        // Backslashes would make keys differ between Windows and Unix builds of the same source.
        for part in [self.file, self.method, self.target, self.path] {
            for byte in part.bytes() {
                hash.write(&[if byte == b'\\' { b'/' } else { byte }]);
            }
            hash.write(&[0xff]);
        }
        hash.write(&self.line.to_le_bytes());
        hash.write(&self.column.to_le_bytes());
    }
}

/// FNV-1a, 64 bit: stable across Rust versions and platforms, unlike `DefaultHasher`.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    #[test]
    fn a_named_site_prints_and_reads_back_by_its_name() {
        let site = CallSite::named("users", "bookings", "GET", "/bookings/{user}");
        assert_eq!(site.to_string(), "users → bookings GET /bookings/{user}");
        assert!(site.is_named());
        assert_eq!(site.to_string().parse::<CallSite>(), Ok(site));
        let versioned = CallSite::named("a", "b", "GET", "/api/v2");
        assert_eq!(versioned.to_string().parse::<CallSite>(), Ok(versioned));
        let timed = CallSite::named("a", "b", "GET", "/v1/time/10:30:00");
        assert_eq!(timed.to_string().parse::<CallSite>(), Ok(timed));
        let located: CallSite = "cinema/src/users.rs:12:5".parse().unwrap();
        assert!(!located.is_named());
        assert_eq!(located.to_string(), "cinema/src/users.rs:12:5");
        assert!("users.rs:12".parse::<CallSite>().is_err());
        assert!("no site".parse::<CallSite>().is_err());
    }

    #[test]
    fn call_key_is_stable_and_depends_on_every_part() {
        let site = here();
        let identity = CallIdentity::at(site, "GET", "bookings", "/bookings/chris_rivers");
        let key = CallKey::derive(CallKey::ROOT, &identity, 0);
        assert_eq!(key, CallKey::derive(CallKey::ROOT, &identity, 0));
        assert_ne!(key, CallKey::derive(CallKey::ROOT, &identity, 1));
        assert_ne!(key, CallKey::derive(CallKey(7), &identity, 0));
        let other_path = CallIdentity { path: "/bookings/dwight_schrute", ..identity };
        assert_ne!(key, CallKey::derive(CallKey::ROOT, &other_path, 0));
        let other_site = CallIdentity::at(here(), "GET", "bookings", "/bookings/chris_rivers");
        assert_ne!(key, CallKey::derive(CallKey::ROOT, &other_site, 0));
    }

    #[test]
    fn call_key_round_trips_through_text() {
        let key = CallKey(0x00ab_cdef_0123_4567);
        assert_eq!(key.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<CallKey>().unwrap(), key);
        assert!("xyz".parse::<CallKey>().is_err());
    }

    #[test]
    fn call_site_parses_paths_with_colons_in_them() {
        let site: CallSite = "c:/src/users.rs:12:9".parse().unwrap();
        assert_eq!(site.file, "c:/src/users.rs");
        assert_eq!((site.line, site.column), (12, 9));
        assert!("users.rs:12".parse::<CallSite>().is_err());
    }
}
