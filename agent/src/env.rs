//! The environment a job runs in, as the job-file reference promises it.

use std::collections::BTreeMap;

use bm_api::jobs::Job;

/// The unprivileged user jobs run as.
pub const BUILD_USER: &str = "build";
/// Its home.
pub const BUILD_HOME: &str = "/home/build";
/// PATH for jobs: the usual system directories, the user's cargo, and
/// `/usr/local/bin` first (where `pfexec`, `ptime`, `banner` and `bmat` live).
pub const JOB_PATH: &str = "/usr/local/bin:/home/build/.cargo/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// Tags a submitter sets to describe the commit under test.
pub mod tags {
    /// `owner/repository`.
    pub const REPOSITORY: &str = "github.repository";
    /// Commit id.
    pub const SHA: &str = "github.sha";
    /// Branch name, when the commit is on one.
    pub const BRANCH: &str = "github.branch";
    /// URL to clone the repository from.
    pub const CLONE_URL: &str = "clone.url";
    /// `true` to skip the clone (the job file's `skip_clone`).
    pub const SKIP_CLONE: &str = "clone.skip";
}

/// The working directory: `/work/OWNER/REPO` holding the clone, or `/work`
/// when there is no repository or the job skips the clone.
pub fn workdir(job: &Job) -> String {
    match (job.tags.get(tags::REPOSITORY), skip_clone(job)) {
        (Some(repo), false) if valid_repo(repo) => format!("/work/{repo}"),
        _ => "/work".to_string(),
    }
}

/// Whether the job asked not to be cloned.
pub fn skip_clone(job: &Job) -> bool {
    job.tags.get(tags::SKIP_CLONE).is_some_and(|v| v == "true")
}

/// `owner/repo` with safe characters only (it becomes a path).
pub fn valid_repo(s: &str) -> bool {
    let mut parts = s.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// The variables every job gets, before its task's own.
pub fn base_env(job: &Job) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_string(), v.to_string());
    };
    set("BUILDOMAT_JOB_ID", &job.id);
    set("CI", "true");
    set("HOME", BUILD_HOME);
    set("USER", BUILD_USER);
    set("LOGNAME", BUILD_USER);
    set("PATH", JOB_PATH);
    set("TZ", "UTC");
    set("LANG", "en_US.UTF-8");
    set("LC_ALL", "en_US.UTF-8");
    if let Some(r) = job.tags.get(tags::REPOSITORY) {
        set("GITHUB_REPOSITORY", r);
    }
    if let Some(s) = job.tags.get(tags::SHA) {
        set("GITHUB_SHA", s);
    }
    if let Some(b) = job.tags.get(tags::BRANCH) {
        set("GITHUB_BRANCH", b);
        set("GITHUB_REF", &format!("refs/heads/{b}"));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_that_would_escape_work_are_refused() {
        assert!(valid_repo("oxidecomputer/buildomat"));
        assert!(!valid_repo("../etc"));
        assert!(!valid_repo("a/../b"));
        assert!(!valid_repo("a/b/c"));
        assert!(!valid_repo("a"));
    }
}
