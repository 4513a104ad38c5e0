//! The commit under test, served to the sandboxes over `git daemon` on
//! loopback (sandboxes share the host's network, not its files).
//!
//! A repository root is served as it is, at HEAD. Any other folder counts
//! as a commit of its files as they are: they are committed into a
//! temporary repository first.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// A served commit.
pub struct Source {
    /// `owner/repo` for `GITHUB_REPOSITORY`.
    pub repository: String,
    /// The commit id.
    pub sha: String,
    /// The branch, when HEAD is on one.
    pub branch: Option<String>,
    /// Where sandboxes clone it from.
    pub url: String,
    daemon: Child,
    _tmp: Option<tempfile::TempDir>,
}

async fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await
        .context("cannot run git (bm local run needs git to give jobs their clone)")?;
    if !out.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `owner/repo` from a GitHub remote URL, if it is one.
pub fn github_repository(url: &str) -> Option<String> {
    let rest = url.split_once("github.com").map(|(_, r)| r)?;
    let rest = rest.trim_start_matches([':', '/']).trim_end_matches('/').trim_end_matches(".git");
    let mut parts = rest.split('/');
    let (o, r) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && !o.is_empty() && !r.is_empty()).then(|| format!("{o}/{r}"))
}

impl Source {
    /// Serves the commit under test found at `root`.
    pub async fn prepare(root: &Path) -> anyhow::Result<Self> {
        let is_root =
            git(root, &["rev-parse", "--show-toplevel"]).await.ok().map(PathBuf::from).as_deref() == Some(root);
        let dirname = root.file_name().and_then(|n| n.to_str()).unwrap_or("repo").to_string();
        let (repo_dir, tmp) = if is_root {
            (root.to_path_buf(), None)
        } else {
            let tmp = tempfile::tempdir()?;
            let d = tmp.path().join(&dirname);
            std::fs::create_dir_all(&d)?;
            git(&d, &["init", "--quiet"]).await?;
            let wt = format!("--work-tree={}", root.display());
            git(&d, &[&wt, "add", "--all", "."]).await?;
            git(
                &d,
                &["-c", "user.name=bm", "-c", "user.email=bm@localhost", "commit", "--quiet", "-m", "bm local run"],
            )
            .await?;
            (d, Some(tmp))
        };
        let sha = git(&repo_dir, &["rev-parse", "HEAD"]).await.context("the repository has no commit yet")?;
        let branch = git(&repo_dir, &["symbolic-ref", "--short", "-q", "HEAD"]).await.ok().filter(|b| !b.is_empty());
        let repository =
            match git(&repo_dir, &["remote", "get-url", "origin"]).await.ok().and_then(|u| github_repository(&u)) {
                Some(r) => r,
                None => format!("local/{dirname}"),
            };
        let port = bm_node::cluster::ports::free_tcp([127, 0, 0, 1].into())?.port();
        let base = repo_dir.parent().context("repository has no parent folder")?.to_path_buf();
        let name = repo_dir.file_name().and_then(|n| n.to_str()).context("repository folder name")?.to_string();
        let daemon = Command::new("git")
            .args(["daemon", "--reuseaddr", "--listen=127.0.0.1", &format!("--port={port}"), "--export-all"])
            .arg(format!("--base-path={}", base.display()))
            .arg(&repo_dir)
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start git daemon")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("git daemon did not start on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { repository, sha, branch, url: format!("git://127.0.0.1:{port}/{name}"), daemon, _tmp: tmp })
    }

    /// Stops serving.
    pub async fn stop(mut self) {
        let _ = self.daemon.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::github_repository;

    #[test]
    fn github_remotes() {
        assert_eq!(
            github_repository("git@github.com:oxidecomputer/buildomat.git").as_deref(),
            Some("oxidecomputer/buildomat")
        );
        assert_eq!(
            github_repository("https://github.com/oxidecomputer/buildomat").as_deref(),
            Some("oxidecomputer/buildomat")
        );
        assert_eq!(github_repository("https://example.com/a/b"), None);
    }
}
