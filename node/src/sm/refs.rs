//! Which blobs and log chunks the jobs refer to, kept up to date by apply.
//!
//! Repair, garbage collection, `bm cluster status` and a node looking for a
//! blob's homes used to walk every job ever run while holding the state's
//! lock: at 400,000 jobs a walk took 30-125 ms, and applying stopped for
//! that long on every node every 30 s and at every status call. With this
//! index they cost the references, read a page at a time.
//!
//! It is derived from the jobs, so it is not part of a snapshot: a
//! restored state rebuilds it ([`Refs::of_jobs`]). Its maps are
//! persistent (`imbl::OrdMap`) like the jobs', so the state's copy for a
//! snapshot does not copy them.

use std::collections::BTreeSet;

use imbl::OrdMap;
use std::ops::Bound;

use bm_api::jobs::JobOutput;

use super::JobRecord;

/// Blob and log-chunk references of the jobs' outputs and logs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Refs {
    /// Blob (hex sha256) to the ids of the job outputs that hold it.
    blobs: OrdMap<String, BTreeSet<String>>,
    /// Log chunk to how many blocks of job logs refer to it.
    chunks: OrdMap<[u8; 32], u32>,
}

impl Refs {
    /// The index of these jobs, built from scratch (a restored snapshot).
    pub fn of_jobs<'a>(jobs: impl IntoIterator<Item = &'a JobRecord>) -> Self {
        let mut r = Refs::default();
        for j in jobs {
            j.outputs.iter().for_each(|o| r.add_output(o));
            j.events.chunks().for_each(|c| r.add_chunk(*c));
        }
        r
    }

    /// Counts an output that was just kept.
    pub(super) fn add_output(&mut self, o: &JobOutput) {
        self.blobs.entry(o.sha256.clone()).or_default().insert(o.id.clone());
    }

    /// Forgets outputs that were just dropped.
    pub(super) fn remove_outputs(&mut self, outputs: &[JobOutput]) {
        for o in outputs {
            if let Some(ids) = self.blobs.get_mut(&o.sha256) {
                ids.remove(&o.id);
                if ids.is_empty() {
                    self.blobs.remove(&o.sha256);
                }
            }
        }
    }

    /// Counts one more log block in chunk `sha`.
    pub(super) fn add_chunk(&mut self, sha: [u8; 32]) {
        *self.chunks.entry(sha).or_default() += 1;
    }

    /// Forgets log blocks that were just dropped, one per chunk named.
    pub(super) fn remove_chunks(&mut self, chunks: impl IntoIterator<Item = [u8; 32]>) {
        for sha in chunks {
            if let Some(n) = self.chunks.get_mut(&sha) {
                *n -= 1;
                if *n == 0 {
                    self.chunks.remove(&sha);
                }
            }
        }
    }

    /// The ids of the outputs holding blob `sha` (none when unreferenced).
    pub fn outputs_of(&self, sha: &str) -> impl Iterator<Item = &String> {
        self.blobs.get(sha).into_iter().flatten()
    }

    /// Up to `n` referenced blobs after `after` (from the first with
    /// `None`), each with the ids of the outputs holding it.
    pub fn blobs_after(&self, after: Option<&str>, n: usize) -> Vec<(String, Vec<String>)> {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.blobs
            .range::<_, str>((from, Bound::Unbounded))
            .take(n)
            .map(|(sha, ids)| (sha.clone(), ids.iter().cloned().collect()))
            .collect()
    }

    /// Up to `n` referenced log chunks after `after` (from the first with `None`).
    pub fn chunks_after(&self, after: Option<&[u8; 32]>, n: usize) -> Vec<[u8; 32]> {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.chunks.range::<_, [u8; 32]>((from, Bound::Unbounded)).take(n).map(|(sha, _)| *sha).collect()
    }
}
