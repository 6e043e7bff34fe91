//! Coverage guidance, pure: how promising a fault at a call site is, from what the site guards and what
//! faults taught so far.
//!
//! A call site guards the uncovered paths after it in its function, up to the function's next call site
//! (`cloture_coverage::guarded_paths`): its `Err` arms, the error exits of its `?`s, its `map_err`
//! closures. A candidate scores the number of such paths still uncovered, times what experience says of
//! its fault there ([`promise`]): a fault that covered nothing at this site before, or a fault family
//! already tried here (it took its path here, and the next fault of the family likely takes the same),
//! scores less; so does a family tried at other sites, more so when it covered nothing anywhere (`slow`
//! on calls without a time limit hangs the caller before any handling runs). A family tried nowhere
//! keeps its full score: it may show a kind of handling not seen yet. When the site's file has no region
//! data, lines stand in for paths ([`line_score`]), with the bonus for an untried family that lines need:
//! an error leaving through `?` on a covered line runs no new line.
//!
//! A score depends only on the call site and the fault (the planner's queue scores each (call, fault)
//! group once), and on what was measured so far.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use cloture_coverage::{next_site_in_function, FunctionSpan, Position};

use crate::call::{CallKey, CallSite};
use crate::fault::Fault;
use crate::report::FaultReport;

/// What the faults tried so far taught: per site and fault, what each gained; per family, whether it
/// gained anything anywhere.
#[derive(Default)]
pub(super) struct Experience {
    /// (site, fault) → how much new coverage (lines and regions) the execution that tried it gained.
    tried: HashMap<(CallSite, Fault), usize>,
    tried_family: HashSet<(CallSite, &'static str)>,
    /// Family → whether any fault of it gained new coverage, wherever it was tried.
    family_gained: HashMap<&'static str, bool>,
}

/// What experience says about one fault at one site.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Tried {
    /// This very fault at this site, and what it gained.
    pub fault: Option<usize>,
    /// A fault of the same family was tried at this site.
    pub family_here: bool,
    /// The family was tried (anywhere), and whether it ever gained anything.
    pub family_anywhere: Option<bool>,
}

impl Experience {
    /// Remembers that `fault` at `site` gained `gained` (newly covered lines and regions).
    pub fn record(&mut self, site: &CallSite, fault: Fault, gained: usize) {
        self.tried.insert((site.clone(), fault), gained);
        self.tried_family.insert((site.clone(), fault.family()));
        *self.family_gained.entry(fault.family()).or_default() |= gained > 0;
    }

    pub fn of(&self, site: &CallSite, fault: Fault) -> Tried {
        Tried {
            fault: self.tried.get(&(site.clone(), fault)).copied(),
            family_here: self.tried_family.contains(&(site.clone(), fault.family())),
            family_anywhere: self.family_gained.get(fault.family()).copied(),
        }
    }
}

/// The factor (at most 1) experience puts on a fault's score: 0.1 when the very fault covered nothing at
/// this site; then 0.25 when its family was tried here, else 0.5 when the family was tried elsewhere and
/// gained something there, 0.1 when it gained nothing anywhere.
pub(super) fn promise(tried: &Tried) -> f64 {
    let mut factor = 1.0;
    if tried.fault == Some(0) {
        factor *= 0.1;
    }
    if tried.family_here {
        factor *= 0.25;
    } else {
        match tried.family_anywhere {
            Some(true) => factor *= 0.5,
            Some(false) => factor *= 0.1,
            None => {}
        }
    }
    factor
}

/// The score of a fault at a site guarding `paths` uncovered paths.
pub(super) fn region_score(paths: usize, tried: &Tried) -> f64 {
    paths as f64 * promise(tried)
}

/// The score of a fault at a site guarding `lines` uncovered lines, when regions are not known: an
/// untried family gets a bonus of 0.5, since an error leaving through `?` on a covered line is a new path
/// that lines cannot show.
pub(super) fn line_score(lines: usize, tried: &Tried) -> f64 {
    let mut score = lines as f64;
    if tried.fault == Some(0) {
        score *= 0.1;
    }
    if tried.family_here {
        score * 0.25
    } else {
        score + 0.5
    }
}

/// The next call site of each known site's function, rebuilt when calls or spans are added.
#[derive(Default)]
pub(super) struct SiteIndex {
    /// (calls, spans) it was built from.
    built_from: (usize, usize),
    next: HashMap<CallSite, Option<Position>>,
}

impl SiteIndex {
    /// Where the code a call at `site` guards ends: the next known call site of its function.
    pub fn next(
        &mut self,
        site: &CallSite,
        calls: &HashMap<CallKey, FaultReport>,
        spans: &[FunctionSpan],
    ) -> Option<Position> {
        if self.built_from != (calls.len(), spans.len()) {
            self.rebuild(calls, spans);
        }
        self.next.get(site).copied().flatten()
    }

    fn rebuild(&mut self, calls: &HashMap<CallKey, FaultReport>, spans: &[FunctionSpan]) {
        let mut by_file: BTreeMap<&str, BTreeSet<Position>> = BTreeMap::new();
        for call in calls.values() {
            by_file.entry(call.site.file.as_str()).or_default().insert((call.site.line, call.site.column));
        }
        self.next.clear();
        for call in calls.values() {
            if self.next.contains_key(&call.site) {
                continue;
            }
            let site = &call.site;
            let next = next_site_in_function(spans, &site.file, (site.line, site.column), &by_file[site.file.as_str()]);
            self.next.insert(site.clone(), next);
        }
        self.built_from = (calls.len(), spans.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(line: u32) -> CallSite {
        CallSite { file: "cinema/src/users/recitation.rs".into(), line, column: 39 }
    }

    #[test]
    fn experience_lowers_a_fault_that_covered_nothing_and_a_family_already_tried() {
        let untried = Tried::default();
        assert_eq!(promise(&untried), 1.0);
        let mut experience = Experience::default();
        let (bookings, movies) = (site(22), site(33));
        experience.record(&bookings, Fault::Connect, 7);
        experience.record(&bookings, Fault::Slow, 0);
        // At the site tried: the same family scores a quarter, a fault that covered nothing a tenth of that.
        assert_eq!(promise(&experience.of(&bookings, Fault::Connect)), 0.25);
        assert_eq!(promise(&experience.of(&bookings, Fault::Slow)), 0.1 * 0.25);
        assert_eq!(promise(&experience.of(&bookings, Fault::Status(500))), 1.0);
        // Elsewhere: a family that gained something scores half, one that gained nothing anywhere a tenth.
        assert_eq!(promise(&experience.of(&movies, Fault::Connect)), 0.5);
        assert_eq!(promise(&experience.of(&movies, Fault::Slow)), 0.1);
        assert_eq!(promise(&experience.of(&movies, Fault::Status(404))), 1.0);
        // A family that gains somewhere later counts as gaining.
        experience.record(&movies, Fault::Slow, 2);
        assert_eq!(promise(&experience.of(&site(40), Fault::Slow)), 0.5);
    }

    #[test]
    fn the_paths_a_site_guards_rank_the_untried_family_first_at_the_second_site() {
        // The recitation handler: both calls guard three paths; connect at bookings ran its arm, slow
        // there covered nothing.
        let mut experience = Experience::default();
        let (bookings, movies) = (site(22), site(33));
        experience.record(&bookings, Fault::Connect, 5);
        experience.record(&bookings, Fault::Slow, 0);
        let score = |site: &CallSite, paths: usize, fault: Fault| region_score(paths, &experience.of(site, fault));
        let status_at_movies = score(&movies, 3, Fault::Status(500));
        assert!(status_at_movies > score(&movies, 3, Fault::Connect), "a family not tried yet comes first");
        assert!(score(&movies, 3, Fault::Connect) > score(&movies, 3, Fault::Slow));
        assert!(score(&bookings, 2, Fault::Status(500)) > score(&bookings, 2, Fault::Slow));
        assert_eq!(score(&movies, 0, Fault::Status(500)), 0.0, "nothing guarded, nothing to gain");
    }

    #[test]
    fn without_regions_lines_score_with_a_bonus_for_an_untried_family() {
        let mut experience = Experience::default();
        experience.record(&site(22), Fault::Status(500), 0);
        assert_eq!(line_score(4, &experience.of(&site(22), Fault::Connect)), 4.5);
        assert_eq!(line_score(4, &experience.of(&site(22), Fault::Status(502))), 1.0);
        assert_eq!(line_score(4, &experience.of(&site(22), Fault::Status(500))), 4.0 * 0.1 * 0.25);
        assert_eq!(line_score(0, &experience.of(&site(22), Fault::Slow)), 0.5);
    }

    #[test]
    fn the_site_index_finds_the_next_call_of_the_same_function_and_follows_new_calls() {
        let file = "cinema/src/users/recitation.rs";
        let spans = vec![FunctionSpan { file: file.into(), name: "handler".into(), start_line: 16, end_line: 43 }];
        let report = |line: u32| FaultReport {
            key: CallKey(u64::from(line)),
            from: "users".into(),
            to: "bookings".into(),
            method: "GET".into(),
            path: "/".into(),
            site: site(line),
            fault: Fault::Connect,
        };
        let mut calls: HashMap<CallKey, FaultReport> = [(CallKey(22), report(22))].into_iter().collect();
        let mut index = SiteIndex::default();
        assert_eq!(index.next(&site(22), &calls, &spans), None);
        calls.insert(CallKey(33), report(33));
        assert_eq!(index.next(&site(22), &calls, &spans), Some((33, 39)), "rebuilt when a call is added");
        assert_eq!(index.next(&site(33), &calls, &spans), None);
    }
}
