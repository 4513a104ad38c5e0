//! The job every workload submits, and what it is known to write: numbered log lines and one output file whose
//! content follows from the job's name. Knowing this up front is what lets the checker tell a lost, duplicated
//! or reordered line, or a corrupted output, from the real thing.

use bm_api::jobs::JobSubmit;
use sha2::{Digest, Sha256};

use crate::history::LogEntry;

/// How many numbered lines each job prints to stdout: each half comes out
/// at once, so the agent ships it in batches too large to go through Raft
/// inline, and the checker follows the log chunks that hold them.
pub const LINES: u64 = 2000;
/// The output file each job writes, kept by an `=` (must match) output rule.
pub const OUTPUT_PATH: &str = "/tmp/chaos-out.txt";
/// The stream the numbered lines go to.
pub const STREAM: &str = "stdout";
/// What starts every numbered line, so they are told apart from anything else on stdout.
const LINE_PREFIX: &str = "chaos-line-";

/// The job submitted under `name`: half its lines, a pause (so faults catch jobs mid-run), the other half, then
/// its output file.
pub fn job(name: &str) -> JobSubmit {
    let half = LINES / 2;
    let script = format!(
        "for i in $(seq 1 {half}); do echo {LINE_PREFIX}$i; done\nsleep 1\n\
         for i in $(seq {} {LINES}); do echo {LINE_PREFIX}$i; done\nprintf '%s\\n' '{}' > {OUTPUT_PATH}\n",
        half + 1,
        output_content(name).trim_end()
    );
    let mut j = JobSubmit::script(name, "default", &script);
    j.output_rules = vec![format!("={OUTPUT_PATH}")];
    j
}

/// The content of the output file of the job named `name`.
pub fn output_content(name: &str) -> String {
    format!("chaos output of {name}\n")
}

/// The sha256 (hex) of the output file of the job named `name`.
pub fn output_sha256(name: &str) -> String {
    sha256_hex(output_content(name).as_bytes())
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A short hash of one log line, as log entries carry.
fn line_hash(payload: &str) -> String {
    sha256_hex(payload.as_bytes())[..16].to_string()
}

/// The log entries a job that ran to its end wrote, in order.
pub fn written() -> Vec<LogEntry> {
    (1..=LINES).map(|i| LogEntry::new(STREAM, i, &line_hash(&format!("{LINE_PREFIX}{i}")))).collect()
}

/// A log as the server returned it, as entries: each numbered line keeps its number; any other line on the
/// stream gets a number past the written ones (which the checker reports as never written).
pub fn entries<'a>(payloads: impl IntoIterator<Item = &'a str>) -> Vec<LogEntry> {
    payloads
        .into_iter()
        .enumerate()
        .map(|(pos, p)| {
            let seq = p.strip_prefix(LINE_PREFIX).and_then(|n| n.trim().parse().ok()).unwrap_or(1_000_000 + pos as u64);
            LogEntry::new(STREAM, seq, &line_hash(p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_log_reads_as_what_was_written() {
        let lines: Vec<String> = (1..=LINES).map(|i| format!("{LINE_PREFIX}{i}")).collect();
        assert_eq!(entries(lines.iter().map(String::as_str)), written());
    }

    #[test]
    fn the_script_prints_every_line_and_writes_the_output() {
        let j = job("c1-7");
        let s = &j.tasks[0].script;
        assert!(s.contains("seq 1 1000") && s.contains("seq 1001 2000"), "{s}");
        assert!(s.contains("'chaos output of c1-7' > /tmp/chaos-out.txt"), "{s}");
        assert_eq!(j.output_rules, vec!["=/tmp/chaos-out.txt"]);
    }

    #[test]
    fn a_stray_line_is_never_a_written_one() {
        let e = entries(["hello"]);
        assert!(e[0].seq > LINES);
    }
}
