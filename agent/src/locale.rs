//! The spec promises `LANG=en_US.UTF-8`. Many minimal systems only have
//! `C.UTF-8`, and then every shell warns that it cannot set the locale.
//! When `en_US.UTF-8` is missing, the agent offers `C.UTF-8` under that
//! name through `LOCPATH` (a folder of two symbolic links in `/tmp`), so the
//! promised names work and mean UTF-8.

use std::path::Path;
use std::process::Command;

use crate::run::Layout;

/// Where the stand-in locale lives, inside the worker.
const DIR: &str = "/tmp/.bm-locale";
/// The system's built-in UTF-8 locale.
const C_UTF8: &str = "/usr/lib/locale/C.utf8";

/// `("LOCPATH", DIR)` when the stand-in was needed and made.
pub fn stand_in(layout: &Layout) -> Option<(String, String)> {
    if has_en_us() || !layout.path(C_UTF8).is_dir() {
        return None;
    }
    let dir = layout.path(DIR);
    std::fs::create_dir_all(&dir).ok()?;
    for name in ["en_US.UTF-8", "en_US.utf8"] {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(C_UTF8), &link).ok()?;
        }
    }
    Some(("LOCPATH".into(), DIR.into()))
}

fn has_en_us() -> bool {
    Command::new("locale")
        .arg("-a")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.eq_ignore_ascii_case("en_US.utf8")))
        .unwrap_or(false)
}
