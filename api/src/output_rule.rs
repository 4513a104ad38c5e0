//! The `output_rules` syntax of job files, parsed in one place so that the
//! server refuses a bad rule at submission and the agent applies the same
//! meaning when it collects files.

use serde::{Deserialize, Serialize};

/// One parsed output rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRule {
    /// The `/`-anchored glob.
    pub pattern: String,
    /// `=`: the rule must match at least one file or the job fails.
    pub must_match: bool,
    /// `%`: the file may change or vanish while it is uploaded.
    pub allow_change: bool,
    /// `!`: files matching it are never uploaded.
    pub exclude: bool,
}

impl OutputRule {
    /// Parses a rule such as `=%/tmp/*.log` or `!/tmp/*.jpg`.
    pub fn parse(rule: &str) -> Result<Self, String> {
        let mut r = OutputRule { pattern: String::new(), must_match: false, allow_change: false, exclude: false };
        let mut rest = rule;
        loop {
            match rest.as_bytes().first() {
                Some(b'=') if !r.must_match => r.must_match = true,
                Some(b'%') if !r.allow_change => r.allow_change = true,
                Some(b'!') if !r.exclude => r.exclude = true,
                _ => break,
            }
            rest = &rest[1..];
        }
        if r.exclude && (r.must_match || r.allow_change) {
            return Err(format!("output rule {rule:?}: the '!' prefix cannot be combined with '=' or '%'"));
        }
        if !rest.starts_with('/') {
            return Err(format!("output rule {rule:?}: the pattern must be an absolute path starting with '/'"));
        }
        if rest.contains('\0') {
            return Err(format!("output rule {rule:?}: NUL is not allowed"));
        }
        if rest.split('/').any(|c| c == ".." || c == ".") {
            return Err(format!("output rule {rule:?}: '.' and '..' components are not allowed"));
        }
        if rest.len() > 4096 {
            return Err(format!("output rule {rule:?}: longer than 4096 bytes"));
        }
        r.pattern = rest.to_string();
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::OutputRule;

    #[test]
    fn prefixes() {
        let r = OutputRule::parse("=%/tmp/*.log").unwrap();
        assert!(r.must_match && r.allow_change && !r.exclude);
        assert_eq!(r.pattern, "/tmp/*.log");
        let r = OutputRule::parse("%=/tmp/x").unwrap();
        assert!(r.must_match && r.allow_change);
        assert!(OutputRule::parse("!/tmp/*.jpg").unwrap().exclude);
        assert!(OutputRule::parse("/tmp/**/*.txt").is_ok());
    }

    #[test]
    fn bad_rules() {
        assert!(OutputRule::parse("!=/tmp/x").unwrap_err().contains("cannot be combined"));
        assert!(OutputRule::parse("=!/tmp/x").is_err());
        assert!(OutputRule::parse("tmp/x").unwrap_err().contains("absolute"));
        assert!(OutputRule::parse("/tmp/../etc/passwd").is_err());
        assert!(OutputRule::parse("==/tmp/x").is_err());
    }
}
