//! Coverage differences between runs: per-file before/after counts with the
//! newly covered lines, and a greedy minimal set of executions that reaches
//! a coverage target. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use crate::lines::{FileLines, LineCoverage};

/// Covered and instrumented line counts of one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Lines executed at least once.
    pub covered: usize,
    /// Instrumented lines.
    pub lines: usize,
}

impl Counts {
    /// Covered lines as a percentage of the instrumented ones (0 for a file without any).
    pub fn percent(&self) -> f64 {
        if self.lines == 0 {
            0.0
        } else {
            100.0 * self.covered as f64 / self.lines as f64
        }
    }

    fn of(lines: Option<&FileLines>) -> Counts {
        lines.map_or_else(Counts::default, |l| Counts { covered: l.covered.len(), lines: l.instrumented.len() })
    }
}

/// How one file's coverage changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDelta {
    /// Workspace-relative path.
    pub path: String,
    /// Counts in the earlier coverage.
    pub before: Counts,
    /// Counts in the later coverage.
    pub after: Counts,
    /// Lines covered after but not before, ascending.
    pub newly_covered: Vec<u32>,
}

/// Per-file changes from `before` to `after` for files accepted by `files`.
///
/// Files present in either coverage are considered, in path order; a file is
/// reported only when its counts differ or it has newly covered lines.
pub fn delta(before: &LineCoverage, after: &LineCoverage, mut files: impl FnMut(&str) -> bool) -> Vec<FileDelta> {
    let paths: BTreeSet<&String> = before.files.keys().chain(after.files.keys()).collect();
    let mut out = Vec::new();
    for path in paths {
        if !files(path) {
            continue;
        }
        let (b, a) = (before.files.get(path), after.files.get(path));
        let newly_covered: Vec<u32> = match (b, a) {
            (_, None) => Vec::new(),
            (None, Some(a)) => a.covered.iter().copied().collect(),
            (Some(b), Some(a)) => a.covered.difference(&b.covered).copied().collect(),
        };
        let (before, after) = (Counts::of(b), Counts::of(a));
        if before != after || !newly_covered.is_empty() {
            out.push(FileDelta { path: path.clone(), before, after, newly_covered });
        }
    }
    out
}

/// Union of all executions' covered lines, a natural `target` for [`minimal_cover`].
pub fn union_lines(sets: &[(String, BTreeMap<String, BTreeSet<u32>>)]) -> BTreeMap<String, BTreeSet<u32>> {
    let mut out: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for (_, files) in sets {
        for (path, lines) in files {
            out.entry(path.clone()).or_default().extend(lines.iter().copied());
        }
    }
    out
}

/// Greedy set cover: execution ids, in the order picked, whose covered lines
/// together reach every line of `target` that any execution reaches.
///
/// Each step takes the execution adding the most still-missing target lines
/// (the earliest one on ties), until none adds any. Lines of `target` no
/// execution covers are ignored. Pass [`union_lines`] of `sets` as `target`
/// to keep the union coverage of all executions.
pub fn minimal_cover(
    sets: &[(String, BTreeMap<String, BTreeSet<u32>>)],
    target: &BTreeMap<String, BTreeSet<u32>>,
) -> Vec<String> {
    let mut missing: BTreeSet<(&str, u32)> =
        target.iter().flat_map(|(p, ls)| ls.iter().map(move |&l| (p.as_str(), l))).collect();
    let candidates: Vec<(&str, BTreeSet<(&str, u32)>)> = sets
        .iter()
        .map(|(id, files)| {
            let own = files
                .iter()
                .flat_map(|(p, ls)| ls.iter().map(move |&l| (p.as_str(), l)))
                .filter(|e| missing.contains(e))
                .collect();
            (id.as_str(), own)
        })
        .collect();
    let mut taken = vec![false; candidates.len()];
    let mut picked = Vec::new();
    loop {
        let best = candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| !taken[*i])
            .map(|(i, (_, own))| (i, own.iter().filter(|e| missing.contains(*e)).count()))
            .filter(|&(_, gain)| gain > 0)
            // max_by_key keeps the last maximum; reverse so the earliest wins ties.
            .rev()
            .max_by_key(|&(_, gain)| gain);
        let Some((i, _)) = best else { break };
        taken[i] = true;
        for e in &candidates[i].1 {
            missing.remove(e);
        }
        picked.push(candidates[i].0.to_owned());
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cov(files: &[(&str, &[u32], &[u32])]) -> LineCoverage {
        LineCoverage {
            files: files
                .iter()
                .map(|(p, i, c)| {
                    (
                        p.to_string(),
                        FileLines { instrumented: i.iter().copied().collect(), covered: c.iter().copied().collect() },
                    )
                })
                .collect(),
        }
    }

    fn set(id: &str, files: &[(&str, &[u32])]) -> (String, BTreeMap<String, BTreeSet<u32>>) {
        (id.to_owned(), files.iter().map(|(p, l)| (p.to_string(), l.iter().copied().collect())).collect())
    }

    #[test]
    fn delta_reports_changed_files_only() {
        let before = cov(&[("a.rs", &[1, 2, 3], &[1]), ("b.rs", &[1], &[1]), ("skip.rs", &[1], &[])]);
        let after = cov(&[
            ("a.rs", &[1, 2, 3], &[1, 3]),
            ("b.rs", &[1], &[1]),
            ("c.rs", &[4, 5], &[5]),
            ("skip.rs", &[1], &[1]),
        ]);
        let d = delta(&before, &after, |p| p != "skip.rs");
        assert_eq!(
            d,
            vec![
                FileDelta {
                    path: "a.rs".into(),
                    before: Counts { covered: 1, lines: 3 },
                    after: Counts { covered: 2, lines: 3 },
                    newly_covered: vec![3],
                },
                FileDelta {
                    path: "c.rs".into(),
                    before: Counts::default(),
                    after: Counts { covered: 1, lines: 2 },
                    newly_covered: vec![5],
                },
            ]
        );
        // Lost coverage shows up as a count change with nothing new.
        let back = delta(&after, &before, |_| true);
        assert_eq!(back.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), vec!["a.rs", "c.rs", "skip.rs"]);
        assert!(back.iter().all(|d| d.newly_covered.is_empty()));
    }

    #[test]
    fn minimal_cover_is_greedy_and_deterministic() {
        let sets = vec![
            set("e1", &[("a.rs", &[1, 2])]),
            set("e2", &[("a.rs", &[1, 2, 3]), ("b.rs", &[1])]),
            set("e3", &[("a.rs", &[4])]),
            set("e4", &[("a.rs", &[3, 4])]),
            set("e5", &[("b.rs", &[1])]),
        ];
        let target = union_lines(&sets);
        assert_eq!(minimal_cover(&sets, &target), vec!["e2", "e3"]);

        // Ties go to the earliest execution.
        let tie = vec![set("x", &[("a.rs", &[1])]), set("y", &[("a.rs", &[1])])];
        assert_eq!(minimal_cover(&tie, &union_lines(&tie)), vec!["x"]);

        // Only target lines count; unreachable target lines are ignored.
        let target: BTreeMap<String, BTreeSet<u32>> = [("a.rs".to_owned(), [4, 99].into())].into();
        assert_eq!(minimal_cover(&sets, &target), vec!["e3"]);
        assert!(minimal_cover(&[], &target).is_empty());
    }
}
