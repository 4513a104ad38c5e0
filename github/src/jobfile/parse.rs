//! Turning a job file's text into a [`JobFile`]: frontmatter, TOML with
//! unknown keys refused, then the checks on values that end up in paths,
//! URLs and tokens, all located at their line in the file.

use std::ops::Range;

use bm_api::output_rule::OutputRule;
use toml::Spanned;

use super::raw::RawJobFile;
use super::{names, toolchain, Dependency, JobFile, JobFileError, JobFileErrorKind, ParsedJobFile, Publish, Variety};
use crate::frontmatter::Frontmatter;
use crate::warning::Warning;

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

    let errors = check_values(path, &fm, &raw);
    if !errors.is_empty() {
        return Err(errors);
    }
    let line_of = |span: Range<usize>| fm.line_of_offset(span.start);
    let warnings = stray_warnings(path, &fm);
    let job = JobFile {
        path: path.to_string(),
        name_line: line_of(raw.name.span()),
        name: raw.name.into_inner(),
        variety: Variety::Basic, // `check_values` refused any other
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

/// The checks TOML cannot express, each reported at its value's line.
fn check_values(path: &str, fm: &Frontmatter, raw: &RawJobFile) -> Vec<JobFileError> {
    use JobFileErrorKind as K;
    let mut errors = Vec::new();
    let mut fail = |span: Range<usize>, kind| errors.push(JobFileError::new(path, fm.line_of_offset(span.start), kind));
    if raw.variety.get_ref() != "basic" {
        fail(raw.variety.span(), K::UnsupportedVariety(raw.variety.get_ref().clone()));
    }
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
    errors
}
