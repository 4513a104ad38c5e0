//! Turns a job's output rules into the list of files to upload, by walking
//! the worker's file system once the job program has exited.
//!
//! Choices, each to keep the walk bounded and inside its place:
//! - Only regular files are collected.
//! - Every pattern is read relative to `root`, which is `/` in a worker and
//!   a temporary directory in tests.
//! - `/proc`, `/sys`, `/dev`, `/devices` and `/system` (illumos' contract
//!   and object file systems) are never entered and never read, even
//!   through a symlink, even when a rule names them literally: their
//!   "files" are views of live kernel state, not artefacts.
//! - Symlinks in a pattern's literal directory prefix are followed (as the
//!   shell would), a symlink to a file is followed, but a symlinked
//!   directory met while expanding a wildcard is not entered, so `**` can
//!   never loop. Nothing whose real path leaves `root` is collected.
//! - The walk stops with an error past [`CollectOptions::max_files`] planned
//!   files or [`CollectOptions::max_entries`] directory entries examined,
//!   rather than upload or scan without end.
//! - Problems that lose one file or directory (an unreadable directory, a
//!   symlink out of `root`, a name that is not UTF-8) are warnings in the
//!   plan, not errors: the rest still uploads, and the author is told.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bm_api::output_rule::OutputRule;
use thiserror::Error;

use super::rules::{BadRule, MustMatchFailure, RuleSet};

/// Worker directories that hold kernel state rather than files.
pub const PSEUDO_FILESYSTEMS: &[&str] = &["/proc", "/sys", "/dev", "/devices", "/system"];

/// Bounds on one collection, so a rule such as `/**/*` fails clearly
/// instead of uploading a whole disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectOptions {
    /// Most files a plan may hold (after exclusions).
    pub max_files: usize,
    /// Most directory entries the walk may look at.
    pub max_entries: usize,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions { max_files: 10_000, max_entries: 1_000_000 }
    }
}

/// Why no plan could be made at all; the job's outputs are then lost, so
/// the caller fails the job with this message.
#[derive(Debug, Error)]
pub enum CollectError {
    /// A rule's pattern cannot be compiled.
    #[error(transparent)]
    BadRule(#[from] BadRule),
    /// The root itself cannot be resolved.
    #[error("output root {path:?}: {source}")]
    Root {
        /// The root as given.
        path: PathBuf,
        /// Why it could not be resolved.
        source: io::Error,
    },
    /// The rules match more files than may be uploaded.
    #[error("the output rules match more than {limit} files; narrow them (for example with '!' rules)")]
    TooManyFiles {
        /// [`CollectOptions::max_files`].
        limit: usize,
    },
    /// The rules make the walk look at too much of the file system.
    #[error(
        "the output rules make the agent look at more than {limit} directory entries; \
         give them a longer literal prefix (e.g. /work/out/**/*.log rather than /**/*.log)"
    )]
    TooManyEntries {
        /// [`CollectOptions::max_entries`].
        limit: usize,
    },
}

/// One file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// The absolute path as the job saw it, e.g. `/tmp/a.txt`; this is the
    /// output's name.
    pub path: String,
    /// Where to read it on this host: the real path below `root`, with
    /// symlinks resolved.
    pub host_path: PathBuf,
    /// Some matching rule carries `%`.
    pub allow_change: bool,
    /// Size when planned; the upload checks it has not changed.
    pub size: u64,
    /// Modification time when planned; likewise.
    pub mtime: SystemTime,
}

/// The result of applying the rules: what to upload and what already failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Files to upload, sorted by [`PlannedFile::path`].
    pub files: Vec<PlannedFile>,
    /// `=` rules no planned file satisfies. A `%` file that vanishes before
    /// its upload can add more; recheck with
    /// [`RuleSet::unmet_must_match`] on the files actually uploaded.
    pub must_match_failures: Vec<MustMatchFailure>,
    /// Files or directories that were skipped for a reason the author
    /// should see, sorted.
    pub warnings: Vec<String>,
}

/// Applies `rules` to the file system below `root` with default limits.
pub fn plan(rules: &[OutputRule], root: &Path) -> Result<Plan, CollectError> {
    plan_with(&RuleSet::new(rules)?, root, &CollectOptions::default())
}

/// Applies compiled `rules` to the file system below `root`.
pub fn plan_with(rules: &RuleSet, root: &Path, options: &CollectOptions) -> Result<Plan, CollectError> {
    let root = fs::canonicalize(root).map_err(|source| CollectError::Root { path: root.to_path_buf(), source })?;
    let mut walk = Walk { rules, root: &root, options, files: BTreeMap::new(), warnings: Vec::new(), entries: 0 };
    for start in rules.walk_roots() {
        walk.from(&start)?;
    }
    let files: Vec<PlannedFile> = walk.files.into_values().collect();
    let must_match_failures = rules.unmet_must_match(files.iter().map(|f| f.path.as_str()));
    let mut warnings = walk.warnings;
    warnings.sort();
    warnings.dedup();
    Ok(Plan { files, must_match_failures, warnings })
}

struct Walk<'a> {
    rules: &'a RuleSet,
    root: &'a Path,
    options: &'a CollectOptions,
    files: BTreeMap<String, PlannedFile>,
    warnings: Vec<String>,
    entries: usize,
}

impl Walk<'_> {
    /// Walks from the worker directory `start`, a pattern's literal prefix.
    fn from(&mut self, start: &str) -> Result<(), CollectError> {
        if is_pseudo(start) {
            return Ok(());
        }
        // The prefix may pass through symlinks; its real path must stay in
        // root and out of the pseudo file systems.
        let host = match fs::canonicalize(self.host(start)) {
            Ok(host) => host,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                self.warnings.push(format!("{start}: {e}"));
                return Ok(());
            }
        };
        if !self.inside(&host) {
            self.warnings.push(format!("{start}: leads outside the file system root; not followed"));
            return Ok(());
        }
        if !host.is_dir() {
            return Ok(());
        }
        let mut stack = vec![(start.to_string(), host)];
        while let Some((dir, host_dir)) = stack.pop() {
            self.directory(&dir, &host_dir, &mut stack)?;
        }
        Ok(())
    }

    /// Looks at one directory's entries, planning files and queueing the
    /// directories worth entering.
    fn directory(
        &mut self,
        dir: &str,
        host_dir: &Path,
        stack: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), CollectError> {
        let read = match fs::read_dir(host_dir) {
            Ok(read) => read,
            Err(e) => {
                self.warnings.push(format!("{dir}: cannot list: {e}"));
                return Ok(());
            }
        };
        for entry in read {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.warnings.push(format!("{dir}: cannot list: {e}"));
                    return Ok(());
                }
            };
            self.entries += 1;
            if self.entries > self.options.max_entries {
                return Err(CollectError::TooManyEntries { limit: self.options.max_entries });
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                self.warnings.push(format!("{dir}: skipped {:?}: the name is not UTF-8", entry.file_name()));
                continue;
            };
            let path = if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") };
            if is_pseudo(&path) {
                continue;
            }
            let host_path = host_dir.join(&name);
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                if self.rules.may_want_below(&path) {
                    stack.push((path, host_path));
                }
            } else if kind.is_file() {
                self.file(path, host_path)?;
            } else if kind.is_symlink() && self.rules.wants(&path).is_some() {
                self.symlink(path, &host_path)?;
            }
        }
        Ok(())
    }

    /// A symlink that a rule matches: collected if it leads to a regular
    /// file inside root.
    fn symlink(&mut self, path: String, host_path: &Path) -> Result<(), CollectError> {
        let target = match fs::canonicalize(host_path) {
            Ok(target) => target,
            Err(_) => return Ok(()), // dangling: nothing to upload
        };
        if !self.inside(&target) || self.worker_path(&target).is_some_and(|w| is_pseudo(&w)) {
            self.warnings
                .push(format!("{path}: a symlink that leads outside the uploadable file system; not followed"));
            return Ok(());
        }
        if target.is_file() {
            self.file(path, target)?;
        }
        Ok(())
    }

    fn file(&mut self, path: String, host_path: PathBuf) -> Result<(), CollectError> {
        let Some(wanted) = self.rules.wants(&path) else { return Ok(()) };
        let meta = match fs::metadata(&host_path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                self.warnings.push(format!("{path}: {e}"));
                return Ok(());
            }
        };
        if self.files.contains_key(&path) {
            return Ok(());
        }
        if self.files.len() >= self.options.max_files {
            return Err(CollectError::TooManyFiles { limit: self.options.max_files });
        }
        let planned = PlannedFile {
            path: path.clone(),
            host_path,
            allow_change: wanted.allow_change,
            size: meta.len(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        };
        self.files.insert(path, planned);
        Ok(())
    }

    fn host(&self, worker: &str) -> PathBuf {
        let mut host = self.root.to_path_buf();
        host.extend(worker.split('/').filter(|c| !c.is_empty()));
        host
    }

    fn inside(&self, host: &Path) -> bool {
        host.starts_with(self.root)
    }

    /// The worker path of a real host path inside root.
    fn worker_path(&self, host: &Path) -> Option<String> {
        let rel = host.strip_prefix(self.root).ok()?;
        let mut worker = String::new();
        for c in rel.components() {
            worker.push('/');
            worker.push_str(c.as_os_str().to_str()?);
        }
        Some(if worker.is_empty() { "/".into() } else { worker })
    }
}

/// Whether `path` is, or is below, one of [`PSEUDO_FILESYSTEMS`].
pub fn is_pseudo(path: &str) -> bool {
    PSEUDO_FILESYSTEMS.iter().any(|p| path == *p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::{is_pseudo, plan, plan_with, CollectError, CollectOptions, Plan};
    use crate::outputs::rules::{MustMatchFailure, RuleSet};
    use bm_api::output_rule::OutputRule;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::fs;
    use std::path::Path;

    fn rules(rules: &[&str]) -> Vec<OutputRule> {
        rules.iter().map(|r| OutputRule::parse(r).unwrap()).collect()
    }

    /// Creates files (and their directories) below `root`.
    fn touch(root: &Path, paths: &[&str]) {
        for p in paths {
            let host = root.join(p.trim_start_matches('/'));
            fs::create_dir_all(host.parent().unwrap()).unwrap();
            fs::write(&host, p.as_bytes()).unwrap();
        }
    }

    fn paths(plan: &Plan) -> Vec<&str> {
        plan.files.iter().map(|f| f.path.as_str()).collect()
    }

    fn run(root: &Path, r: &[&str]) -> Plan {
        plan(&rules(r), root).unwrap()
    }

    #[test]
    fn star_txt_takes_something_txt_not_nothing_png() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/something.txt", "/tmp/nothing.png"]);
        let p = run(t.path(), &["/tmp/*.txt"]);
        assert_eq!(paths(&p), ["/tmp/something.txt"]);
        let f = &p.files[0];
        assert_eq!(f.host_path, fs::canonicalize(t.path()).unwrap().join("tmp/something.txt"));
        assert_eq!(f.size, "/tmp/something.txt".len() as u64);
        assert!(!f.allow_change);
        assert!(p.must_match_failures.is_empty() && p.warnings.is_empty());
    }

    #[test]
    fn single_star_does_not_descend() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/a.txt", "/tmp/dir/b.txt"]);
        assert_eq!(paths(&run(t.path(), &["/tmp/*.txt"])), ["/tmp/a.txt"]);
        assert_eq!(paths(&run(t.path(), &["/tmp/*"])), ["/tmp/a.txt"], "directories are not files");
    }

    #[test]
    fn double_star_reaches_every_depth() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/a.txt", "/tmp/dir/a.txt", "/tmp/dir/dir/a.txt", "/tmp/dir/a.png", "/var/a.txt"]);
        assert_eq!(paths(&run(t.path(), &["/tmp/**/*.txt"])), ["/tmp/a.txt", "/tmp/dir/a.txt", "/tmp/dir/dir/a.txt"]);
        assert!(run(t.path(), &["/tmp/**"]).files.is_empty(), "** matches directories, not files");
    }

    #[test]
    fn hidden_files_are_collected() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/.coverage", "/tmp/.cache/x.log"]);
        assert_eq!(paths(&run(t.path(), &["/tmp/*"])), ["/tmp/.coverage"]);
        assert_eq!(paths(&run(t.path(), &["/tmp/**/*.log"])), ["/tmp/.cache/x.log"]);
    }

    #[test]
    fn a_pattern_that_matches_nothing_is_fine() {
        let t = tempfile::tempdir().unwrap();
        let p = run(t.path(), &["/tmp/test_output/*"]);
        assert!(p.files.is_empty() && p.must_match_failures.is_empty() && p.warnings.is_empty());
    }

    #[test]
    fn must_match_without_a_match_fails_naming_the_rule() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/work/pkg/important.tar.gz"]);
        let p = run(t.path(), &["=/work/pkg/important.tar.gz", "=/work/pkg/important.sha256.txt"]);
        assert_eq!(paths(&p), ["/work/pkg/important.tar.gz"]);
        assert_eq!(p.must_match_failures, [MustMatchFailure { rule: "=/work/pkg/important.sha256.txt".into() }]);
        assert!(p.must_match_failures[0].to_string().contains("=/work/pkg/important.sha256.txt"));
    }

    #[test]
    fn must_match_with_a_match_passes() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/work/pkg/important.tar.gz", "/work/pkg/important.sha256.txt"]);
        let p = run(t.path(), &["=/work/pkg/important.tar.gz", "=/work/pkg/important.sha256.txt"]);
        assert_eq!(paths(&p).len(), 2);
        assert!(p.must_match_failures.is_empty());
    }

    #[test]
    fn everything_in_tmp_except_pictures() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/a.txt", "/tmp/b.log", "/tmp/cat.jpg", "/tmp/dog.jpg"]);
        assert_eq!(paths(&run(t.path(), &["/tmp/*", "!/tmp/*.jpg"])), ["/tmp/a.txt", "/tmp/b.log"]);
    }

    #[test]
    fn must_match_counts_only_files_left_after_exclusions() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/big-and-useless.log"]);
        let r = ["=%/tmp/*.log", "!/tmp/big-and-useless.log"];
        let p = run(t.path(), &r);
        assert!(p.files.is_empty());
        assert_eq!(p.must_match_failures, [MustMatchFailure { rule: "=%/tmp/*.log".into() }]);

        touch(t.path(), &["/tmp/server.log"]);
        let p = run(t.path(), &r);
        assert_eq!(paths(&p), ["/tmp/server.log"]);
        assert!(p.files[0].allow_change);
        assert!(p.must_match_failures.is_empty());
    }

    #[test]
    fn overlapping_rules_plan_a_file_once() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/a/x.log", "/tmp/b.log"]);
        let p = run(t.path(), &["/tmp/**/*.log", "%/tmp/a/*.log", "/tmp/a/x.log"]);
        assert_eq!(paths(&p), ["/tmp/a/x.log", "/tmp/b.log"]);
        assert!(p.files[0].allow_change && !p.files[1].allow_change);
    }

    #[test]
    fn order_does_not_matter() {
        let t = tempfile::tempdir().unwrap();
        touch(
            t.path(),
            &["/tmp/a.txt", "/tmp/b.jpg", "/tmp/d/c.txt", "/tmp/d/big-and-useless.log", "/tmp/x.log", "/work/o.zip"],
        );
        let all = [
            "/tmp/*",
            "!/tmp/*.jpg",
            "=%/tmp/*.log",
            "!/tmp/**/big-and-useless.log",
            "/tmp/**/*.log",
            "=/work/*.zip",
            "=/work/missing",
            "%/tmp/d/*",
        ];
        let expected = run(t.path(), &all);
        assert_eq!(paths(&expected), ["/tmp/a.txt", "/tmp/d/c.txt", "/tmp/x.log", "/work/o.zip"]);
        assert_eq!(expected.must_match_failures, [MustMatchFailure { rule: "=/work/missing".into() }]);
        let mut runner = TestRunner::new(Config { cases: 64, ..Config::default() });
        runner
            .run(&Just(all.to_vec()).prop_shuffle(), |shuffled| {
                prop_assert_eq!(&run(t.path(), &shuffled), &expected);
                Ok(())
            })
            .unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_not_followed() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        touch(outside.path(), &["/secret.txt", "/dir/secret.txt"]);
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/real.txt"]);
        symlink(outside.path().join("secret.txt"), t.path().join("tmp/file-link.txt")).unwrap();
        symlink(outside.path().join("dir"), t.path().join("tmp/dir-link")).unwrap();
        symlink(outside.path(), t.path().join("out")).unwrap();
        let p = run(t.path(), &["/tmp/**/*.txt", "/tmp/dir-link/*.txt", "/out/*.txt"]);
        assert_eq!(paths(&p), ["/tmp/real.txt"]);
        assert!(p.warnings.iter().any(|w| w.contains("/tmp/file-link.txt")), "{:?}", p.warnings);
        assert!(p.warnings.iter().any(|w| w.contains("/tmp/dir-link")), "{:?}", p.warnings);
        assert!(p.warnings.iter().any(|w| w.starts_with("/out")), "{:?}", p.warnings);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_inside_the_root_are_followed_but_wildcards_do_not_enter_linked_directories() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/data/pkg/a.tar.gz", "/data/log/x.log"]);
        fs::create_dir_all(t.path().join("work")).unwrap();
        symlink(t.path().join("data/pkg"), t.path().join("work/pkg")).unwrap();
        symlink(t.path().join("data/pkg/a.tar.gz"), t.path().join("work/latest.tar.gz")).unwrap();
        // A cycle that `**` must not chase.
        symlink(t.path().join("data"), t.path().join("data/log/loop")).unwrap();

        let p = run(t.path(), &["=/work/pkg/*.tar.gz", "/work/latest.tar.gz", "/data/**/*.log"]);
        assert_eq!(paths(&p), ["/data/log/x.log", "/work/latest.tar.gz", "/work/pkg/a.tar.gz"]);
        let real = fs::canonicalize(t.path()).unwrap().join("data/pkg/a.tar.gz");
        assert_eq!(p.files[1].host_path, real);
        assert_eq!(p.files[2].host_path, real);
        assert!(p.must_match_failures.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_collected() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/a.txt"]);
        fs::create_dir_all(t.path().join("tmp/d.txt")).unwrap();
        let fifo = t.path().join("tmp/fifo.txt");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        let p = run(t.path(), &["/tmp/*.txt"]);
        assert_eq!(paths(&p), ["/tmp/a.txt"], "fifo made: {status:?}");
    }

    #[test]
    fn pseudo_file_systems_are_never_entered() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/proc/1/status", "/sys/x", "/dev/null.txt", "/devs/x", "/a.txt"]);
        assert_eq!(paths(&run(t.path(), &["/**/*"])), ["/a.txt", "/devs/x"]);
        assert!(run(t.path(), &["/proc/1/status"]).files.is_empty());
        assert!(is_pseudo("/proc") && is_pseudo("/dev/null") && !is_pseudo("/devs") && !is_pseudo("/"));
    }

    #[test]
    fn too_many_files_is_a_clear_error() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/1", "/tmp/2", "/tmp/3"]);
        let set = RuleSet::new(&rules(&["/tmp/*"])).unwrap();
        let tight = CollectOptions { max_files: 2, ..CollectOptions::default() };
        let err = plan_with(&set, t.path(), &tight).unwrap_err();
        assert!(matches!(err, CollectError::TooManyFiles { limit: 2 }));
        assert!(err.to_string().contains("more than 2 files"), "{err}");
        let exact = CollectOptions { max_files: 3, ..CollectOptions::default() };
        assert_eq!(plan_with(&set, t.path(), &exact).unwrap().files.len(), 3);

        let set = RuleSet::new(&rules(&["/tmp/*", "!/tmp/[12]"])).unwrap();
        assert_eq!(plan_with(&set, t.path(), &tight).unwrap().files.len(), 1, "excluded files do not count");

        let few = CollectOptions { max_entries: 2, ..CollectOptions::default() };
        let err = plan_with(&set, t.path(), &few).unwrap_err();
        assert!(matches!(err, CollectError::TooManyEntries { limit: 2 }), "{err}");
    }

    #[test]
    fn walk_starts_at_the_literal_prefix() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["/tmp/a.txt", "/other/b.txt"]);
        let set = RuleSet::new(&rules(&["/tmp/*.txt"])).unwrap();
        // One entry (tmp/a.txt) is enough: nothing outside /tmp is looked at.
        let one = CollectOptions { max_entries: 1, ..CollectOptions::default() };
        assert_eq!(plan_with(&set, t.path(), &one).unwrap().files.len(), 1);
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let err = plan(&rules(&["/tmp/*"]), Path::new("/nonexistent/bm-agent-root")).unwrap_err();
        assert!(matches!(err, CollectError::Root { .. }), "{err}");
    }
}
