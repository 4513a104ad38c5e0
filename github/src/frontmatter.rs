//! Lifting the TOML frontmatter out of a job file, exactly where buildomat
//! finds it, while remembering which file line each TOML line came from so
//! that every error can point at the line the user has to fix.
//!
//! buildomat's rule (`jobsh/src/jobfile.rs`): after the interpreter line,
//! take the lines while they start with `#`; of those, the ones starting
//! with `#:` are TOML once `#:` is removed, and plain `#` comments may sit
//! between them. The block ends at the first line that does not start with
//! `#` (a blank line, or the first command). Only `#:` is removed, not the
//! blank after it: TOML ignores leading blanks, and inside a multi-line
//! string the blank is part of the value, as it is for buildomat.

use std::ops::Range;

/// The `#:` block of one job file, as TOML text plus its line map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frontmatter {
    /// The TOML text: each `#:` line without its `#:`, joined with `\n`.
    pub toml: String,
    /// `lines[i]` is the 1-based file line of TOML line `i`.
    pub lines: Vec<usize>,
    /// 1-based lines of `#:` lines that come after the block ended; buildomat
    /// ignores them, so they are worth a warning.
    pub stray: Vec<usize>,
    /// The 1-based line just after the block, where a missing `#:` line
    /// would have had to be.
    pub end_line: usize,
}

impl Frontmatter {
    /// Splits `text` the way buildomat does; `None` when the first line is
    /// not an interpreter line (`#!…`), which bm requires.
    pub fn extract(text: &str) -> Option<Frontmatter> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, first)) if first.starts_with("#!") => {}
            _ => return None,
        }
        let mut fm = Frontmatter { toml: String::new(), lines: Vec::new(), stray: Vec::new(), end_line: 2 };
        let mut in_block = true;
        for (n, line) in lines {
            if in_block && line.starts_with('#') {
                fm.end_line = n + 1;
                if line.starts_with("#:") {
                    if !fm.lines.is_empty() {
                        fm.toml.push('\n');
                    }
                    // buildomat uses `trim_start_matches`, so `#:#:` loses both.
                    fm.toml.push_str(line.trim_start_matches("#:"));
                    fm.lines.push(n);
                }
                continue;
            }
            in_block = false;
            if line.starts_with("#:") {
                fm.stray.push(n);
            }
        }
        Some(fm)
    }

    /// Whether the block holds nothing but blanks and TOML comments, so
    /// that "no frontmatter" is a better message than "missing field".
    pub fn is_blank(&self) -> bool {
        self.toml.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#')
        })
    }

    /// The file line holding byte `offset` of the TOML text.
    pub fn line_of_offset(&self, offset: usize) -> usize {
        let offset = offset.min(self.toml.len());
        let index = self.toml.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count();
        self.lines.get(index).copied().or_else(|| self.lines.last().copied()).unwrap_or(self.end_line)
    }

    /// The file line where a TOML span starts; the first `#:` line when the
    /// parser gave no span.
    pub fn line_of_span(&self, span: Option<Range<usize>>) -> usize {
        match span {
            Some(s) => self.line_of_offset(s.start),
            None => self.lines.first().copied().unwrap_or(self.end_line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_after_the_interpreter_line() {
        let fm = Frontmatter::extract("#!/bin/bash\n#:\n#: name = \"a\"\n# plain comment\n#:variety=\"basic\"\n\nls\n")
            .unwrap();
        assert_eq!(fm.toml, "\n name = \"a\"\nvariety=\"basic\"");
        assert_eq!(fm.lines, [2, 3, 5]);
        assert_eq!(fm.end_line, 6);
        assert!(fm.stray.is_empty());
        assert_eq!(fm.line_of_offset(0), 2);
        assert_eq!(fm.line_of_offset(2), 3);
        assert_eq!(fm.line_of_offset(fm.toml.find("variety").unwrap()), 5);
    }

    #[test]
    fn block_ends_at_the_first_non_comment_line() {
        let fm =
            Frontmatter::extract("#!/bin/bash\n#: name = \"a\"\n\n#: variety = \"basic\"\necho\n#: x = 1\n").unwrap();
        assert_eq!(fm.toml, " name = \"a\"");
        assert_eq!(fm.stray, [4, 6]);
        assert_eq!(fm.end_line, 3);
    }

    #[test]
    fn interpreter_line_is_required() {
        assert_eq!(Frontmatter::extract(""), None);
        assert_eq!(Frontmatter::extract("#: name = \"a\"\n"), None);
        assert_eq!(Frontmatter::extract("\n#!/bin/bash\n"), None);
    }

    #[test]
    fn crlf_and_tabs() {
        let fm = Frontmatter::extract("#!/bin/bash\r\n#:\tname = \"a\"\r\n").unwrap();
        assert_eq!(fm.toml, "\tname = \"a\"");
        assert!(!fm.is_blank());
        let fm = Frontmatter::extract("#!/bin/bash\n#:\n#: # nothing\n").unwrap();
        assert!(fm.is_blank());
    }
}
