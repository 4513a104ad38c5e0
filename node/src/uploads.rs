//! Output uploads under way on this node, per job, so the per-job output
//! limit holds while an agent sends several files at once: an upload is
//! checked against the outputs already committed plus those still coming
//! in here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The uploads under way on this node, by job.
#[derive(Default)]
pub struct InFlight(Mutex<HashMap<String, usize>>);

impl InFlight {
    /// Starts an upload for `job` if `allowed` accepts the number already
    /// under way (checked and counted under one lock); it counts until
    /// the returned guard is dropped.
    pub fn begin<E>(self: &Arc<Self>, job: &str, allowed: impl FnOnce(usize) -> Result<(), E>) -> Result<Upload, E> {
        let mut map = self.0.lock().expect("not poisoned");
        let n = map.get(job).copied().unwrap_or(0);
        allowed(n)?;
        map.insert(job.to_string(), n + 1);
        Ok(Upload { set: self.clone(), job: job.to_string() })
    }
}

/// One upload counted in [`InFlight`] until dropped.
pub struct Upload {
    set: Arc<InFlight>,
    job: String,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let mut map = self.set.0.lock().expect("not poisoned");
        if let Some(n) = map.get_mut(&self.job) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.job);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_count_while_their_guards_live() {
        let set = Arc::new(InFlight::default());
        let limit = |max: usize| move |n: usize| if n < max { Ok(()) } else { Err(n) };
        let a = set.begin("j", limit(2)).unwrap();
        let b = set.begin("j", limit(2)).unwrap();
        assert_eq!(set.begin("j", limit(2)).err(), Some(2));
        assert!(set.begin("other", limit(1)).is_ok(), "per job");
        drop(a);
        let c = set.begin("j", limit(2)).unwrap();
        drop((b, c));
        assert!(set.0.lock().unwrap().is_empty());
    }
}
