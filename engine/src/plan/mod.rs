//! The planner: which fault sets to run, in which order, and which to skip.
//!
//! Every call seen in an execution opens candidates: that execution's fault set plus one fault on that
//! call, for each fault the catalog gives the callee, up to `max_faults`. Candidates are skipped when they
//! cannot show anything new:
//! - **domination**: a superset of a fault set that already failed is not needed to show that bug;
//! - **dynamic reduction** (Filibuster's rule, generalised): a candidate whose faults' effects at every
//!   service boundary were already observed is pruned. Two observations feed it. (1) A call that answered
//!   some status (or transport error) *without* a fault on it, under the same faults elsewhere, already
//!   showed its caller that answer: injecting it adds nothing. (2) When faulting call `c` made call `d`
//!   vanish (the caller gave up before making it), any set holding faults on both `c` and `d` behaves like
//!   the set without `d`'s fault.
//!
//! Partitions split the plan between machines: every candidate has a *lineage root*, the first fault of
//! the chain it was derived by (a single-fault candidate is its own root, a candidate opened by execution
//! `F` inherits `F`'s root), and partition `k/n` keeps the candidates whose root hashes to `k`. Children keep
//! their parent's root, so whole subtrees stay in one partition. So that a fault set reachable by several
//! chains runs in one partition only, with dynamic reduction on a partition derives a set only along its
//! canonical chain: faults added in the order their calls came in the reference run (the chain a
//! breadth-first single run derives it by). A set off that chain is the same set as one its canonical
//! parent opens — or, when that parent does not reach the call, one that behaves like the parent (the
//! unreachable rule, so a single run prunes it too). Without reduction every chain is followed, and a set
//! reachable from roots in two partitions runs in both.
//!
//! Pure code: no I/O, no clocks; the explorer feeds it traces and asks for the next candidate.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::call::{CallKey, Fnv};
use crate::fault::{Catalog, Fault};
use crate::trace::{CallOutcome, CallRecord, TimeLimit, TEST_SERVICE};

mod queue;

use queue::Queue;

/// A set of faults, at most one per call.
pub type FaultSet = BTreeMap<CallKey, Fault>;

/// The stable id of the execution that injects `faults`: 12 hex digits, the same in every run.
pub fn execution_id(faults: &FaultSet) -> String {
    let mut hash = Fnv::new();
    for (key, fault) in faults {
        hash.write(format!("{key}={fault};").as_bytes());
    }
    format!("{:012x}", hash.finish() & 0xffff_ffff_ffff)
}

/// The partition (1-based, of `n`) that owns the candidates whose lineage root is `root`: a stable FNV hash
/// of the root's `key=fault` text, the same in every run and on every machine.
pub fn partition_of(root: (CallKey, Fault), n: usize) -> usize {
    let mut hash = Fnv::new();
    hash.write(format!("{}={}", root.0, root.1).as_bytes());
    (hash.finish() % n.max(1) as u64) as usize + 1
}

/// The order candidates run in; written `coverage`, `bfs` or `dfs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Candidates whose call site guards still-uncovered failure handling first (falls back to breadth).
    Coverage,
    /// Fewest faults first, then in discovery order.
    Breadth,
    /// Most recently discovered first.
    Depth,
}

impl std::str::FromStr for Order {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "coverage" => Ok(Order::Coverage),
            "bfs" | "breadth" => Ok(Order::Breadth),
            "dfs" | "depth" => Ok(Order::Depth),
            other => Err(format!("unknown order `{other}`: expected coverage, bfs or dfs")),
        }
    }
}

impl std::fmt::Display for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Order::Coverage => "coverage",
            Order::Breadth => "bfs",
            Order::Depth => "dfs",
        })
    }
}

serde_as_text!(Order);

/// Share `k` of `n` (1-based) of a plan, written `k/n`: a run explores only the candidates whose lineage
/// root falls into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Partition {
    k: usize,
    n: usize,
}

impl Partition {
    /// Share `k` of `n`; `None` unless `1 <= k <= n`.
    pub fn new(k: usize, n: usize) -> Option<Partition> {
        (1..=n).contains(&k).then_some(Partition { k, n })
    }

    /// Which share this is (1-based).
    pub fn k(self) -> usize {
        self.k
    }

    /// Into how many shares the plan is split.
    pub fn n(self) -> usize {
        self.n
    }
}

impl std::str::FromStr for Partition {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("partition `{text}` is not K/N with 1 <= K <= N (e.g. 1/3)");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (k, n) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        Partition::new(k, n).ok_or_else(bad)
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

serde_as_text!(Partition);

/// The shares of a plan a report covers, written `1/3` or, for merged reports, `1/3,2/3`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shares(pub Vec<Partition>);

impl From<Partition> for Shares {
    fn from(partition: Partition) -> Shares {
        Shares(vec![partition])
    }
}

impl std::str::FromStr for Shares {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',').map(str::parse).collect::<Result<Vec<_>, _>>().map(Shares)
    }
}

impl std::fmt::Display for Shares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let texts: Vec<String> = self.0.iter().map(Partition::to_string).collect();
        f.write_str(&texts.join(","))
    }
}

serde_as_text!(Shares);

/// A fault set waiting to run.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub faults: FaultSet,
    /// The call whose fault this candidate added to the execution it came from.
    pub added: CallKey,
    /// The lineage root: the first fault of the chain this candidate was derived by.
    pub root: (CallKey, Fault),
    seq: u64,
}

/// Why a candidate was not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneReason {
    /// A subset already failed.
    Dominated,
    /// The call already gave this answer without a fault on it.
    Observed,
    /// One fault prevents the call another fault is on.
    Unreachable,
}

/// Settings of the planner.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    pub max_faults: usize,
    pub order: Order,
    /// Dynamic reduction on (observed answers and unreachable calls are pruned). Domination is always on.
    pub reduce: bool,
    /// Only the candidates of partition `k` of `n` (1-based), by lineage root; `None` plans everything.
    pub partition: Option<Partition>,
}

type Canonical = Vec<(CallKey, Fault)>;

fn canonical(faults: &FaultSet) -> Canonical {
    faults.iter().map(|(k, f)| (*k, *f)).collect()
}

/// The planner's state.
pub struct Planner {
    config: PlanConfig,
    catalog: Catalog,
    excluded: HashSet<CallKey>,
    seen: HashSet<Canonical>,
    queue: Queue,
    seq: u64,
    failing: Vec<FaultSet>,
    /// Each call's retry loop (see [`Planner::learn_attempts`]).
    attempts: HashMap<CallKey, u64>,
    kills: HashMap<(CallKey, Fault), HashSet<CallKey>>,
    answers: HashSet<(Canonical, CallKey, CallOutcome)>,
    calls_of: HashMap<Canonical, HashSet<CallKey>>,
    pruned: Vec<(FaultSet, PruneReason)>,
    roots: HashMap<Canonical, (CallKey, Fault)>,
    /// Position of each call in the reference run, for canonical chains.
    positions: HashMap<CallKey, usize>,
}

impl Planner {
    /// A planner that never faults the calls in `excluded` (e.g. nondeterministic ones).
    pub fn new(config: PlanConfig, catalog: Catalog, excluded: HashSet<CallKey>) -> Planner {
        let mut seen = HashSet::new();
        seen.insert(Vec::new());
        Planner {
            config,
            catalog,
            excluded,
            seen,
            queue: Queue::default(),
            seq: 0,
            failing: Vec::new(),
            attempts: HashMap::new(),
            kills: HashMap::new(),
            answers: HashSet::new(),
            calls_of: HashMap::new(),
            pruned: Vec::new(),
            roots: HashMap::new(),
            positions: HashMap::new(),
        }
    }

    /// Marks a fault set as already run or planned elsewhere (e.g. by another partition or a replay).
    pub fn mark_seen(&mut self, faults: &FaultSet) {
        self.seen.insert(canonical(faults));
    }

    /// Learns from one finished execution and opens its candidates.
    /// Takes in what the execution of `faults` did. `dominating`: it failed in a way that no superset of its
    /// faults can show anything new about (a crash, a hang): its supersets are pruned. A `rejected` or
    /// passing execution dominates nothing: adding faults may reach calls (retry attempts) or code it did not.
    pub fn observe(&mut self, faults: &FaultSet, calls: &[CallRecord], dominating: bool) {
        let key = canonical(faults);
        self.seen.insert(key.clone());
        if faults.is_empty() && self.positions.is_empty() {
            for call in calls {
                let next = self.positions.len();
                self.positions.entry(call.key).or_insert(next);
            }
        }
        let call_keys: HashSet<CallKey> = calls.iter().map(|call| call.key).collect();
        let parents: HashMap<CallKey, CallKey> = calls.iter().map(|call| (call.key, call.parent)).collect();

        // (2) Calls that vanished when one more fault was added.
        for (&key_c, &fault) in faults {
            let mut without = faults.clone();
            without.remove(&key_c);
            if let Some(before) = self.calls_of.get(&canonical(&without)) {
                let vanished: HashSet<CallKey> = before.difference(&call_keys).copied().collect();
                if !vanished.is_empty() {
                    self.kills.entry((key_c, fault)).or_default().extend(vanished);
                }
            }
        }
        // (1) Answers seen without a fault on the call, under the faults not below it.
        for call in calls.iter().filter(|call| call.fault.is_none()) {
            if matches!(call.outcome, CallOutcome::Pending) {
                continue;
            }
            let context: Canonical =
                faults.iter().filter(|(k, _)| !descends_from(**k, call.key, &parents)).map(|(k, f)| (*k, *f)).collect();
            self.answers.insert((context, call.key, call.outcome.clone()));
        }
        self.calls_of.insert(key, call_keys);
        if dominating {
            self.failing.push(faults.clone());
        }
        // Children inherit this execution's lineage root (a set the planner never planned: its first fault).
        let root = self.roots.get(&canonical(faults)).copied().or_else(|| faults.iter().next().map(|(k, f)| (*k, *f)));
        self.learn_attempts(calls);
        self.extend_retries(faults, calls, root);
        if self.units(faults) >= self.config.max_faults {
            return;
        }
        let mut opened: HashSet<CallKey> = HashSet::new();
        for call in calls {
            if call.from == TEST_SERVICE
                || call.fault.is_some()
                || faults.contains_key(&call.key)
                || self.excluded.contains(&call.key)
                || !opened.insert(call.key)
            {
                continue;
            }
            for fault in self.catalog.faults_for_call(&call.to, &call.method, &call.path) {
                // Only a call with a time limit of its own times out. Where it has none, a timeout cannot happen;
                // where it is unknown (a proxy), a timeout is what `slow` gives the caller anyway.
                if fault == Fault::Timeout && !matches!(call.limit, TimeLimit::Within(_)) {
                    continue;
                }
                let mut next = faults.clone();
                next.insert(call.key, fault);
                self.consider(next, call.key, root.unwrap_or((call.key, fault)));
            }
        }
    }

    /// Remembers which calls are attempts of one retry loop: calls from one site, with one method, target
    /// and path, under one parent (they differ only by their count).
    fn learn_attempts(&mut self, calls: &[CallRecord]) {
        for call in calls {
            let mut hash = Fnv::new();
            for part in [call.from.as_str(), call.to.as_str(), call.method.as_str(), call.path.as_str()] {
                hash.write(part.as_bytes());
                hash.write(&[0xff]);
            }
            hash.write(call.site.to_string().as_bytes());
            hash.write(&call.parent.0.to_le_bytes());
            self.attempts.entry(call.key).or_insert(hash.finish());
        }
    }

    /// How many faults a set counts for `max_faults`: the same fault on every attempt of a retry loop is
    /// one ("every attempt fails", as one candidate).
    fn units(&self, faults: &FaultSet) -> usize {
        let distinct: HashSet<(u64, Fault)> =
            faults.iter().map(|(key, fault)| (self.attempts.get(key).copied().unwrap_or(key.0), *fault)).collect();
        distinct.len()
    }

    /// Retry loops: when every attempt this execution made of a loop so far failed with one fault, and the
    /// loop made one more attempt, that fault on that attempt too is the next candidate — the same unit, so
    /// it does not count against `max_faults`. Repeated, it reaches the execution where every attempt fails.
    fn extend_retries(&mut self, faults: &FaultSet, calls: &[CallRecord], root: Option<(CallKey, Fault)>) {
        let mut loops: Vec<(u64, Vec<&CallRecord>)> = Vec::new();
        for call in calls.iter().filter(|call| call.from != TEST_SERVICE) {
            let group = self.attempts.get(&call.key).copied().unwrap_or(call.key.0);
            match loops.iter_mut().find(|(known, _)| *known == group) {
                Some((_, attempts)) => attempts.push(call),
                None => loops.push((group, vec![call])),
            }
        }
        for (_, attempts) in loops.iter().filter(|(_, attempts)| attempts.len() >= 2) {
            let faulted = attempts.iter().take_while(|call| faults.contains_key(&call.key)).count();
            let Some(next) = attempts.get(faulted).filter(|_| faulted > 0) else { continue };
            let fault = faults[&attempts[0].key];
            let same = attempts[..faulted].iter().all(|call| faults[&call.key] == fault);
            if same && !self.excluded.contains(&next.key) {
                let mut extended = faults.clone();
                extended.insert(next.key, fault);
                self.consider(extended, next.key, root.unwrap_or((next.key, fault)));
            }
        }
    }

    fn consider(&mut self, faults: FaultSet, added: CallKey, root: (CallKey, Fault)) {
        if let Some(partition) = self.config.partition {
            if partition_of(root, partition.n()) != partition.k()
                || (self.config.reduce && !self.canonical_step(&faults, added))
            {
                return;
            }
        }
        let key = canonical(&faults);
        if !self.seen.insert(key.clone()) {
            return;
        }
        if let Some(reason) = self.prune_reason(&faults, added) {
            self.pruned.push((faults, reason));
            return;
        }
        self.seq += 1;
        self.roots.insert(key, root);
        self.queue.push(Candidate { faults, added, root, seq: self.seq });
    }

    fn prune_reason(&self, faults: &FaultSet, added: CallKey) -> Option<PruneReason> {
        if self.failing.iter().any(|failed| failed.iter().all(|(k, f)| faults.get(k) == Some(f))) {
            return Some(PruneReason::Dominated);
        }
        if !self.config.reduce {
            return None;
        }
        for (key_c, fault_c) in faults {
            if let Some(killed) = self.kills.get(&(*key_c, *fault_c)) {
                if faults.keys().any(|other| other != key_c && killed.contains(other)) {
                    return Some(PruneReason::Unreachable);
                }
            }
        }
        if let Some(answer) = faults.get(&added).and_then(|fault| fault.answer()) {
            let mut context = faults.clone();
            context.remove(&added);
            if self.answers.contains(&(canonical(&context), added, answer)) {
                return Some(PruneReason::Observed);
            }
        }
        None
    }

    /// Whether adding the fault on `added` is the last step of the canonical chain of `faults`: its call came
    /// last in the reference run among the set's calls. Sets with a call the reference run did not make have
    /// no canonical chain: every step is accepted.
    fn canonical_step(&self, faults: &FaultSet, added: CallKey) -> bool {
        let Some(&position) = self.positions.get(&added) else { return true };
        faults.keys().all(|key| self.positions.get(key).is_some_and(|&other| other <= position))
            || faults.keys().any(|key| !self.positions.contains_key(key))
    }

    /// The next candidate to run, or `None` when the space is explored. `score` ranks candidates for the
    /// coverage order (higher first); it is ignored by the other orders.
    pub fn next(&mut self, score: impl Fn(&Candidate) -> f64) -> Option<Candidate> {
        loop {
            let candidate = self.queue.pop(self.config.order, &score)?;
            // Knowledge grew since it was planned: check again.
            if let Some(reason) = self.prune_reason(&candidate.faults, candidate.added) {
                self.pruned.push((candidate.faults, reason));
                continue;
            }
            return Some(candidate);
        }
    }

    /// The fault sets the next `n` calls of [`Planner::next`] would return if nothing new were learnt in
    /// between (with the same `score`), without taking them: what can run speculatively, concurrently.
    pub fn upcoming(&self, n: usize, score: impl Fn(&Candidate) -> f64) -> Vec<FaultSet> {
        self.queue
            .ordered(self.config.order, score)
            .filter(|candidate| self.prune_reason(&candidate.faults, candidate.added).is_none())
            .take(n)
            .map(|candidate| candidate.faults.clone())
            .collect()
    }

    /// Candidates still waiting.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Every candidate pruned so far, with the reason.
    pub fn pruned(&self) -> &[(FaultSet, PruneReason)] {
        &self.pruned
    }
}

fn descends_from(key: CallKey, ancestor: CallKey, parents: &HashMap<CallKey, CallKey>) -> bool {
    let mut current = key;
    for _ in 0..parents.len() + 1 {
        match parents.get(&current) {
            Some(&parent) if parent == ancestor => return true,
            Some(&parent) if parent != CallKey::ROOT => current = parent,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::CallSite;

    fn call(key: u64, parent: u64, from: &str, to: &str, fault: Option<Fault>, outcome: CallOutcome) -> CallRecord {
        CallRecord {
            key: CallKey(key),
            parent: CallKey(parent),
            from: from.to_string(),
            to: to.to_string(),
            method: "GET".to_string(),
            path: format!("/{to}"),
            site: CallSite { file: "src/users.rs".to_string(), line: key as u32, column: 1 },
            fault,
            outcome,
            limit: TimeLimit::Within(std::time::Duration::from_secs(1)),
        }
    }

    fn only_connect() -> Catalog {
        Catalog::default().only(vec![Fault::Connect])
    }

    fn planner(max_faults: usize, order: Order, reduce: bool) -> Planner {
        Planner::new(PlanConfig { max_faults, order, reduce, partition: None }, only_connect(), HashSet::new())
    }

    /// test -> users (1); users -> bookings (2), users -> movies (3), (4).
    fn reference() -> Vec<CallRecord> {
        vec![
            call(1, 0, "test", "users", None, CallOutcome::Status(200)),
            call(2, 1, "users", "bookings", None, CallOutcome::Status(200)),
            call(3, 1, "users", "movies", None, CallOutcome::Status(200)),
            call(4, 1, "users", "movies", None, CallOutcome::Status(200)),
        ]
    }

    fn set(faults: &[(u64, Fault)]) -> FaultSet {
        faults.iter().map(|(k, f)| (CallKey(*k), *f)).collect()
    }

    #[test]
    fn the_test_own_calls_are_never_faulted() {
        let mut planner = planner(1, Order::Breadth, true);
        planner.observe(&FaultSet::new(), &reference(), false);
        let mut planned = Vec::new();
        while let Some(candidate) = planner.next(|_| 0.0) {
            planned.push(candidate.faults);
        }
        assert_eq!(
            planned,
            vec![set(&[(2, Fault::Connect)]), set(&[(3, Fault::Connect)]), set(&[(4, Fault::Connect)])]
        );
    }

    #[test]
    fn supersets_of_a_failing_set_are_dominated() {
        let mut planner = planner(2, Order::Breadth, false);
        planner.observe(&FaultSet::new(), &reference(), false);
        let first = planner.next(|_| 0.0).unwrap();
        assert_eq!(first.faults, set(&[(2, Fault::Connect)]));
        let mut calls = reference();
        calls[1].fault = Some(Fault::Connect);
        planner.observe(&first.faults, &calls, true);
        let second = planner.next(|_| 0.0).unwrap();
        let mut calls = reference();
        calls[2].fault = Some(Fault::Connect);
        planner.observe(&second.faults, &calls, false);
        let mut rest = Vec::new();
        while let Some(candidate) = planner.next(|_| 0.0) {
            assert!(!candidate.faults.contains_key(&CallKey(2)), "{:?} is dominated", candidate.faults);
            rest.push(candidate);
        }
        assert!(planner.pruned().iter().any(|(_, reason)| *reason == PruneReason::Dominated));
    }

    #[test]
    fn a_call_that_vanishes_under_a_fault_is_not_combined_with_it() {
        let mut with_reduction = planner(2, Order::Breadth, true);
        let mut without = planner(2, Order::Breadth, false);
        for planner in [&mut with_reduction, &mut without] {
            planner.observe(&FaultSet::new(), &reference(), false);
            let mut runs = 0;
            while let Some(candidate) = planner.next(|_| 0.0) {
                runs += 1;
                // The users handler gives up at the first failed call: later calls never happen.
                let first_fault = candidate.faults.keys().min().copied().expect("one fault at least");
                let calls: Vec<CallRecord> = reference()
                    .into_iter()
                    .filter(|c| c.key <= first_fault || c.key == CallKey(1))
                    .map(|mut c| {
                        c.fault = candidate.faults.get(&c.key).copied();
                        c
                    })
                    .collect();
                planner.observe(&candidate.faults, &calls, false);
            }
            assert!(runs >= 3);
        }
        assert!(with_reduction.pruned().iter().any(|(_, reason)| *reason == PruneReason::Unreachable));
        assert!(with_reduction.pruned().len() > without.pruned().len());
    }

    #[test]
    fn an_answer_already_seen_without_injection_is_pruned() {
        let mut planner = Planner::new(
            PlanConfig { max_faults: 1, order: Order::Breadth, reduce: true, partition: None },
            Catalog::default().only(vec![Fault::Status(404), Fault::Connect]),
            HashSet::new(),
        );
        let mut calls = reference();
        calls[1].outcome = CallOutcome::Status(404);
        calls.truncate(2);
        planner.observe(&FaultSet::new(), &calls, false);
        let mut planned = Vec::new();
        while let Some(candidate) = planner.next(|_| 0.0) {
            planned.push(candidate.faults);
        }
        assert_eq!(planned, vec![set(&[(2, Fault::Connect)])]);
        assert_eq!(planner.pruned(), &[(set(&[(2, Fault::Status(404))]), PruneReason::Observed)]);
    }

    #[test]
    fn depth_first_takes_the_newest_and_coverage_takes_the_best_score() {
        let mut depth = planner(1, Order::Depth, true);
        depth.observe(&FaultSet::new(), &reference(), false);
        assert_eq!(depth.next(|_| 0.0).unwrap().added, CallKey(4));
        let mut guided = planner(1, Order::Coverage, true);
        guided.observe(&FaultSet::new(), &reference(), false);
        let pick = guided.next(|c| if c.added == CallKey(3) { 5.0 } else { 0.0 }).unwrap();
        assert_eq!(pick.added, CallKey(3));
        assert_eq!(guided.next(|_| 0.0).unwrap().added, CallKey(2), "ties go breadth-first");
    }

    /// test -> users (1); users -> bookings (2); users -> movies (3), (4), (5).
    fn wide_reference() -> Vec<CallRecord> {
        let mut calls = reference();
        calls.push(call(5, 1, "users", "movies", None, CallOutcome::Status(200)));
        calls
    }

    /// Runs a whole plan against a system whose calls under `faults` are `calls_of(faults)`; every execution
    /// passes. Returns the candidates in the order they ran.
    fn run_plan(mut planner: Planner, calls_of: impl Fn(&FaultSet) -> Vec<CallRecord>) -> Vec<Candidate> {
        planner.observe(&FaultSet::new(), &calls_of(&FaultSet::new()), false);
        let mut ran = Vec::new();
        while let Some(candidate) = planner.next(|_| 0.0) {
            planner.observe(&candidate.faults, &calls_of(&candidate.faults), false);
            ran.push(candidate);
        }
        ran
    }

    fn partitioned(max_faults: usize, partition: Option<Partition>) -> Planner {
        let catalog = Catalog::default().only(vec![Fault::Connect, Fault::Timeout, Fault::Status(503)]);
        Planner::new(PlanConfig { max_faults, order: Order::Breadth, reduce: true, partition }, catalog, HashSet::new())
    }

    /// Every call happens whatever the faults.
    fn independent(faults: &FaultSet) -> Vec<CallRecord> {
        wide_reference()
            .into_iter()
            .map(|mut c| {
                c.fault = faults.get(&c.key).copied();
                c
            })
            .collect()
    }

    /// The users handler gives up at its first failed call: later calls never happen.
    fn giving_up(faults: &FaultSet) -> Vec<CallRecord> {
        let first = faults.keys().min().copied().unwrap_or(CallKey(u64::MAX));
        independent(faults).into_iter().filter(|c| c.key <= first).collect()
    }

    /// users calls bookings (key 2) and retries it (keys 3, 4) while it answers 503, at most three attempts;
    /// after the last failed attempt it crashes. A 503 on some attempts only is recovered: the test sees the
    /// right answer, but a strict oracle rejects any answer under a fault.
    fn retrying(faults: &FaultSet) -> (Vec<CallRecord>, Option<bool>) {
        let mut calls = vec![call(1, 0, "test", "users", None, CallOutcome::Status(200))];
        for attempt in 2..=4u64 {
            let fault = faults.get(&CallKey(attempt)).copied();
            let mut record = call(attempt, 1, "users", "bookings", fault, CallOutcome::Status(200));
            // Every attempt is one retry loop: the same site, method, target and path under one parent.
            record.site.line = 2;
            calls.push(record);
            if fault.is_none() {
                // Recovered: rejected by a strict oracle when any fault was injected, else a pass.
                return (calls, (!faults.is_empty()).then_some(false));
            }
        }
        (calls, Some(true))
    }

    fn explore_retrying(mut planner: Planner) -> Vec<(FaultSet, Option<bool>)> {
        planner.observe(&FaultSet::new(), &retrying(&FaultSet::new()).0, false);
        let mut ran = Vec::new();
        while let Some(candidate) = planner.next(|_| 0.0) {
            let (calls, failure) = retrying(&candidate.faults);
            // A crash dominates its supersets; a rejection does not.
            planner.observe(&candidate.faults, &calls, failure == Some(true));
            ran.push((candidate.faults, failure));
        }
        ran
    }

    #[test]
    fn every_attempt_of_a_retry_loop_failing_is_one_candidate_within_two_faults() {
        let catalog = Catalog::default().only(vec![Fault::Status(503)]);
        let planner = Planner::new(
            PlanConfig { max_faults: 1, order: Order::Breadth, reduce: true, partition: None },
            catalog,
            HashSet::new(),
        );
        let ran = explore_retrying(planner);
        let crash = ran.iter().find(|(_, failure)| *failure == Some(true)).expect("the crash after the last attempt");
        assert_eq!(crash.0, set(&[(2, Fault::Status(503)), (3, Fault::Status(503)), (4, Fault::Status(503))]));
    }

    #[test]
    fn a_rejected_answer_does_not_dominate_the_supersets_that_reach_more_attempts() {
        let catalog = Catalog::default().only(vec![Fault::Status(503)]);
        let planner = Planner::new(
            PlanConfig { max_faults: 2, order: Order::Breadth, reduce: true, partition: None },
            catalog,
            HashSet::new(),
        );
        let ran = explore_retrying(planner);
        assert!(ran.iter().any(|(_, failure)| *failure == Some(false)), "the first attempt's fault is rejected");
        assert!(ran.iter().any(|(_, failure)| *failure == Some(true)), "yet every attempt failing still runs");
    }

    #[test]
    fn every_root_belongs_to_exactly_one_partition() {
        for n in 1..=4 {
            for key in 0..50 {
                for fault in [Fault::Connect, Fault::Timeout, Fault::Status(500)] {
                    let owner = partition_of((CallKey(key), fault), n);
                    assert!((1..=n).contains(&owner));
                    assert_eq!(owner, partition_of((CallKey(key), fault), n), "stable");
                }
            }
        }
    }

    #[test]
    fn partitions_split_the_plan_without_overlap_and_keep_subtrees_together() {
        for (system, max_faults) in
            [(independent as fn(&FaultSet) -> Vec<CallRecord>, 2), (independent, 3), (giving_up, 2), (giving_up, 3)]
        {
            let whole: Vec<FaultSet> =
                run_plan(partitioned(max_faults, None), system).into_iter().map(|c| c.faults).collect();
            assert!(whole.len() >= 12, "{} candidates", whole.len());
            for n in [2, 3] {
                let mut union: Vec<FaultSet> = Vec::new();
                for k in 1..=n {
                    let ran = run_plan(partitioned(max_faults, Partition::new(k, n)), system);
                    let sets: Vec<&FaultSet> = ran.iter().map(|c| &c.faults).collect();
                    for candidate in &ran {
                        assert_eq!(partition_of(candidate.root, n), k, "{:?}", candidate.faults);
                        // The subtree stays together: the root ran here, and so did the parent.
                        assert!(sets.contains(&&set(&[(candidate.root.0 .0, candidate.root.1)])));
                        if candidate.faults.len() > 1 {
                            let mut parent = candidate.faults.clone();
                            parent.remove(&candidate.added);
                            assert!(sets.contains(&&parent), "{:?} without its parent", candidate.faults);
                        }
                    }
                    union.extend(ran.into_iter().map(|c| c.faults));
                }
                let distinct: HashSet<Canonical> = union.iter().map(canonical).collect();
                assert_eq!(distinct.len(), union.len(), "a fault set ran in two partitions");
                let expected: HashSet<Canonical> = whole.iter().map(canonical).collect();
                assert_eq!(distinct, expected, "{n} partitions, max_faults {max_faults}");
            }
        }
    }

    #[test]
    fn without_reduction_partitions_follow_every_chain_and_miss_nothing() {
        let config = |partition| PlanConfig { max_faults: 2, order: Order::Breadth, reduce: false, partition };
        let catalog = || Catalog::default().only(vec![Fault::Connect, Fault::Timeout]);
        let whole: HashSet<Canonical> = run_plan(Planner::new(config(None), catalog(), HashSet::new()), giving_up)
            .iter()
            .map(|c| canonical(&c.faults))
            .collect();
        let mut union = HashSet::new();
        for k in 1..=3 {
            let ran = run_plan(Planner::new(config(Partition::new(k, 3)), catalog(), HashSet::new()), giving_up);
            assert!(ran.iter().all(|c| partition_of(c.root, 3) == k));
            union.extend(ran.iter().map(|c| canonical(&c.faults)));
        }
        assert_eq!(union, whole);
        assert!(whole.iter().any(|faults| faults.len() == 2));
    }

    #[test]
    fn children_keep_the_root_of_the_execution_they_come_from() {
        let ran = run_plan(partitioned(3, None), independent);
        for candidate in &ran {
            let (first, fault) = candidate.faults.iter().next().map(|(k, f)| (*k, *f)).unwrap();
            assert_eq!(candidate.root, (first, fault), "breadth first, the earliest call roots the chain");
        }
        assert!(ran.iter().any(|c| c.faults.len() == 3));
    }

    #[test]
    fn upcoming_predicts_the_next_candidates_without_taking_them() {
        for order in [Order::Breadth, Order::Depth, Order::Coverage] {
            let mut planner = planner(1, order, true);
            planner.observe(&FaultSet::new(), &reference(), false);
            let score = |c: &Candidate| if c.added == CallKey(3) { 1.0 } else { 0.0 };
            let predicted = planner.upcoming(2, score);
            assert_eq!(planner.pending(), 3);
            let taken: Vec<FaultSet> = (0..2).map(|_| planner.next(score).unwrap().faults).collect();
            assert_eq!(predicted, taken, "{order}");
        }
    }

    #[test]
    fn execution_ids_are_stable_and_distinct() {
        let a = set(&[(2, Fault::Connect)]);
        let b = set(&[(2, Fault::Timeout)]);
        assert_eq!(execution_id(&a), execution_id(&a.clone()));
        assert_ne!(execution_id(&a), execution_id(&b));
        assert_eq!(execution_id(&a).len(), 12);
    }
}
