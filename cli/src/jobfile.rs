//! `bm jobfile check`: finds mistakes in job files before they are pushed,
//! with the same parser the node uses (`bm_github`), so "ok" here means
//! the commit's jobs will be accepted.
//!
//! Each PATH is a repository root (its `.github/buildomat/jobs` is
//! checked), a jobs folder, or a job file; the job files named directly
//! are checked together as one partial set, in which a dependency on a job
//! outside them is not an error. Diagnostics (`path:line: message`) go to
//! standard error, the verdict (`ok: …` or `invalid: …`) to standard
//! output. Exit code 0 when every set is valid, 4 when any is not.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use bm_github::{
    load_jobs_dir, load_repo, DisabledJob, JobFile, JobSetBuilder, JobSetErrors, LoadedJobSet, Warning, JOBS_DIR,
};
use serde::Serialize;

use crate::output::print_json;
use crate::{exit, outln, JobfileCheckArgs};

/// Checks the files `args` names; the exit code follows `crate::exit`.
pub async fn check(args: JobfileCheckArgs) -> anyhow::Result<ExitCode> {
    let reports = check_paths(&args.paths)?;
    let ok = reports.iter().all(|r| r.ok);
    if args.json {
        print_json(&JsonReport { ok, sets: &reports })?;
    } else {
        let many = reports.len() > 1;
        for r in &reports {
            for e in &r.errors {
                eprintln!("{e}");
            }
            for w in &r.warnings {
                eprintln!("{w}");
            }
            if many {
                outln!("{}: {}", r.path, r.verdict());
            } else {
                outln!("{}", r.verdict());
            }
        }
    }
    Ok(ExitCode::from(if ok { exit::SUCCESS } else { exit::REFUSED }))
}

/// The `--json` document: one entry per set checked.
#[derive(Serialize)]
struct JsonReport<'a> {
    ok: bool,
    sets: &'a [SetReport],
}

/// What was found in one set of job files.
#[derive(Debug, Serialize)]
struct SetReport {
    /// The repository root, jobs folder, or `files` for loose job files.
    path: String,
    ok: bool,
    /// Enabled jobs in topological order (empty when the set is invalid).
    jobs: Vec<JobFile>,
    disabled: Vec<DisabledJob>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Warning>,
}

/// One error, flattened for printing and JSON.
#[derive(Debug, Serialize)]
struct Diagnostic {
    path: String,
    line: Option<usize>,
    message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path, line, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl SetReport {
    fn new(path: String, result: Result<LoadedJobSet, JobSetErrors>) -> Self {
        match result {
            Ok(loaded) => SetReport {
                path,
                ok: true,
                disabled: loaded.jobs.disabled().to_vec(),
                jobs: loaded.jobs.into_jobs(),
                errors: Vec::new(),
                warnings: loaded.warnings,
            },
            Err(e) => SetReport {
                path,
                ok: false,
                jobs: Vec::new(),
                disabled: Vec::new(),
                errors: e
                    .errors
                    .into_iter()
                    .map(|e| Diagnostic { path: e.path, line: e.line, message: e.kind.to_string() })
                    .collect(),
                warnings: e.warnings,
            },
        }
    }

    /// `ok: 3 jobs (build, test, publish); 1 disabled (old); 2 warnings`
    /// or `invalid: 2 errors`.
    fn verdict(&self) -> String {
        let mut s = if self.ok {
            let names: Vec<&str> = self.jobs.iter().map(|j| j.name.as_str()).collect();
            let mut s = format!("ok: {}", count(names.len(), "job"));
            if !names.is_empty() {
                s += &format!(" ({})", names.join(", "));
            }
            if !self.disabled.is_empty() {
                let names: Vec<&str> = self.disabled.iter().map(|d| d.name.as_str()).collect();
                s += &format!("; {} disabled ({})", names.len(), names.join(", "));
            }
            s
        } else {
            format!("invalid: {}", count(self.errors.len(), "error"))
        };
        if !self.warnings.is_empty() {
            s += &format!("; {}", count(self.warnings.len(), "warning"));
        }
        s
    }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Checks every PATH (default: `.github/buildomat/jobs` here). A PATH that
/// does not exist is an error of the command, not of the job files.
fn check_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<SetReport>> {
    if paths.is_empty() {
        let dir = Path::new(JOBS_DIR);
        if !dir.is_dir() {
            bail!("no {JOBS_DIR} folder here; run this at the root of a repository, or name job files or folders");
        }
        return Ok(vec![SetReport::new(JOBS_DIR.to_string(), load_jobs_dir(dir))]);
    }
    let mut reports = Vec::new();
    let mut loose = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        let shown = path.display().to_string();
        if !meta.is_dir() {
            loose.push(path);
        } else if is_repo_root(path) {
            reports.push(SetReport::new(shown, load_repo(path)));
        } else {
            reports.push(SetReport::new(shown, load_jobs_dir(path)));
        }
    }
    if !loose.is_empty() {
        let mut builder = JobSetBuilder::partial();
        for path in &loose {
            builder.add_path(path);
        }
        let label = if loose.len() == 1 { loose[0].display().to_string() } else { "files".to_string() };
        reports.push(SetReport::new(label, builder.finish()));
    }
    Ok(reports)
}

/// A folder is a repository root (rather than a jobs folder) if it has a
/// jobs folder, or looks like a checkout; a checkout without one has no
/// jobs, which is valid.
fn is_repo_root(dir: &Path) -> bool {
    dir.join(JOBS_DIR).is_dir() || dir.join(".git").exists() || dir.join(".github").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, name: &str, text: &str) -> PathBuf {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    const BUILD: &str = "#!/bin/bash\n#:\n#: name = \"build\"\n#: variety = \"basic\"\n#:\nmake\n";
    const TEST: &str =
        "#!/bin/bash\n#: name = \"test\"\n#: variety = \"basic\"\n#: [dependencies.b]\n#: job = \"build\"\n";

    #[test]
    fn repository_root() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), ".github/buildomat/jobs/test.sh", TEST);
        write(root.path(), ".github/buildomat/jobs/build.sh", BUILD);
        let r = check_paths(&[root.path().to_path_buf()]).unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].ok);
        assert_eq!(r[0].verdict(), "ok: 2 jobs (build, test)");
    }

    #[test]
    fn errors_are_located() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), ".github/buildomat/jobs/build.sh", &BUILD.replace("name =", "nmae ="));
        write(root.path(), ".github/buildomat/jobs/README", "hi");
        let r = check_paths(&[root.path().to_path_buf()]).unwrap();
        assert!(!r[0].ok);
        assert_eq!(r[0].verdict(), "invalid: 2 errors");
        let first = r[0].errors[0].to_string();
        assert!(
            first.ends_with(
                "/.github/buildomat/jobs/README: unexpected file in the jobs folder: it may hold only `*.sh` job files"
            ),
            "{first}"
        );
        let second = r[0].errors[1].to_string();
        assert!(second.contains("/.github/buildomat/jobs/build.sh:3: unknown field `nmae`"), "{second}");
    }

    #[test]
    fn loose_files_are_a_partial_set() {
        let root = tempfile::tempdir().unwrap();
        let test = write(root.path(), "test.sh", TEST);
        let r = check_paths(&[test]).unwrap();
        assert_eq!(r[0].verdict(), "ok: 1 job (test)");
        let other = write(root.path(), "notes.txt", "x");
        let r = check_paths(&[other]).unwrap();
        assert!(!r[0].ok);
    }

    #[test]
    fn a_checkout_without_jobs_has_none() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(".git")).unwrap();
        let r = check_paths(&[root.path().to_path_buf()]).unwrap();
        assert_eq!(r[0].verdict(), "ok: 0 jobs");
        assert!(check_paths(&[root.path().join("missing")]).is_err());
    }

    #[test]
    fn json_lists_jobs_and_errors() {
        let root = tempfile::tempdir().unwrap();
        let build = write(root.path(), "jobs/build.sh", BUILD);
        let r = check_paths(&[build.parent().unwrap().to_path_buf()]).unwrap();
        let v = serde_json::to_value(JsonReport { ok: true, sets: &r }).unwrap();
        assert_eq!(v["sets"][0]["jobs"][0]["name"], "build");
        assert_eq!(v["sets"][0]["jobs"][0]["script"], BUILD);
        write(root.path(), "jobs/x.sh", "echo\n");
        let r = check_paths(&[build.parent().unwrap().to_path_buf()]).unwrap();
        let v = serde_json::to_value(JsonReport { ok: false, sets: &r }).unwrap();
        assert_eq!(v["sets"][0]["errors"][0]["line"], 1);
    }
}
