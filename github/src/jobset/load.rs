//! Reading a jobs folder from a checkout on disk (`bm jobfile check`,
//! `bm local run`). The node reads the same folder through the GitHub API
//! and feeds a [`JobSetBuilder`] itself.

use std::fs;
use std::path::{Path, PathBuf};

use super::builder::JobSetBuilder;
use super::error::{JobSetError, JobSetErrorKind, JobSetErrors};
use super::LoadedJobSet;

/// Where a repository keeps its job files, relative to its root.
pub const JOBS_DIR: &str = ".github/buildomat/jobs";

/// Loads the jobs of a checkout. Like buildomat, a repository without a
/// jobs folder has no jobs (an empty, valid set).
pub fn load_repo(root: &Path) -> Result<LoadedJobSet, JobSetErrors> {
    let dir = root.join(JOBS_DIR);
    if !dir.exists() {
        return JobSetBuilder::new().finish();
    }
    load_jobs_dir(&dir)
}

/// Loads every entry of a jobs folder as one set. Files are named in
/// messages as `dir/NAME`, so they can be opened from where the caller is.
pub fn load_jobs_dir(dir: &Path) -> Result<LoadedJobSet, JobSetErrors> {
    let entries = match fs::read_dir(dir).and_then(|rd| rd.collect::<Result<Vec<_>, _>>()) {
        Ok(entries) => entries,
        Err(e) => {
            let error = JobSetError::at(&display(dir), None, JobSetErrorKind::Read(e.to_string()));
            return Err(JobSetErrors { errors: vec![error], warnings: Vec::new() });
        }
    };
    let mut names: Vec<_> = entries.into_iter().map(|e| e.file_name()).collect();
    names.sort();
    let mut builder = JobSetBuilder::new();
    for name in names {
        builder.add_path(&dir.join(&name));
    }
    builder.finish()
}

impl JobSetBuilder {
    /// Adds one entry of a jobs folder on disk: a `*.sh` file is read and
    /// parsed, anything else refused. Symbolic links are followed.
    pub fn add_path(&mut self, path: &Path) {
        let shown = display(path);
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => self.add_unexpected(&shown, true),
            Ok(m) if !m.is_file() => self.add_unexpected(&shown, false),
            Ok(_) if !shown.ends_with(".sh") => self.add_unexpected(&shown, false),
            Ok(_) => match fs::read(path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => self.add_file(&shown, &text),
                    Err(_) => self.add_unreadable(&shown, "not UTF-8 text"),
                },
                Err(e) => self.add_unreadable(&shown, e.to_string()),
            },
            Err(e) => self.add_unreadable(&shown, e.to_string()),
        }
    }
}

/// A path as people type it: without a leading `./`.
fn display(path: &Path) -> String {
    let p: PathBuf = path.strip_prefix(".").map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf());
    p.display().to_string()
}
