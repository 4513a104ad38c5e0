//! Profiles: which cluster to talk to and with which token, kept in a TOML
//! file so that commands need no flags in everyday use.
//!
//! ```toml
//! default_profile = "local"      # optional
//!
//! [profile.local]
//! urls = ["http://127.0.0.1:7070", "http://127.0.0.1:7071"]
//! token = "…"
//! ```
//!
//! The file lives at `$BM_CONFIG`, else `$XDG_CONFIG_HOME/bm/config.toml`,
//! else `~/.config/bm/config.toml`. It holds tokens, so it is written with
//! mode 0600.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The profile used when nothing else names one.
pub const DEFAULT_PROFILE: &str = "default";

/// The profile `bm up` writes for the cluster it starts.
pub const LOCAL_PROFILE: &str = "local";

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Profile to use when neither `-p` nor `BM_PROFILE` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    pub profile: BTreeMap<String, Profile>,
}

/// One cluster and the credentials to use with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Node URLs, tried in turn, so any live node serves the request.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Where the configuration file is, from the environment.
pub fn path() -> Result<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = env("BM_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let base = match env("XDG_CONFIG_HOME") {
        Some(x) => PathBuf::from(x),
        None => dirs::home_dir().ok_or_else(|| anyhow!("cannot find a home directory; set BM_CONFIG"))?.join(".config"),
    };
    Ok(base.join("bm").join("config.toml"))
}

/// Reads the configuration file at [`path`]; a missing file is an empty
/// configuration.
pub fn load() -> Result<(PathBuf, Config)> {
    let p = path()?;
    let c = load_from(&p)?;
    Ok((p, c))
}

/// Reads the configuration file at `p`; a missing file is an empty
/// configuration.
pub fn load_from(p: &Path) -> Result<Config> {
    match std::fs::read_to_string(p) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

impl Config {
    /// The name of the profile to use: `explicit` (from `-p` or
    /// `BM_PROFILE`), else `default_profile`, else `"default"`.
    pub fn profile_name(&self, explicit: Option<&str>) -> String {
        explicit.or(self.default_profile.as_deref()).unwrap_or(DEFAULT_PROFILE).to_string()
    }

    /// The profile to use (see [`Config::profile_name`]), or an error that
    /// says where the file is and how to make the profile.
    pub fn select(&self, explicit: Option<&str>, file: &Path) -> Result<(String, &Profile)> {
        let name = self.profile_name(explicit);
        match self.profile.get(&name) {
            Some(p) => Ok((name, p)),
            None => Err(missing_profile(&name, file, self)),
        }
    }
}

/// The error for a profile that is not in the file.
fn missing_profile(name: &str, file: &Path, cfg: &Config) -> anyhow::Error {
    let known = if !file.exists() {
        "the file does not exist".to_string()
    } else if cfg.profile.is_empty() {
        "it has no profiles".to_string()
    } else {
        format!("it has: {}", cfg.profile.keys().cloned().collect::<Vec<_>>().join(", "))
    };
    anyhow!(
        "no profile {name:?} in {} ({known}).\n\
         `bm up` starts a local cluster and writes a profile named {LOCAL_PROFILE:?} (use it with `-p {LOCAL_PROFILE}`);\n\
         or add one by hand:\n\n  [profile.{name}]\n  urls = [\"http://HOST:PORT\"]\n  token = \"TOKEN\"\n\n\
         or pass --url and --token.",
        file.display()
    )
}

/// Writes or replaces profile `name` in the configuration file, keeping
/// the other profiles, so that `bm up` can hand its cluster to later
/// commands. If the file names no usable default yet, `name` becomes the
/// default profile.
#[allow(dead_code, reason = "for `bm up`, still a stub")]
pub fn save_profile(name: &str, urls: &[String], token: Option<&str>) -> Result<PathBuf> {
    let p = path()?;
    save_profile_at(&p, name, urls, token)?;
    Ok(p)
}

/// [`save_profile`] to an explicit file.
#[allow(dead_code, reason = "for `bm up`, still a stub")]
pub fn save_profile_at(p: &Path, name: &str, urls: &[String], token: Option<&str>) -> Result<()> {
    if name.is_empty() {
        bail!("a profile needs a name");
    }
    let mut cfg = load_from(p)?;
    cfg.profile.insert(name.to_string(), Profile { urls: urls.to_vec(), token: token.map(str::to_string) });
    let has_default = match &cfg.default_profile {
        Some(d) => cfg.profile.contains_key(d),
        None => cfg.profile.contains_key(DEFAULT_PROFILE),
    };
    if !has_default {
        cfg.default_profile = Some(name.to_string());
    }
    let text = toml::to_string_pretty(&cfg).context("serialising the configuration")?;
    write_private(p, text.as_bytes()).with_context(|| format!("writing {}", p.display()))
}

/// Replaces `p` with `data` atomically (write a sibling, then rename), the
/// new file readable by its owner only.
#[allow(dead_code, reason = "for `bm up`, still a stub")]
fn write_private(p: &Path, data: &[u8]) -> Result<()> {
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = p.file_name().ok_or_else(|| anyhow!("{} is not a file path", p.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", file_name.to_string_lossy(), std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| -> Result<()> {
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, p)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_empty() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load_from(&d.path().join("nope.toml")).unwrap(), Config::default());
    }

    #[test]
    fn parses_the_documented_format() {
        let cfg: Config = toml::from_str(
            "default_profile = \"a\"\n[profile.a]\nurls = [\"http://x:1\", \"http://y:2\"]\ntoken = \"t\"\n",
        )
        .unwrap();
        let (name, p) = cfg.select(None, Path::new("f")).unwrap();
        assert_eq!(name, "a");
        assert_eq!(p.urls, ["http://x:1", "http://y:2"]);
        assert_eq!(p.token.as_deref(), Some("t"));
    }

    #[test]
    fn selection_order() {
        let mut cfg = Config::default();
        assert_eq!(cfg.profile_name(None), "default");
        cfg.default_profile = Some("d".into());
        assert_eq!(cfg.profile_name(None), "d");
        assert_eq!(cfg.profile_name(Some("e")), "e");
    }

    #[test]
    fn missing_profile_says_how_to_fix() {
        let err = Config::default().select(Some("prod"), Path::new("/etc/bm.toml")).unwrap_err().to_string();
        assert!(err.contains("\"prod\""), "{err}");
        assert!(err.contains("/etc/bm.toml"), "{err}");
        assert!(err.contains("bm up"), "{err}");
        assert!(err.contains("[profile.prod]"), "{err}");
    }

    #[test]
    fn save_keeps_other_profiles_and_is_private() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/dir/config.toml");
        save_profile_at(&p, "one", &["http://a".into()], Some("t1")).unwrap();
        save_profile_at(&p, "local", &["http://b".into(), "http://c".into()], Some("t2")).unwrap();
        save_profile_at(&p, "local", &["http://d".into()], Some("t3")).unwrap();
        let cfg = load_from(&p).unwrap();
        assert_eq!(cfg.default_profile.as_deref(), Some("one"));
        assert_eq!(cfg.profile["one"].token.as_deref(), Some("t1"));
        assert_eq!(cfg.profile["local"].urls, ["http://d"]);
        assert_eq!(cfg.profile["local"].token.as_deref(), Some("t3"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
