//! `.github/buildomat/config.toml`: the repository's consent and policy.
//! Nothing runs for a repository unless its default branch says
//! `enable = true`, and `org_only` / `allow_users` decide whose pull
//! requests run without approval. The node reads it from the default
//! branch only, never from the commit under test.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where the file lives, relative to the repository root.
pub const REPO_CONFIG_PATH: &str = ".github/buildomat/config.toml";

/// The repository-level configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Must be present and `true` for bm to act on the repository.
    pub enable: bool,
    /// `true` (the default): pull requests from users outside the owning
    /// organisation need approval before their jobs run.
    #[serde(default = "yes")]
    pub org_only: bool,
    /// GitHub logins whose jobs run without approval regardless of
    /// `org_only` (e.g. `dependabot[bot]`).
    #[serde(default)]
    pub allow_users: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for RepoConfig {
    /// What a repository without the file gets: disabled, as in buildomat.
    fn default() -> Self {
        RepoConfig { enable: false, org_only: true, allow_users: Vec::new() }
    }
}

/// The file could not be accepted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{path}:{line}: {message}")]
pub struct RepoConfigError {
    /// The file as the caller named it.
    pub path: String,
    /// The 1-based line of the mistake.
    pub line: usize,
    /// What is wrong (the TOML parser's message, or a check's).
    pub message: String,
}

impl RepoConfig {
    /// Parses the file's text; `path` is used only in errors.
    pub fn parse(path: &str, text: &str) -> Result<RepoConfig, RepoConfigError> {
        let error = |offset: usize, message: String| {
            let offset = offset.min(text.len());
            let line = 1 + text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count();
            RepoConfigError { path: path.to_string(), line, message }
        };
        let config: RepoConfig = toml::from_str(text)
            .map_err(|e| error(e.span().map_or(0, |s| s.start), e.message().trim_end().to_string()))?;
        if let Some(bad) = config.allow_users.iter().find(|u| u.trim().is_empty()) {
            let at = text.find("allow_users").unwrap_or(0);
            return Err(error(at, format!("allow_users entry {bad:?} must be a GitHub login")));
        }
        Ok(config)
    }

    /// Whether pull requests by `login` may run without approval, given
    /// whether they belong to the owning organisation.
    pub fn trusts(&self, login: &str, is_org_member: bool) -> bool {
        !self.org_only || is_org_member || self.allow_users.iter().any(|u| u.eq_ignore_ascii_case(login))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = ".github/buildomat/config.toml";

    #[test]
    fn spec_and_buildomat_examples() {
        let c = RepoConfig::parse(
            PATH,
            "#\n# comment\n#\nenable = true\n\norg_only = true\n\nallow_users = [\n\t\"dependabot[bot]\",\n\t\"renovate[bot]\",\n]\n",
        )
        .unwrap();
        assert_eq!(
            c,
            RepoConfig {
                enable: true,
                org_only: true,
                allow_users: vec!["dependabot[bot]".into(), "renovate[bot]".into()]
            }
        );
        let c = RepoConfig::parse(PATH, "enable = true\n").unwrap();
        assert!(c.enable && c.org_only && c.allow_users.is_empty());
        assert!(!RepoConfig::parse(PATH, "enable = false\norg_only = false\n").unwrap().enable);
        assert!(!RepoConfig::default().enable);
    }

    #[test]
    fn enable_is_required() {
        let e = RepoConfig::parse(PATH, "org_only = false\n").unwrap_err();
        assert!(e.to_string().contains("missing field `enable`"), "{e}");
        assert!(e.to_string().starts_with(".github/buildomat/config.toml:1: "), "{e}");
    }

    #[test]
    fn unknown_keys_and_wrong_types() {
        let e = RepoConfig::parse(PATH, "enable = true\n\norgonly = false\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.starts_with("unknown field `orgonly`"), "{e}");
        let e = RepoConfig::parse(PATH, "enable = \"yes\"\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("invalid type"), "{e}");
        let e = RepoConfig::parse(PATH, "enable = true\nallow_users = [\n 3,\n]\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = RepoConfig::parse(PATH, "enable = true\nallow_users = [\"\"]\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = RepoConfig::parse(PATH, "enable = true\nenable = true\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn trust() {
        let c = RepoConfig { enable: true, org_only: true, allow_users: vec!["dependabot[bot]".into()] };
        assert!(c.trusts("someone", true));
        assert!(!c.trusts("someone", false));
        assert!(c.trusts("Dependabot[bot]", false));
        let open = RepoConfig { org_only: false, ..c };
        assert!(open.trusts("someone", false));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            let _ = RepoConfig::parse(PATH, &text);
        }
    }
}
