//! Parsers for argument shapes clap does not know, so bad input is a usage
//! error (exit 2) before anything is sent.

/// Parses `KEY=VALUE` (for `--env`, `--tag`, `--depends`, `--target-map`);
/// the value may be empty or contain `=`, the key may not be empty.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Checks a `KEY=VALUE` filter and keeps it whole, as the API wants it.
pub fn tag_filter(s: &str) -> Result<String, String> {
    key_value(s).map(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        assert_eq!(key_value("A=b=c").unwrap(), ("A".to_string(), "b=c".to_string()));
        assert_eq!(key_value("A=").unwrap(), ("A".to_string(), String::new()));
        assert!(key_value("=x").is_err());
        assert!(key_value("novalue").is_err());
        assert_eq!(tag_filter("repo=bm").unwrap(), "repo=bm");
    }
}
