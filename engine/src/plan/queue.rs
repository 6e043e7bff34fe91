//! The planner's queue of candidates, indexed so that picking the next one does not cost a pass over the
//! queue: by rank (fewest faults, then discovery order) for breadth-first, by discovery order for
//! depth-first, and in groups of the same added call and fault for the coverage order. A candidate's
//! coverage score depends only on the call its last fault was added at and that fault, so every member of a
//! group scores the same: a pick scores each group once (through its first member) instead of every
//! candidate, and costs O(groups + log n) — the groups are the distinct (call, fault) pairs seen, which do
//! not grow with the queue.

use std::collections::{BTreeSet, HashMap};

use super::{Candidate, Order};
use crate::call::CallKey;
use crate::fault::Fault;

/// (number of faults, discovery sequence): breadth-first order, ties by discovery.
type Rank = (usize, u64);

#[derive(Default)]
pub(super) struct Queue {
    candidates: HashMap<u64, Candidate>,
    by_rank: BTreeSet<Rank>,
    by_seq: BTreeSet<u64>,
    groups: HashMap<(CallKey, Fault), BTreeSet<Rank>>,
}

fn rank(candidate: &Candidate) -> Rank {
    (candidate.faults.len(), candidate.seq)
}

fn group(candidate: &Candidate) -> (CallKey, Fault) {
    let fault = candidate.faults.get(&candidate.added).copied().expect("a candidate holds the fault it added");
    (candidate.added, fault)
}

impl Queue {
    pub fn push(&mut self, candidate: Candidate) {
        let rank = rank(&candidate);
        self.by_rank.insert(rank);
        self.by_seq.insert(candidate.seq);
        self.groups.entry(group(&candidate)).or_default().insert(rank);
        self.candidates.insert(candidate.seq, candidate);
    }

    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Takes the candidate the order picks next (`score` ranks candidates for the coverage order).
    pub fn pop(&mut self, order: Order, score: impl Fn(&Candidate) -> f64) -> Option<Candidate> {
        let seq = match order {
            Order::Depth => self.by_seq.last().copied(),
            Order::Breadth => self.by_rank.first().map(|&(_, seq)| seq),
            Order::Coverage => self.best_scored(&score).map(|(_, seq)| seq),
        }?;
        let candidate = self.candidates.remove(&seq).expect("indexed candidates are stored");
        let rank = rank(&candidate);
        self.by_rank.remove(&rank);
        self.by_seq.remove(&seq);
        let key = group(&candidate);
        if let Some(members) = self.groups.get_mut(&key) {
            members.remove(&rank);
            if members.is_empty() {
                self.groups.remove(&key);
            }
        }
        Some(candidate)
    }

    /// The first member of the best group: highest score, ties by rank.
    fn best_scored(&self, score: &impl Fn(&Candidate) -> f64) -> Option<Rank> {
        let mut best: Option<(f64, Rank)> = None;
        for members in self.groups.values() {
            let Some(&first) = members.first() else { continue };
            let value = score(&self.candidates[&first.1]);
            let better = match best {
                None => true,
                Some((best_value, best_rank)) => value > best_value || (value == best_value && first < best_rank),
            };
            if better {
                best = Some((value, first));
            }
        }
        best.map(|(_, rank)| rank)
    }

    /// Every candidate in the order `pop` would take them if nothing changed, lazily.
    pub fn ordered<'a>(
        &'a self,
        order: Order,
        score: impl Fn(&Candidate) -> f64 + 'a,
    ) -> Box<dyn Iterator<Item = &'a Candidate> + 'a> {
        let at = move |seq: u64| &self.candidates[&seq];
        match order {
            Order::Depth => Box::new(self.by_seq.iter().rev().map(move |&seq| at(seq))),
            Order::Breadth => Box::new(self.by_rank.iter().map(move |&(_, seq)| at(seq))),
            Order::Coverage => {
                // Groups by score (highest first); members of groups of equal score interleave by rank.
                let mut heads: Vec<(f64, std::iter::Peekable<std::collections::btree_set::Iter<'a, Rank>>)> = self
                    .groups
                    .values()
                    .filter_map(|members| {
                        let first = members.first()?;
                        Some((score(at(first.1)), members.iter().peekable()))
                    })
                    .collect();
                Box::new(std::iter::from_fn(move || {
                    let mut best: Option<(usize, f64, Rank)> = None;
                    for (index, (value, members)) in heads.iter_mut().enumerate() {
                        let Some(&&rank) = members.peek() else { continue };
                        let better = match best {
                            None => true,
                            Some((_, best_value, best_rank)) => {
                                *value > best_value || (*value == best_value && rank < best_rank)
                            }
                        };
                        if better {
                            best = Some((index, *value, rank));
                        }
                    }
                    let (index, _, (_, seq)) = best?;
                    heads[index].1.next();
                    Some(at(seq))
                }))
            }
        }
    }
}
