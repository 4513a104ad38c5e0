//! The `/`-anchored globs of `output_rules`, with exactly the meaning the
//! job-file reference gives them, so that what the agent uploads is what the
//! author reads in the spec.
//!
//! - `*` matches any run of characters within one path component; it never
//!   matches `/`, so `/tmp/*.txt` does not reach into `/tmp/dir/`.
//! - `?` matches one character other than `/`.
//! - `[abc]`, `[a-z]` and `[!abc]` are character classes, as in buildomat's
//!   `glob` crate; a `]` right after `[` or `[!` is a member, and a `[` that
//!   is never closed is an ordinary character. `^` does not negate.
//! - `**` as a whole component matches the directory it stands in or any
//!   directory below it, never a file: `/tmp/**/*.txt` matches `/tmp/a.txt`
//!   and `/tmp/d/e/a.txt`, while `/tmp/**` matches no file at all. A `**`
//!   inside a longer component (`a**b`) means the same as `*`.
//! - Hidden files are not special: unlike the shell, `*`, `?` and `**` match
//!   names that start with `.`. buildomat matches with the `glob` crate's
//!   default options (no `require_literal_leading_dot`), and a job that
//!   leaves `/tmp/.coverage` behind expects `/tmp/*` to upload it.
//! - Matching is case-sensitive and there is no backslash escape (use
//!   `[*]` for a literal `*`). Empty components (`//`) are ignored; a
//!   pattern ending in `/` names directories only and so matches no file.

use thiserror::Error;

/// Why a pattern cannot be used. The server refuses these at submission, so
/// the agent meets them only if a rule skipped that check.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GlobError {
    /// Patterns are absolute paths in the worker; a relative one has no
    /// meaning there.
    #[error("output pattern {0:?} must start with '/'")]
    NotAbsolute(String),
    /// A NUL can never be part of a path.
    #[error("output pattern {0:?} contains a NUL byte")]
    Nul(String),
    /// `.` and `..` would let a pattern name paths outside the place its
    /// literal prefix seems to name.
    #[error("output pattern {0:?} contains a '.' or '..' component")]
    DotComponent(String),
}

/// A compiled output pattern.
///
/// It exists so that the pattern is parsed once and then asked the three
/// questions a file walk needs: where to start, whether a directory is worth
/// entering, and whether a file matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    segments: Vec<Segment>,
    dir_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more directories.
    AnyDirs,
    /// One path component.
    Name(Vec<Token>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    AnySeq,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

impl Token {
    fn matches_one(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyChar => true,
            Token::AnySeq => false,
            Token::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
        }
    }
}

impl Glob {
    /// Compiles a `/`-anchored pattern (the part of a rule after its
    /// `=`, `%` or `!` prefixes).
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if !pattern.starts_with('/') {
            return Err(GlobError::NotAbsolute(pattern.to_string()));
        }
        if pattern.contains('\0') {
            return Err(GlobError::Nul(pattern.to_string()));
        }
        let mut segments = Vec::new();
        for component in pattern.split('/').filter(|c| !c.is_empty()) {
            if component == "." || component == ".." {
                return Err(GlobError::DotComponent(pattern.to_string()));
            }
            if component == "**" {
                segments.push(Segment::AnyDirs);
            } else {
                segments.push(Segment::Name(parse_component(component)));
            }
        }
        Ok(Glob { pattern: pattern.to_string(), segments, dir_only: pattern.len() > 1 && pattern.ends_with('/') })
    }

    /// The pattern text this was compiled from, for messages.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether no file can ever match (`/tmp/**`, `/tmp/`, `/`), so a caller
    /// can tell an author their rule is a no-op rather than stay silent.
    pub fn matches_no_files(&self) -> bool {
        self.dir_only || !matches!(self.segments.last(), Some(Segment::Name(_)))
    }

    /// Whether the file at absolute worker path `path` matches. The last
    /// component of `path` is taken to be a file: `**` never consumes it.
    pub fn matches(&self, path: &str) -> bool {
        if self.dir_only {
            return false;
        }
        let components: Vec<&str> = split_path(path).collect();
        let Some(last) = components.len().checked_sub(1) else {
            return false;
        };
        let mut reach = self.closure(self.start());
        for (j, name) in components.iter().enumerate() {
            let next = self.step(&reach, name, j < last);
            // No `**` may follow the file: it would claim the file is a
            // directory.
            reach = if j < last { self.closure(next) } else { next };
        }
        reach[self.segments.len()]
    }

    /// Whether some file below the directory at absolute worker path `dir`
    /// could match, so a walk can skip every directory that cannot. Never
    /// false for a directory that holds a match.
    pub fn may_match_below(&self, dir: &str) -> bool {
        if self.dir_only {
            return false;
        }
        let mut reach = self.closure(self.start());
        for name in split_path(dir) {
            reach = self.closure(self.step(&reach, name, true));
        }
        reach.iter().enumerate().any(|(i, &r)| r && self.segments[i..].iter().any(|s| matches!(s, Segment::Name(_))))
    }

    /// The deepest directory, as an absolute worker path, below which every
    /// match lies: the literal components before the first wildcard, minus
    /// the file name. `/tmp/*.txt` gives `/tmp`, `/*.txt` gives `/`, and
    /// `/work/pkg/a.tar.gz` gives `/work/pkg`. A walk starts here instead
    /// of at `/`.
    pub fn walk_root(&self) -> String {
        let dirs = self.segments.len().saturating_sub(1);
        let mut root = String::new();
        for segment in &self.segments[..dirs] {
            let Segment::Name(tokens) = segment else { break };
            let mut literal = String::new();
            for token in tokens {
                let Token::Literal(c) = token else {
                    return if root.is_empty() { "/".to_string() } else { root };
                };
                literal.push(*c);
            }
            root.push('/');
            root.push_str(&literal);
        }
        if root.is_empty() {
            "/".to_string()
        } else {
            root
        }
    }

    fn start(&self) -> Vec<bool> {
        let mut reach = vec![false; self.segments.len() + 1];
        reach[0] = true;
        reach
    }

    /// Adds every position reachable by letting a `**` match zero
    /// directories.
    fn closure(&self, mut reach: Vec<bool>) -> Vec<bool> {
        for i in 0..self.segments.len() {
            if reach[i] && self.segments[i] == Segment::AnyDirs {
                reach[i + 1] = true;
            }
        }
        reach
    }

    /// Consumes one path component, which is a directory if `is_dir`.
    fn step(&self, reach: &[bool], name: &str, is_dir: bool) -> Vec<bool> {
        let chars: Vec<char> = name.chars().collect();
        let mut next = vec![false; self.segments.len() + 1];
        for (i, segment) in self.segments.iter().enumerate() {
            if !reach[i] {
                continue;
            }
            match segment {
                Segment::AnyDirs => next[i] |= is_dir,
                Segment::Name(tokens) => next[i + 1] |= match_name(tokens, &chars),
            }
        }
        next
    }
}

/// The deepest directory to start walking from for `pattern`; see
/// [`Glob::walk_root`].
pub fn walk_root(pattern: &str) -> Result<String, GlobError> {
    Ok(Glob::new(pattern)?.walk_root())
}

fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

fn parse_component(component: &str) -> Vec<Token> {
    let chars: Vec<char> = component.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if tokens.last() != Some(&Token::AnySeq) {
                    tokens.push(Token::AnySeq);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::AnyChar);
                i += 1;
            }
            '[' => match parse_class(&chars[i + 1..]) {
                Some((token, used)) => {
                    tokens.push(token);
                    i += 1 + used;
                }
                None => {
                    tokens.push(Token::Literal('['));
                    i += 1;
                }
            },
            c => {
                tokens.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    tokens
}

/// Parses a class after its `[`: the token and how many characters it used,
/// including the closing `]`; `None` if it is never closed.
fn parse_class(chars: &[char]) -> Option<(Token, usize)> {
    let negated = chars.first() == Some(&'!');
    let mut i = usize::from(negated);
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        match (chars.get(i + 1), chars.get(i + 2)) {
            (Some('-'), Some(&hi)) if hi != ']' => {
                ranges.push((c, hi));
                i += 3;
            }
            _ => {
                ranges.push((c, c));
                i += 1;
            }
        }
    }
}

/// One component against single-character tokens and `*`, by the classic
/// backtrack-to-the-last-star scan: linear for most names, never
/// exponential.
fn match_name(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if let Some(token) = tokens.get(t) {
            if *token == Token::AnySeq {
                star = Some((t, n));
                t += 1;
                continue;
            }
            if token.matches_one(name[n]) {
                t += 1;
                n += 1;
                continue;
            }
        }
        match star {
            Some((st, sn)) => {
                t = st + 1;
                n = sn + 1;
                star = Some((st, sn + 1));
            }
            None => return false,
        }
    }
    tokens[t..].iter().all(|t| *t == Token::AnySeq)
}

#[cfg(test)]
mod tests {
    use super::{walk_root, Glob, GlobError};
    use proptest::prelude::*;

    fn m(pattern: &str, path: &str) -> bool {
        Glob::new(pattern).unwrap().matches(path)
    }

    #[test]
    fn star_txt_matches_something_txt_not_nothing_png() {
        assert!(m("/tmp/*.txt", "/tmp/something.txt"));
        assert!(!m("/tmp/*.txt", "/tmp/nothing.png"));
    }

    #[test]
    fn single_star_does_not_descend() {
        assert!(!m("/tmp/*.txt", "/tmp/dir/a.txt"));
        assert!(!m("/tmp/*", "/tmp/dir/a.txt"));
        assert!(m("/tmp/*/a.txt", "/tmp/dir/a.txt"));
    }

    #[test]
    fn double_star_matches_the_three_depths() {
        for p in ["/tmp/a.txt", "/tmp/dir/a.txt", "/tmp/dir/dir/a.txt"] {
            assert!(m("/tmp/**/*.txt", p), "{p}");
        }
        assert!(!m("/tmp/**/*.txt", "/tmp/dir/a.png"));
        assert!(!m("/tmp/**/*.txt", "/var/a.txt"));
    }

    #[test]
    fn double_star_matches_directories_not_files() {
        assert!(!m("/tmp/**", "/tmp/a.txt"));
        assert!(!m("/tmp/**", "/tmp/d/a.txt"));
        assert!(Glob::new("/tmp/**").unwrap().matches_no_files());
        assert!(!m("/tmp/*.txt/**", "/tmp/a.txt"));
        assert!(m("/**/a", "/a"));
        assert!(m("/**/**/a", "/x/y/a"));
        assert!(m("/tmp/**/d/**/a", "/tmp/d/a"));
        assert!(!m("/tmp/**/d/**/a", "/tmp/a"));
    }

    #[test]
    fn star_inside_a_component_is_a_single_star() {
        assert!(m("/tmp/a**b", "/tmp/axyzb"));
        assert!(!m("/tmp/a**b", "/tmp/ax/yb"));
    }

    #[test]
    fn hidden_files_are_matched() {
        assert!(m("/tmp/*", "/tmp/.hidden"));
        assert!(m("/tmp/?hidden", "/tmp/.hidden"));
        assert!(m("/tmp/**/*.log", "/tmp/.cache/x.log"));
    }

    #[test]
    fn literal_paths() {
        assert!(m("/work/pkg/important.tar.gz", "/work/pkg/important.tar.gz"));
        assert!(!m("/work/pkg/important.tar.gz", "/work/pkg/important.tar"));
        assert!(!m("/work/pkg/important.tar.gz", "/work/pkg"));
        assert!(m("/work//pkg/x", "/work/pkg/x"));
        assert!(!m("/tmp/", "/tmp"));
        assert!(!m("/", "/"));
    }

    #[test]
    fn classes_and_question_marks() {
        assert!(m("/a/[bc]?", "/a/cx"));
        assert!(!m("/a/[!bc]x", "/a/cx"));
        assert!(m("/a/[!bc]x", "/a/dx"));
        assert!(m("/a/[a-z].log", "/a/q.log"));
        assert!(!m("/a/[a-z].log", "/a/Q.log"));
        assert!(m("/a/[]]", "/a/]"));
        assert!(m("/a/[!]]", "/a/x"));
        assert!(m("/a/[a-]", "/a/-"));
        assert!(m("/a/[*]", "/a/*"));
        assert!(!m("/a/[*]", "/a/x"));
        assert!(m("/a/[^b]", "/a/^"), "^ is an ordinary member");
        assert!(m("/a/[x", "/a/[x"), "an unclosed [ is literal");
        assert!(!m("/a/?", "/a/"));
        assert!(m("/a/é?", "/a/éz"), "classes and ? work on characters, not bytes");
    }

    #[test]
    fn star_backtracks() {
        assert!(m("/a/*ab*ab", "/a/xabyabab"));
        assert!(!m("/a/*ab*abc", "/a/xabyabab"));
        assert!(m("/a/*", "/a/x"));
        assert!(m("/a/x*", "/a/x"));
    }

    #[test]
    fn walk_roots() {
        assert_eq!(walk_root("/tmp/*.txt").unwrap(), "/tmp");
        assert_eq!(walk_root("/*.txt").unwrap(), "/");
        assert_eq!(walk_root("/tmp/**/*.txt").unwrap(), "/tmp");
        assert_eq!(walk_root("/work/pkg/important.tar.gz").unwrap(), "/work/pkg");
        assert_eq!(walk_root("/var/svc/log/*.log").unwrap(), "/var/svc/log");
        assert_eq!(walk_root("/a/b*/c/d").unwrap(), "/a");
        assert_eq!(walk_root("/a/[b]/c").unwrap(), "/a");
        assert_eq!(walk_root("/x").unwrap(), "/");
        assert_eq!(walk_root("/").unwrap(), "/");
    }

    #[test]
    fn bad_patterns() {
        assert!(matches!(Glob::new("tmp/x"), Err(GlobError::NotAbsolute(_))));
        assert!(matches!(Glob::new("/tmp/\0"), Err(GlobError::Nul(_))));
        assert!(matches!(Glob::new("/tmp/../etc/passwd"), Err(GlobError::DotComponent(_))));
        assert!(matches!(Glob::new("/tmp/./x"), Err(GlobError::DotComponent(_))));
    }

    #[test]
    fn pruning() {
        let g = Glob::new("/tmp/*/x.txt").unwrap();
        assert!(g.may_match_below("/"));
        assert!(g.may_match_below("/tmp"));
        assert!(g.may_match_below("/tmp/d"));
        assert!(!g.may_match_below("/tmp/d/e"));
        assert!(!g.may_match_below("/var"));
        let g = Glob::new("/tmp/**/x.txt").unwrap();
        assert!(g.may_match_below("/tmp/d/e/f"));
        assert!(!g.may_match_below("/usr"));
        assert!(!Glob::new("/tmp/**").unwrap().may_match_below("/tmp"));
    }

    fn component() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", ".h", "ab", "*", "?", "**", "a*", "[ab]", "[!a]", "*b"])
            .prop_map(String::from)
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", ".h", "ab", "ba", "aab"]).prop_map(String::from)
    }

    proptest! {
        /// The walk prunes with `may_match_below`, so it must never say no
        /// for a directory above a file that matches.
        #[test]
        fn pruning_never_hides_a_match(
            pattern in prop::collection::vec(component(), 1..5),
            path in prop::collection::vec(name(), 1..6),
        ) {
            let g = Glob::new(&format!("/{}", pattern.join("/"))).unwrap();
            let file = format!("/{}", path.join("/"));
            if g.matches(&file) {
                for k in 0..path.len() {
                    let dir = format!("/{}", path[..k].join("/"));
                    prop_assert!(g.may_match_below(&dir), "{} under {}", g.as_str(), dir);
                }
                let root = g.walk_root();
                prop_assert!(root == "/" || file.starts_with(&format!("{root}/")), "{} root {}", g.as_str(), root);
            }
        }
    }
}
