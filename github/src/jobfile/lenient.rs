//! buildomat reads only `name`, `variety`, `enable` and `dependencies`
//! before it drops a disabled job, so a disabled job with, say, a stale
//! key still loads there. bm checks disabled jobs fully but must not refuse
//! what buildomat accepts: this module answers "would buildomat have
//! skipped this file?", using buildomat's own first-pass shape.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::frontmatter::Frontmatter;

/// buildomat's `FrontMatter`: unknown keys are kept aside, not refused.
/// Only `name` and `enable` are read; the rest must merely parse.
#[derive(Deserialize)]
#[allow(dead_code)]
struct FirstPass {
    name: String,
    variety: KnownVariety,
    #[serde(default = "yes")]
    enable: bool,
    #[serde(default)]
    dependencies: BTreeMap<String, FirstPassDependency>,
    #[serde(flatten)]
    extra: toml::Table,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum KnownVariety {
    Basic,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FirstPassDependency {
    job: String,
    #[serde(flatten)]
    extra: toml::Table,
}

fn yes() -> bool {
    true
}

/// The job's name when buildomat would load this file and then skip it as
/// disabled (`enable = false`), whatever else is wrong with it; `None` when
/// buildomat would run it or refuse it.
pub(crate) fn skipped_by_buildomat(text: &str) -> Option<String> {
    let fm = Frontmatter::extract(text)?;
    let first: FirstPass = toml::from_str(&fm.toml).ok()?;
    (!first.enable).then_some(first.name)
}

/// Just the `name`, read as leniently as possible, so that a job that
/// failed to parse does not also make every job depending on it report
/// an "unknown job".
#[derive(Deserialize)]
struct JustTheName {
    name: String,
}

/// The `name` of a job file whose other parts may be broken.
pub(crate) fn name_of(text: &str) -> Option<String> {
    let fm = Frontmatter::extract(text)?;
    toml::from_str::<JustTheName>(&fm.toml).ok().map(|n| n.name)
}
