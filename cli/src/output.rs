//! Printing for people (aligned tables, relative ages, sizes) and for
//! programs (`--json`), so every command looks and behaves the same.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// `println!` that returns an error instead of panicking when standard
/// output is closed (`bm job list | head`), so `main` can exit quietly.
/// Use it only in functions returning `anyhow::Result`.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// A table with a header row and left-aligned columns separated by two
/// spaces: easy to read and easy to cut with `awk`.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Starts a table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Self { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// Adds one row; missing cells are left blank, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders the table; the last column is not padded, so lines carry no
    /// trailing blanks.
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                line.push_str(cell);
                if i + 1 < n {
                    let pad = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table to standard output.
    pub fn print(&self) -> anyhow::Result<()> {
        std::io::stdout().lock().write_all(self.render().as_bytes())?;
        Ok(())
    }
}

/// Prints a list the way every `ls` command does: JSON with `--json`,
/// else a table with `header` and one row per item from `row`.
pub fn print_list<T: Serialize>(
    items: &[T],
    json: bool,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if json {
        return print_json(items);
    }
    let mut t = Table::new(header);
    for item in items {
        t.row(row(item));
    }
    t.print()
}

/// Prints a value as pretty JSON on standard output: the `--json` form of
/// every command, meant for scripts (`jq`).
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    // Serialise first: a write error inside serde_json would hide the
    // `io::Error` that `main` looks for to exit quietly on a closed pipe.
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// How long ago `t` was, in the largest unit that fits ("42s", "3m",
/// "2h", "5d"); tables have room for ages, not timestamps.
pub fn age(t: DateTime<Utc>) -> String {
    age_at(t, Utc::now())
}

/// [`age`] against a given "now", for tests.
pub fn age_at(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A duration as "1h2m3s" (leading zero units omitted), for timings where
/// the exact length matters more than the age.
pub fn duration(d: chrono::TimeDelta) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 10_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A byte count in binary units ("512B", "1.5KiB", "3.0GiB").
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

/// An optional cell: the value or "-", so empty columns stay visible.
pub fn or_dash(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or("-").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn table_aligns_and_trims() {
        let mut t = Table::new(&["ID", "STATE", "NAME"]);
        t.row(vec!["1".into(), "running".into(), "build".into()]);
        t.row(vec!["22".into(), "queued".into(), String::new()]);
        assert_eq!(t.render(), "ID  STATE    NAME\n1   running  build\n22  queued\n");
    }

    #[test]
    fn ages() {
        let now = Utc::now();
        assert_eq!(age_at(now - TimeDelta::seconds(5), now), "5s");
        assert_eq!(age_at(now - TimeDelta::seconds(190), now), "3m");
        assert_eq!(age_at(now - TimeDelta::hours(2), now), "2h");
        assert_eq!(age_at(now - TimeDelta::hours(47), now), "47h");
        assert_eq!(age_at(now - TimeDelta::days(5), now), "5d");
        assert_eq!(age_at(now + TimeDelta::seconds(5), now), "0s");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(TimeDelta::milliseconds(1500)), "1.5s");
        assert_eq!(duration(TimeDelta::seconds(42)), "42s");
        assert_eq!(duration(TimeDelta::seconds(62)), "1m2s");
        assert_eq!(duration(TimeDelta::seconds(3723)), "1h2m3s");
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(1536), "1.5KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0GiB");
    }
}
