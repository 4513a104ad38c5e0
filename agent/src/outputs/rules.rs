//! A job's output rules compiled once and asked, per file, whether it is
//! uploaded and how strictly; and, per `=` rule, whether it was satisfied.
//! Rule order never matters: a file is uploaded if any non-`!` rule matches
//! it and no `!` rule does.

use std::fmt;

use bm_api::output_rule::OutputRule;
use thiserror::Error;

use super::glob::{Glob, GlobError};

/// A rule whose pattern cannot be compiled, named as the author wrote it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("output rule {rule:?}: {source}")]
pub struct BadRule {
    /// The rule with its prefixes, as written in the job file.
    pub rule: String,
    /// What is wrong with its pattern.
    pub source: GlobError,
}

/// An `=` rule that matched no uploaded file; the job fails because of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MustMatchFailure {
    /// The rule with its prefixes, as written in the job file, so the
    /// author sees which of their rules was not satisfied.
    pub rule: String,
}

impl fmt::Display for MustMatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output rule {:?} must match at least one uploaded file, but matched none", self.rule)
    }
}

/// What the rules say about one file that is uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Some matching rule carries `%`: the file may change or vanish while
    /// it is uploaded.
    pub allow_change: bool,
}

/// The compiled rules of one job.
#[derive(Debug, Clone)]
pub struct RuleSet {
    includes: Vec<(OutputRule, Glob)>,
    excludes: Vec<Glob>,
}

impl RuleSet {
    /// Compiles every rule; the first bad one is the error.
    pub fn new(rules: &[OutputRule]) -> Result<RuleSet, BadRule> {
        let mut set = RuleSet { includes: Vec::new(), excludes: Vec::new() };
        for rule in rules {
            let glob = Glob::new(&rule.pattern).map_err(|source| BadRule { rule: rule_text(rule), source })?;
            if rule.exclude {
                set.excludes.push(glob);
            } else {
                set.includes.push((rule.clone(), glob));
            }
        }
        Ok(set)
    }

    /// Whether the file at absolute worker path `path` is uploaded, and if
    /// so whether it may change during the upload.
    pub fn wants(&self, path: &str) -> Option<Wanted> {
        if self.excludes.iter().any(|g| g.matches(path)) {
            return None;
        }
        let mut hit = None;
        for (rule, glob) in &self.includes {
            if glob.matches(path) {
                let allow_change = hit.is_some_and(|w: Wanted| w.allow_change) || rule.allow_change;
                hit = Some(Wanted { allow_change });
            }
        }
        hit
    }

    /// Whether some file under the directory `dir` could be uploaded; the
    /// walk enters only such directories.
    pub fn may_want_below(&self, dir: &str) -> bool {
        self.includes.iter().any(|(_, g)| g.may_match_below(dir))
    }

    /// The directories a walk must start from: one per include rule that
    /// can match a file, without repeats.
    pub fn walk_roots(&self) -> Vec<String> {
        let mut roots: Vec<String> =
            self.includes.iter().filter(|(_, g)| !g.matches_no_files()).map(|(_, g)| g.walk_root()).collect();
        roots.sort();
        roots.dedup();
        roots
    }

    /// The `=` rules that no path in `uploaded` satisfies, sorted and
    /// without repeats so that rule order cannot change the answer.
    ///
    /// `uploaded` should be the files actually uploaded: exclusions have
    /// already removed files (so `=%/tmp/*.log` with
    /// `!/tmp/big-and-useless.log` needs another log), and a `%` file that
    /// vanished before its upload does not count. This is buildomat's rule:
    /// a must-match rule is "used" only by a file that was uploaded.
    pub fn unmet_must_match<'a>(&self, uploaded: impl IntoIterator<Item = &'a str>) -> Vec<MustMatchFailure> {
        let mut met: Vec<bool> = self.includes.iter().map(|(r, _)| !r.must_match).collect();
        for path in uploaded {
            for (i, (_, glob)) in self.includes.iter().enumerate() {
                if !met[i] && glob.matches(path) {
                    met[i] = true;
                }
            }
        }
        let mut failures: Vec<MustMatchFailure> = self
            .includes
            .iter()
            .zip(met)
            .filter(|(_, met)| !met)
            .map(|((rule, _), _)| MustMatchFailure { rule: rule_text(rule) })
            .collect();
        failures.sort();
        failures.dedup();
        failures
    }
}

/// A rule as the author wrote it (prefixes then pattern), for messages.
pub fn rule_text(rule: &OutputRule) -> String {
    let mut text = String::new();
    if rule.exclude {
        text.push('!');
    }
    if rule.must_match {
        text.push('=');
    }
    if rule.allow_change {
        text.push('%');
    }
    text.push_str(&rule.pattern);
    text
}

#[cfg(test)]
mod tests {
    use super::{rule_text, MustMatchFailure, RuleSet, Wanted};
    use bm_api::output_rule::OutputRule;

    fn set(rules: &[&str]) -> RuleSet {
        let rules: Vec<OutputRule> = rules.iter().map(|r| OutputRule::parse(r).unwrap()).collect();
        RuleSet::new(&rules).unwrap()
    }

    #[test]
    fn everything_in_tmp_except_pictures() {
        let s = set(&["/tmp/*", "!/tmp/*.jpg"]);
        assert_eq!(s.wants("/tmp/a.txt"), Some(Wanted { allow_change: false }));
        assert_eq!(s.wants("/tmp/cat.jpg"), None);
        assert_eq!(s.wants("/tmp/d/a.txt"), None);
    }

    #[test]
    fn exclusion_wins_whatever_the_order() {
        let a = set(&["!/tmp/*.jpg", "/tmp/*"]);
        assert_eq!(a.wants("/tmp/cat.jpg"), None);
        assert!(a.wants("/tmp/a.txt").is_some());
    }

    #[test]
    fn allow_change_from_any_matching_rule() {
        let s = set(&["/tmp/*", "%/tmp/*.log", "/tmp/x.log"]);
        assert_eq!(s.wants("/tmp/x.log"), Some(Wanted { allow_change: true }));
        assert_eq!(s.wants("/tmp/x.txt"), Some(Wanted { allow_change: false }));
    }

    #[test]
    fn must_match_names_the_rule() {
        let s = set(&["=/work/pkg/important.tar.gz", "=%/tmp/*.log", "/tmp/*"]);
        assert_eq!(
            s.unmet_must_match(["/work/pkg/important.tar.gz"]),
            vec![MustMatchFailure { rule: "=%/tmp/*.log".into() }]
        );
        assert!(s.unmet_must_match(["/work/pkg/important.tar.gz", "/tmp/a.log"]).is_empty());
        let msg = s.unmet_must_match([])[0].to_string();
        assert!(msg.contains("\"=%/tmp/*.log\""), "{msg}");
    }

    #[test]
    fn walk_roots_skip_rules_that_match_no_file() {
        let s = set(&["/tmp/**", "/tmp/*.txt", "/work/**/*.log", "!/etc/*"]);
        assert_eq!(s.walk_roots(), vec!["/tmp".to_string(), "/work".to_string()]);
    }

    #[test]
    fn rule_text_round_trips() {
        for r in ["=%/tmp/*.log", "!/tmp/*.jpg", "/a", "=/a", "%/a"] {
            assert_eq!(rule_text(&OutputRule::parse(r).unwrap()), r);
        }
    }
}
