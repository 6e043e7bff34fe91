//! Reference values: what a functional test saw in a fault-free execution, saved under a name of its
//! choosing, for the same test to compare with under faults (`cloture.matches_reference` in Python).
//!
//! A test in another process cannot hand cloture its answers in memory, and an entry proxy sees only the
//! requests that pass through it; so the test saves what it wants compared itself. Only an execution with
//! no fault planned saves (the reference runs, and the fault-free re-runs of a failure without faults); any
//! execution reads. The first value saved under a name stays; a later fault-free execution saving a
//! different value marks the name *unstable* (the fault-free system does not answer the same twice), and
//! reading it is refused then, saying so, rather than comparing with one of two answers. Values live for
//! the exploration; `cloture explore` writes the stable ones to `references.json` in the report directory
//! and `cloture replay` reads them back, so that a replay compares as the exploration did.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

/// Why a value could not be saved or read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Nothing saved under this name.
    Unknown,
    /// Two fault-free executions saved different values.
    Unstable,
    /// Saving would take the store past its bound of bytes.
    Full(usize),
}

#[derive(Debug)]
struct Saved {
    value: Value,
    /// Its JSON text's length, counted against the bound.
    bytes: usize,
    unstable: bool,
}

/// The values saved in one exploration, bounded in total size.
#[derive(Debug)]
pub(crate) struct References {
    saved: Mutex<BTreeMap<String, Saved>>,
    most_bytes: usize,
}

/// Whether `name` may name a reference value: 1 to 128 letters, digits, `-`, `_`, `.` or `:`.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

impl References {
    pub(crate) fn new(most_bytes: usize) -> References {
        References { saved: Mutex::new(BTreeMap::new()), most_bytes }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Saved>> {
        // Every update is one insert or one flag: a poisoned map is still consistent.
        self.saved.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Saves `value` under `name` for a fault-free execution: the first value stays, a different one later
    /// marks the name unstable.
    pub(crate) fn save(&self, name: &str, value: Value) -> Result<(), Refusal> {
        let mut saved = self.lock();
        if let Some(known) = saved.get_mut(name) {
            if known.value != value {
                known.unstable = true;
            }
            return Ok(());
        }
        let bytes = value.to_string().len();
        let used: usize = saved.values().map(|s| s.bytes).sum();
        if used + bytes > self.most_bytes {
            return Err(Refusal::Full(self.most_bytes));
        }
        saved.insert(name.to_string(), Saved { value, bytes, unstable: false });
        Ok(())
    }

    /// The value saved under `name`.
    pub(crate) fn read(&self, name: &str) -> Result<Value, Refusal> {
        match self.lock().get(name) {
            None => Err(Refusal::Unknown),
            Some(saved) if saved.unstable => Err(Refusal::Unstable),
            Some(saved) => Ok(saved.value.clone()),
        }
    }

    /// The stable values, by name: what a replay needs.
    pub(crate) fn stable(&self) -> BTreeMap<String, Value> {
        self.lock().iter().filter(|(_, s)| !s.unstable).map(|(name, s)| (name.clone(), s.value.clone())).collect()
    }

    /// Takes in values saved by an earlier exploration (for a replay), within the bound.
    pub(crate) fn load(&self, values: BTreeMap<String, Value>) -> Result<(), Refusal> {
        for (name, value) in values {
            self.save(&name, value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_first_value_stays_and_a_different_one_makes_the_name_unstable() {
        let references = References::new(1 << 20);
        assert_eq!(references.read("answer"), Err(Refusal::Unknown));
        references.save("answer", json!({"total": 6})).unwrap();
        references.save("answer", json!({"total": 6})).unwrap();
        assert_eq!(references.read("answer"), Ok(json!({"total": 6})));
        references.save("answer", json!({"total": 7})).unwrap();
        assert_eq!(references.read("answer"), Err(Refusal::Unstable));
        assert!(references.stable().is_empty());
    }

    #[test]
    fn the_store_refuses_values_past_its_bound_of_bytes() {
        let references = References::new(20);
        references.save("a", json!("0123456789")).unwrap();
        assert_eq!(references.save("b", json!("0123456789")), Err(Refusal::Full(20)));
        assert_eq!(references.read("b"), Err(Refusal::Unknown));
    }

    #[test]
    fn names_are_short_words_without_slashes() {
        for name in ["answer", "users.bookings:chris_rivers", "a-1"] {
            assert!(valid_name(name), "{name}");
        }
        for name in ["", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(!valid_name(name), "{name}");
        }
    }
}
