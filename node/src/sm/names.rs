//! What a name may look like, in one place.

/// Names of users, targets and factories: 1 to 64 of `[A-Za-z0-9._-]`,
/// not starting with `.` or `-` (they end up in paths and command lines).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(['.', '-'])
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names() {
        assert!(valid_name("alice"));
        assert!(valid_name("ubuntu-22.04"));
        assert!(!valid_name(""));
        assert!(!valid_name("../etc"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("-rf"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
