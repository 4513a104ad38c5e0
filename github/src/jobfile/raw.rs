//! The frontmatter exactly as TOML gives it, with the span of every value
//! that is checked after parsing, so a refused value can be reported at
//! its own line. Unknown keys are refused here (`deny_unknown_fields`).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::toolchain::ToolchainValue;

/// The whole frontmatter of a job file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJobFile {
    pub name: Spanned<String>,
    pub variety: Spanned<String>,
    #[serde(default = "yes")]
    pub enable: bool,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub output_rules: Vec<Spanned<String>>,
    #[serde(default)]
    pub dependencies: BTreeMap<Spanned<String>, RawDependency>,
    #[serde(default)]
    pub publish: Vec<Spanned<RawPublish>>,
    #[serde(default)]
    pub rust_toolchain: Option<Spanned<ToolchainValue>>,
    #[serde(default)]
    pub skip_clone: bool,
    #[serde(default)]
    pub access_repos: Vec<Spanned<String>>,
}

/// One `[dependencies.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDependency {
    pub job: Spanned<String>,
}

/// One `[[publish]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPublish {
    pub from_output: Spanned<String>,
    pub series: Spanned<String>,
    pub name: Spanned<String>,
}

fn yes() -> bool {
    true
}
