//! Output-rule globs as the spec describes them, used to tell an author
//! that a `publish.from_output` is not uploaded by any of the job's rules.
//! `*` and `?` stay within one path component, `[…]` is a character class,
//! and a `**` component matches zero or more directories but never the
//! file itself.

/// Whether the `/`-anchored `pattern` matches the file at absolute `path`.
pub(crate) fn matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    match_components(&pat, &path)
}

fn match_components(pat: &[&str], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => {
            // Zero or more directories: always leave the file name to `rest`.
            (0..path.len()).any(|skip| match_components(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, path_rest)) => {
                match_component(first.as_bytes(), name.as_bytes()) && match_components(rest, path_rest)
            }
            None => false,
        },
    }
}

/// One component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`; anything else literal.
fn match_component(pat: &[u8], name: &[u8]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| match_component(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && match_component(rest, &name[1..]),
        Some((b'[', rest)) => match class(rest) {
            Some((set, after)) => match name.split_first() {
                Some((&c, name_rest)) => set(c) && match_component(after, name_rest),
                None => false,
            },
            None => name.first() == Some(&b'[') && match_component(rest, &name[1..]),
        },
        Some((&c, rest)) => name.first() == Some(&c) && match_component(rest, &name[1..]),
    }
}

/// Parses a class after its `[`: a membership test and the pattern after
/// the closing `]`, or `None` if the class is never closed.
fn class(pat: &[u8]) -> Option<(impl Fn(u8) -> bool + '_, &[u8])> {
    let (negate, body_start) = match pat.first() {
        Some(b'!') | Some(b'^') => (true, 1),
        _ => (false, 0),
    };
    // A `]` right at the start is a member, as in the shell.
    let close = pat.iter().skip(body_start + 1).position(|&c| c == b']')? + body_start + 1;
    let body = &pat[body_start..close];
    let test = move |c: u8| {
        let mut i = 0;
        let mut hit = false;
        while i < body.len() {
            if i + 2 < body.len() && body[i + 1] == b'-' {
                hit |= body[i] <= c && c <= body[i + 2];
                i += 3;
            } else {
                hit |= body[i] == c;
                i += 1;
            }
        }
        hit != negate
    };
    Some((test, &pat[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn spec_examples() {
        assert!(matches("/tmp/*.txt", "/tmp/something.txt"));
        assert!(!matches("/tmp/*.txt", "/tmp/nothing.png"));
        assert!(!matches("/tmp/*.txt", "/tmp/dir/a.txt"));
        for p in ["/tmp/a.txt", "/tmp/dir/a.txt", "/tmp/dir/dir/a.txt"] {
            assert!(matches("/tmp/**/*.txt", p), "{p}");
        }
        assert!(!matches("/tmp/**", "/tmp/a.txt"));
        assert!(matches("/work/pkg/important.tar.gz", "/work/pkg/important.tar.gz"));
        assert!(!matches("/work/pkg/important.tar.gz", "/work/pkg/important.tar"));
    }

    #[test]
    fn classes_and_question_marks() {
        assert!(matches("/a/[bc]?", "/a/cx"));
        assert!(!matches("/a/[!bc]x", "/a/cx"));
        assert!(matches("/a/[a-z].log", "/a/q.log"));
        assert!(matches("/a/[x", "/a/[x"));
        assert!(!matches("/a/?", "/a/"));
    }
}
