//! One job file (`.github/buildomat/jobs/*.sh`): a bash program whose
//! `#:` comment block is TOML configuration. Parsed here exactly as
//! buildomat reads it, then checked strictly, so a mistake is reported at
//! its line before any worker is started.

mod error;
mod lenient;
mod names;
mod raw;
mod toolchain;

use std::collections::BTreeMap;
use std::ops::Range;

use bm_api::output_rule::OutputRule;
use serde::Serialize;
use toml::Spanned;

pub use error::{JobFileError, JobFileErrorKind};
pub(crate) use lenient::{name_of, skipped_by_buildomat};
pub use names::MAX_PUBLISH_NAME;
pub use toolchain::RustToolchain;

use crate::frontmatter::Frontmatter;
use crate::warning::Warning;
use raw::RawJobFile;

/// How a job executes. buildomat defines only `basic`; the field exists so
/// the format can grow, and any other value is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variety {
    /// One bash program run in an ephemeral environment of its target.
    Basic,
}

/// One validated job file: what bm needs to submit it as a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobFile {
    /// The file as the caller named it; every later error points here.
    pub path: String,
    /// The check-run name, unique within a commit; dependencies refer to it.
    pub name: String,
    /// The line of `name`, for errors about the name (e.g. duplicates).
    pub name_line: usize,
    /// Always [`Variety::Basic`] today.
    pub variety: Variety,
    /// `false` keeps the file in the repository without running it.
    pub enable: bool,
    /// The target environment; `None` lets the caller pick its default.
    pub target: Option<String>,
    /// Output rules as written (each already checked with
    /// [`OutputRule::parse`]), ready for `JobSubmit::output_rules`.
    pub output_rules: Vec<String>,
    /// Dependency name (the folder `/input/NAME`) to the job it waits for.
    pub dependencies: BTreeMap<String, Dependency>,
    /// Outputs to publish at a predictable URL.
    pub publish: Vec<Publish>,
    /// The Rust toolchain to install; `None` when absent or `false`.
    pub rust_toolchain: Option<RustToolchain>,
    /// `true`: do not clone the repository; work in `/work`.
    pub skip_clone: bool,
    /// Other private repositories (`owner/repository`) the job may read.
    pub access_repos: Vec<String>,
    /// The whole file, verbatim: bash ignores the `#:` lines.
    pub script: String,
}

/// One `[dependencies.NAME]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dependency {
    /// The `name` of the job waited for.
    pub job: String,
    /// The line of `job = …`, for errors about the job named.
    pub line: usize,
}

/// One `[[publish]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Publish {
    /// The absolute path of the output file to publish.
    pub from_output: String,
    /// The group of files in the URL.
    pub series: String,
    /// The file's public name within the series.
    pub name: String,
    /// The line of `from_output`, for warnings about it.
    pub line: usize,
}

/// A job file that parsed, with the advice found on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedJobFile {
    /// The job.
    pub job: JobFile,
    /// Things buildomat accepts but that look like mistakes.
    pub warnings: Vec<Warning>,
}

impl JobFile {
    /// Parses one job file; on failure, the first error. Use
    /// [`parse_job_file`] to get every error and the warnings.
    pub fn parse(path: &str, text: &str) -> Result<JobFile, JobFileError> {
        parse_job_file(path, text).map(|p| p.job).map_err(|mut e| e.swap_remove(0))
    }

    /// The output rules, parsed; they were checked when the file was.
    pub fn parsed_output_rules(&self) -> Vec<OutputRule> {
        self.output_rules.iter().filter_map(|r| OutputRule::parse(r).ok()).collect()
    }
}

/// Parses and checks one job file named `path` (used only in messages).
/// On failure, every error found (never empty): TOML stops at its first
/// error, but the checks after it report all they find.
pub fn parse_job_file(path: &str, text: &str) -> Result<ParsedJobFile, Vec<JobFileError>> {
    use JobFileErrorKind as K;
    let err = |line, kind| vec![JobFileError::new(path, line, kind)];
    let Some(fm) = Frontmatter::extract(text) else {
        return Err(err(1, K::NoInterpreter));
    };
    if fm.lines.is_empty() || fm.is_blank() {
        return Err(err(fm.lines.first().copied().unwrap_or(2), K::NoFrontmatter));
    }
    let raw: RawJobFile =
        toml::from_str(&fm.toml).map_err(|e| err(fm.line_of_span(e.span()), K::Toml(toml_message(e.message()))))?;

    let line_of = |span: Range<usize>| fm.line_of_offset(span.start);
    let mut errors = Vec::new();
    let mut fail = |span: Range<usize>, kind| errors.push(JobFileError::new(path, line_of(span), kind));

    let variety = match raw.variety.get_ref().as_str() {
        "basic" => Variety::Basic,
        other => {
            fail(raw.variety.span(), K::UnsupportedVariety(other.to_string()));
            Variety::Basic
        }
    };
    if raw.name.get_ref().is_empty() {
        fail(raw.name.span(), K::EmptyName);
    }
    for rule in &raw.output_rules {
        if let Err(e) = OutputRule::parse(rule.get_ref()) {
            fail(rule.span(), K::OutputRule(e));
        }
    }
    for name in raw.dependencies.keys() {
        if let Err(reason) = names::check_dependency_name(name.get_ref()) {
            fail(name.span(), K::DependencyName { name: name.get_ref().clone(), reason });
        }
    }
    for p in &raw.publish {
        let p = p.get_ref();
        if let Err(reason) = names::check_from_output(p.from_output.get_ref()) {
            fail(p.from_output.span(), K::PublishFromOutput { value: p.from_output.get_ref().clone(), reason });
        }
        for (field, v) in [("series", &p.series), ("name", &p.name)] {
            if let Err(reason) = names::check_publish_name(v.get_ref()) {
                fail(v.span(), K::PublishName { field, value: v.get_ref().clone(), reason });
            }
        }
    }
    for repo in &raw.access_repos {
        if !names::is_repository(repo.get_ref()) {
            fail(repo.span(), K::AccessRepo(repo.get_ref().clone()));
        }
    }
    if let Some(tc) = &raw.rust_toolchain {
        if matches!(tc.get_ref(), toolchain::ToolchainValue::Name(n) if n.trim().is_empty()) {
            fail(tc.span(), K::EmptyToolchain);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let warnings = stray_warnings(path, &fm);
    let job = JobFile {
        path: path.to_string(),
        name_line: line_of(raw.name.span()),
        name: raw.name.into_inner(),
        variety,
        enable: raw.enable,
        target: raw.target,
        output_rules: raw.output_rules.into_iter().map(Spanned::into_inner).collect(),
        dependencies: raw
            .dependencies
            .into_iter()
            .map(|(k, d)| (k.into_inner(), Dependency { line: line_of(d.job.span()), job: d.job.into_inner() }))
            .collect(),
        publish: raw
            .publish
            .into_iter()
            .map(|p| {
                let p = p.into_inner();
                Publish {
                    line: line_of(p.from_output.span()),
                    from_output: p.from_output.into_inner(),
                    series: p.series.into_inner(),
                    name: p.name.into_inner(),
                }
            })
            .collect(),
        rust_toolchain: raw.rust_toolchain.and_then(|t| t.into_inner().into_toolchain()),
        skip_clone: raw.skip_clone,
        access_repos: raw.access_repos.into_iter().map(Spanned::into_inner).collect(),
        script: text.to_string(),
    };
    Ok(ParsedJobFile { job, warnings })
}

/// One warning per run of `#:` lines that come after the frontmatter
/// ended: buildomat ignores them, which is rarely what the author meant
/// (usually a blank line split the block).
fn stray_warnings(path: &str, fm: &Frontmatter) -> Vec<Warning> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &n in &fm.stray {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == n => *last = n,
            _ => runs.push((n, n)),
        }
    }
    runs.into_iter()
        .map(|(first, last)| {
            let what =
                if first == last { "this `#:` line is".to_string() } else { format!("`#:` lines {first}-{last} are") };
            Warning::at(
                path,
                first,
                format!(
                    "{what} ignored: the frontmatter is the block of `#` lines right after the interpreter \
                     line, and it ended at line {}",
                    fm.end_line
                ),
            )
        })
        .collect()
}

/// The TOML parser's message, plus a hint for the misspellings of `enable`
/// that buildomat also singles out.
fn toml_message(message: &str) -> String {
    let message = message.trim_end();
    let misspelt =
        ["enabled", "disable", "disabled"].iter().any(|k| message.starts_with(&format!("unknown field `{k}`")));
    if misspelt {
        format!("{message}; use `enable = false` to disable a job")
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests;
