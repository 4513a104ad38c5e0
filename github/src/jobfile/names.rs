//! Checks on values that end up in paths and URLs (`/input/NAME`,
//! `/public/file/OWNER/REPO/SERIES/VERSION/NAME`, tokens for other
//! repositories), so a job file can never make bm write or serve outside
//! the place meant for it. Each check returns why a value is refused.

/// Longest `publish` series or name.
pub const MAX_PUBLISH_NAME: usize = 128;

/// Longest `publish.from_output` path, the same bound as output rules.
const MAX_PATH: usize = 4096;

/// Characters that make a path a glob in an output rule.
const WILDCARDS: &[char] = &['*', '?', '['];

/// A dependency name becomes the folder `/input/NAME` in the dependent job.
pub fn check_dependency_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("must not be empty")
    } else if name == "." || name == ".." {
        Err("must not be `.` or `..`; it names the folder /input/NAME")
    } else if name.contains('/') {
        Err("must not contain `/`; it names the folder /input/NAME")
    } else if name.chars().any(char::is_control) {
        Err("must not contain control characters")
    } else {
        Ok(())
    }
}

/// `from_output` names exactly one output file by its absolute path.
pub fn check_from_output(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        Err("must be an absolute path starting with `/`")
    } else if path.contains(WILDCARDS) {
        Err("must name one file, without wildcards (`*`, `?`, `[`)")
    } else if path.ends_with('/') {
        Err("must name a file, not a folder")
    } else if path[1..].split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        Err("must not have empty, `.` or `..` components")
    } else if path.chars().any(char::is_control) {
        Err("must not contain control characters")
    } else if path.len() > MAX_PATH {
        Err("is longer than 4096 bytes")
    } else {
        Ok(())
    }
}

/// `series` and `name` are single URL path segments: short, URL-safe, and
/// never `.` or `..`.
pub fn check_publish_name(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > MAX_PUBLISH_NAME {
        Err("must be 1 to 128 characters long")
    } else if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        Err("may hold only letters, digits, `.`, `_` and `-`")
    } else if value == "." || value == ".." {
        Err("must not be `.` or `..`")
    } else {
        Ok(())
    }
}

/// `owner/repository`, each a GitHub name (letters, digits, `.`, `_`, `-`).
pub fn is_repository(value: &str) -> bool {
    fn part(p: &str, max: usize) -> bool {
        !p.is_empty()
            && p.len() <= max
            && p != "."
            && p != ".."
            && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    }
    match value.split_once('/') {
        Some((owner, repo)) => part(owner, 39) && part(repo, 100),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_names() {
        assert!(check_dependency_name("otherjob").is_ok());
        assert!(check_dependency_name("the other job!").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a\nb"] {
            assert!(check_dependency_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn from_output_paths() {
        assert!(check_from_output("/work/important-packaged-files.tar.gz").is_ok());
        for bad in ["work/x", "/work/*.tar.gz", "/work/?", "/work/[ab]", "/work/", "/a//b", "/a/../b", "/a/./b", "/"] {
            assert!(check_from_output(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn publish_names() {
        for good in ["packages", "files.tar.gz", "a", "rot-all", "v1_2", "a..b"] {
            assert!(check_publish_name(good).is_ok(), "{good:?}");
        }
        let long = "x".repeat(129);
        for bad in ["", ".", "..", "../x", "a/b", "a b", "ü", long.as_str()] {
            assert!(check_publish_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repositories() {
        assert!(is_repository("oxidecomputer/clandestine-project"));
        assert!(is_repository("a_b/c.d"));
        for bad in ["oxidecomputer", "/x", "x/", "a/b/c", "a/..", "a b/c", ""] {
            assert!(!is_repository(bad), "{bad:?}");
        }
    }
}
