//! GitHub side of bm: reading what a repository asks for.
//!
//! Job files (`.github/buildomat/jobs/*.sh`) and the repository
//! configuration (`.github/buildomat/config.toml`) are parsed here exactly
//! as buildomat parses them, so existing buildomat repositories run on bm
//! unchanged, and checked more strictly, with every error located at the
//! `path:line` to fix. `bm jobfile check`, `bm local run` and the node all
//! use this crate, so a job file means the same thing everywhere.
//!
//! - [`jobfile`]: one job file → [`JobFile`].
//! - [`jobset`]: a commit's jobs folder → [`JobSet`] in topological order.
//! - [`repo_config`]: `config.toml` → [`RepoConfig`].

mod frontmatter;
mod glob;
pub mod jobfile;
pub mod jobset;
pub mod repo_config;
mod warning;

pub use jobfile::{
    parse_job_file, Dependency, JobFile, JobFileError, JobFileErrorKind, ParsedJobFile, Publish, RustToolchain, Variety,
};
pub use jobset::{
    load_jobs_dir, load_repo, DisabledJob, JobSet, JobSetBuilder, JobSetError, JobSetErrorKind, JobSetErrors,
    LoadedJobSet, UnknownJobsError, JOBS_DIR, MAX_JOBS,
};
pub use repo_config::{RepoConfig, RepoConfigError, REPO_CONFIG_PATH};
pub use warning::Warning;
