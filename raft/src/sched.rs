//! Asks the kernel to run a latency-critical thread soon after it wakes.
//!
//! The log flusher sleeps in `fsync` and then must answer Raft at once; on
//! a busy two-core node it can wake behind the runtime's worker threads
//! and wait out their scheduler slices (1.4 ms each by default on the
//! standard machine). Linux's EEVDF scheduler (6.12 and later) takes a
//! shorter slice as a request to be picked sooner after waking, with no
//! privilege and no change of share. Older kernels ignore the request;
//! other systems do nothing. Measured in docs/benchmarks.md (single node,
//! 256 clients: commit p99 median 7.7 ms over six runs, against 9.5).

/// The slice asked for, in nanoseconds: the shortest Linux accepts.
#[cfg(target_os = "linux")]
const SLICE_NS: u64 = 100_000;

/// Asks for a short scheduler slice for the calling thread; says at
/// `debug` why not when the kernel refuses.
pub fn prefer_low_latency() {
    #[cfg(target_os = "linux")]
    {
        let attr = libc::sched_attr {
            size: std::mem::size_of::<libc::sched_attr>() as u32,
            sched_policy: libc::SCHED_OTHER as u32,
            sched_flags: 0,
            sched_nice: 0,
            sched_priority: 0,
            sched_runtime: SLICE_NS,
            sched_deadline: 0,
            sched_period: 0,
        };
        // SAFETY: `attr` is a valid, initialised sched_attr of the size it
        // declares, and pid 0 names the calling thread.
        let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const libc::sched_attr, 0) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "no short scheduler slice for this thread");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's scheduler slice as the kernel reports it (0
    /// from kernels that do not report one).
    fn current_slice() -> u64 {
        // SAFETY: all-zero bytes are a valid sched_attr.
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::sched_attr>() as u32;
        // SAFETY: `attr` is writable and `size` bytes long; pid 0 is this thread.
        let rc = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr as *mut libc::sched_attr, size, 0) };
        assert_eq!(rc, 0, "sched_getattr: {}", std::io::Error::last_os_error());
        attr.sched_runtime
    }

    #[test]
    fn a_thread_that_asks_gets_the_short_slice_where_the_kernel_reports_slices() {
        let (before, after) = std::thread::spawn(|| {
            let before = current_slice();
            prefer_low_latency();
            (before, current_slice())
        })
        .join()
        .unwrap();
        if before == 0 {
            eprintln!("this kernel reports no slices; nothing to check");
            return;
        }
        assert_eq!(after, SLICE_NS, "slice was {before} ns before the call");
    }
}
