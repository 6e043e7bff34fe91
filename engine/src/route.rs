//! Routes: what a request path stands for, as people write it (`/bookings/{user}`), so that a call cloture
//! only sees on the wire (through a proxy) can be named like a line of code: `users → bookings GET
//! /bookings/{user}`.
//!
//! A path matches one of the routes given for it (`{…}` matches any one segment); else each segment is kept
//! as it is, unless it is a value: one the caller received in its own request path (named after the segment
//! before it there, made singular: `/users/chris/bookings` makes `chris` a `{user}`), or one that looks like
//! an identifier (digits, a UUID, a long hexadecimal or mixed letters-and-digits token: `{id}`).

/// The route of `path` (its query left out): the first of `routes` it matches, else the path with its
/// values replaced by names. `received` are the paths of the requests the caller received.
pub fn template(path: &str, routes: &[String], received: &[&str]) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segments: Vec<&str> = path.split('/').collect();
    if let Some(route) = routes.iter().find(|route| matches(route, &segments)) {
        return route.clone();
    }
    let named: Vec<String> = segments
        .iter()
        .enumerate()
        .map(|(index, segment)| match name_of(segment, index, &segments, received) {
            Some(name) if index > 0 => format!("{{{name}}}"),
            _ => (*segment).to_string(),
        })
        .collect();
    named.join("/")
}

/// Whether `route` (`/bookings/{user}`) matches a path split into `segments`.
fn matches(route: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = route.split('/').collect();
    parts.len() == segments.len()
        && parts.iter().zip(segments).all(|(part, segment)| {
            let parameter = part.starts_with('{') && part.ends_with('}');
            if parameter {
                !segment.is_empty()
            } else {
                part == segment
            }
        })
}

/// The name of `segment` (of a path split into `segments`) when it is a value, not a fixed part of a
/// route. After the segments both paths start with (`/api`), and after a version (`v1`), a received path
/// alternates fixed parts and values (`/users/chris/bookings`): a value there is named after the fixed part
/// before it, a word.
fn name_of(segment: &str, index: usize, segments: &[&str], received: &[&str]) -> Option<String> {
    if segment.is_empty() {
        return None;
    }
    // The first segment of a path is the API's root or a collection: a fixed part, however it was received.
    for path in received.iter().filter(|_| index > 1) {
        let parts: Vec<&str> = path.split(['?', '#']).next().unwrap_or("").split('/').collect();
        let shared = parts.iter().zip(segments).take_while(|(a, b)| a == b).count();
        // What names a value is a word (`users`), not a version (`v1`) or another value.
        let word = |name: &str| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_') && !version(name)
        };
        // Fixed parts and values alternate after the shared segments, and after a version (`/api/v1/…`).
        let base = |at: usize| {
            let after_version = parts[..at].iter().rposition(|part| version(part)).map_or(0, |v| v + 1);
            shared.max(after_version)
        };
        let value = |at: &usize| *at > base(*at) && (*at - base(*at)) % 2 == 1 && word(parts[*at - 1]);
        if let Some(at) = parts.iter().enumerate().position(|(at, part)| *part == segment && value(&at)) {
            return Some(singular(parts[at - 1]));
        }
    }
    identifier(segment).then(|| "id".to_string())
}

/// Whether `segment` names an API version: `v1`, `v2beta`.
fn version(segment: &str) -> bool {
    let rest = segment.strip_prefix(['v', 'V']).unwrap_or("");
    rest.starts_with(|c: char| c.is_ascii_digit())
}

/// Whether `segment` looks like an identifier: all digits, a UUID, a hexadecimal token of 8 or more, or a
/// token of 8 or more mixing letters and digits.
fn identifier(segment: &str) -> bool {
    let digits = segment.bytes().filter(u8::is_ascii_digit).count();
    let hex = segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let token = segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    digits == segment.len() || (hex && segment.len() >= 8 && digits > 0) || (token && segment.len() >= 8 && digits >= 2)
}

/// `users` → `user`, `categories` → `category`; `status`, `address` stay.
fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies").filter(|stem| !stem.is_empty()) {
        return format!("{stem}y");
    }
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("us") {
        return word[..word.len() - 1].to_string();
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_the_caller_received_is_named_after_the_segment_before_it() {
        let received = ["/users/chris_rivers/bookings"];
        assert_eq!(template("/bookings/chris_rivers", &[], &received), "/bookings/{user}");
        assert_eq!(template("/bookings/chris_rivers?x=1", &[], &received), "/bookings/{user}");
        assert_eq!(template("/bookings/dwight", &[], &received), "/bookings/dwight");
        let nested = ["/api/users/chris/bookings"];
        assert_eq!(template("/api/bookings/chris", &[], &nested), "/api/bookings/{user}");
        // Not a value: a fixed segment received after a version, or first in the path called.
        assert_eq!(
            template("/api/v2/users/chris/bookings", &[], &["/api/v1/users/chris"]),
            "/api/v2/users/{user}/bookings"
        );
        assert_eq!(template("/items/42", &[], &["/cart/items"]), "/items/{id}");
    }

    #[test]
    fn identifiers_are_ids_and_fixed_segments_stay() {
        assert_eq!(template("/movies/720d006c-3a57-4b6a-b18f-9b713b073f3b", &[], &[]), "/movies/{id}");
        assert_eq!(template("/orders/42/items", &[], &[]), "/orders/{id}/items");
        assert_eq!(template("/showtimes/20151130", &[], &[]), "/showtimes/{id}");
        assert_eq!(template("/movies", &[], &[]), "/movies");
        assert_eq!(template("/", &[], &[]), "/");
        assert_eq!(template("/api/v1/health", &[], &[]), "/api/v1/health");
        assert_eq!(template("/a/Deadbeef", &[], &[]), "/a/Deadbeef");
    }

    #[test]
    fn a_given_route_wins() {
        let routes = vec!["/bookings/{user}".to_string(), "/movies/{movie}".to_string()];
        assert_eq!(template("/movies/267eedb8", &routes, &[]), "/movies/{movie}");
        assert_eq!(template("/bookings/x", &routes, &[]), "/bookings/{user}");
        assert_eq!(template("/bookings/x/y", &routes, &[]), "/bookings/x/y");
        assert_eq!(template("/bookings/", &routes, &[]), "/bookings/");
    }

    #[test]
    fn plural_segments_give_singular_names() {
        assert_eq!(singular("users"), "user");
        assert_eq!(singular("categories"), "category");
        assert_eq!(singular("status"), "status");
        assert_eq!(singular("address"), "address");
        assert_eq!(singular("ids"), "ids");
    }
}
