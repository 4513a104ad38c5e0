//! Advice on `publish` entries. buildomat publishes a file only if the job
//! uploaded it, and silently skips it otherwise, so an entry that no output
//! rule uploads (or that an exclusion rule drops) is almost surely a
//! mistake. It is not an error, so jobs that run on buildomat also run on
//! bm. A rule without `=` is not flagged: buildomat recommends `=`, but
//! real repositories publish optional files (test reports) on purpose.

use std::collections::BTreeMap;

use crate::glob;
use crate::jobfile::JobFile;
use crate::warning::Warning;

/// Warnings for every `publish` entry of `jobs` (in the given order).
pub(crate) fn publish_warnings<'a>(jobs: impl IntoIterator<Item = &'a JobFile>) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let mut seen: BTreeMap<(&str, &str), (&str, usize)> = BTreeMap::new();
    for job in jobs {
        let rules = job.parsed_output_rules();
        for p in &job.publish {
            let from = p.from_output.as_str();
            let matching =
                |exclude: bool| rules.iter().filter(move |r| r.exclude == exclude && glob::matches(&r.pattern, from));
            let advice = if let Some(r) = matching(true).next() {
                Some(format!(
                    "publish from_output {from:?} is excluded by output rule \"!{}\", so it is never published",
                    r.pattern
                ))
            } else if matching(false).next().is_none() {
                Some(format!(
                    "no output rule uploads publish from_output {from:?}, so it is never published; add \"={from}\" to output_rules"
                ))
            } else {
                None
            };
            if let Some(message) = advice {
                warnings.push(Warning::at(&job.path, p.line, message));
            }
            let key = (p.series.as_str(), p.name.as_str());
            if let Some((path, line)) = seen.get(&key) {
                warnings.push(Warning::at(
                    &job.path,
                    p.line,
                    format!(
                        "publish series {:?} name {:?} is also published by {path}:{line}; names must be unique within a series, so only one is published",
                        p.series, p.name
                    ),
                ));
            } else {
                seen.insert(key, (&job.path, p.line));
            }
        }
    }
    warnings
}
