//! How this process's allocator keeps memory: on glibc, freed memory stays with the process
//! for the next allocation instead of going back to the kernel.
//!
//! A run allocates and frees buffers of tens to hundreds of megabytes many times over: the
//! dealer's material frames, each product's packed operand, the gates' outputs. glibc serves
//! every allocation above its mmap threshold (32 MiB at most) with a fresh `mmap` and unmaps it
//! on free, trims the heap's top when it passes the trim threshold, and gives each thread's
//! arena its own 64 MiB heaps. So the same bytes are faulted in and zero-filled by the kernel
//! again and again. On a 2-core VM, BERT-base at 2 layers took 1.25 million page faults and 2.5
//! to 2.9 s of system time for 1.7 GB of peak memory, beside 8 s of user time.
//!
//! One arena that grows with `brk`, no `mmap` for large blocks and no trimming keep what was
//! freed for reuse: the same run takes 0.42 to 0.46 million faults (its peak, touched once),
//! 1.1 to 1.2 s of system time, and its peak memory is unchanged; at full size the peaks fell
//! (BERT-base 2.66 → 2.16 GiB, GPT-2 5.69 → 4.37 GiB; the README has the times). The costs:
//! memory freed late in a run is not returned before the process exits, which a one-session
//! command does not need, and a zeroed allocation (`vec![0; n]`) that reuses freed memory is
//! zero-filled in user space, where fresh pages came zeroed from the kernel.
//!
//! A `GLIBC_TUNABLES` naming a `glibc.malloc` tunable, any of glibc's `MALLOC_*` variables, or
//! `MPCFLOW_MALLOC=default` leaves the allocator as the user set it. Elsewhere (musl, macOS)
//! nothing changes. The library crates and the Python module do not do
//! this: an embedding process keeps its own allocator policy.

/// What [`keep_freed_memory`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
pub enum Policy {
    /// glibc took every setting.
    Applied,
    /// The environment sets the allocator (see the module docs): left as the user set it.
    LeftToTheUser,
    /// glibc refused a setting (the others hold) or this is not glibc: its defaults stay.
    NotApplied,
}

/// Applies the policy above, once, before the command allocates anything large (threads started
/// before it keep the arenas they have).
pub fn keep_freed_memory() -> Policy {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if user_sets_the_allocator() {
            return Policy::LeftToTheUser;
        }
        // glibc's mallopt parameters (malloc.h).
        const M_TRIM_THRESHOLD: libc::c_int = -1;
        const M_MMAP_MAX: libc::c_int = -4;
        const M_ARENA_MAX: libc::c_int = -8;
        let mut applied = true;
        for (param, value) in [(M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, libc::c_int::MAX)] {
            // SAFETY: mallopt only sets allocator parameters; glibc serialises it against
            // allocation, and every value is one malloc.h documents for its parameter. A refusal
            // (0) leaves glibc's default, which is correct, only slower.
            #[allow(unsafe_code)]
            let ok = unsafe { libc::mallopt(param, value) };
            applied &= ok == 1;
        }
        if applied { Policy::Applied } else { Policy::NotApplied }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    Policy::NotApplied
}

/// Whether the environment sets glibc's allocator, or asks for its defaults.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn user_sets_the_allocator() -> bool {
    std::env::var_os("GLIBC_TUNABLES").is_some_and(|t| t.to_string_lossy().contains("glibc.malloc."))
        || std::env::var_os("MPCFLOW_MALLOC").is_some_and(|v| v == "default")
        || std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("MALLOC_"))
}

/// Returns the freed memory [`keep_freed_memory`] kept to the kernel, so that the resident size
/// counts live data only again (`mpcflow bench` measures each scenario's peak from there).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only returns free heap pages to the kernel; it takes the arena's
        // lock and touches no live allocation.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Bytes in blocks glibc mmapped for themselves (its own accounting; `mallinfo`, not
    /// `mallinfo2`, which needs glibc 2.33: an `int` holds what this test allocates).
    fn mmapped_bytes() -> i64 {
        // SAFETY: mallinfo only reads the allocator's statistics.
        #[allow(unsafe_code)]
        let info = unsafe { libc::mallinfo() };
        i64::from(info.hblkhd)
    }

    /// A 48 MiB block is past glibc's largest mmap threshold (32 MiB), so by default it gets
    /// an mmap of its own; under the policy it comes from an arena, whichever this thread has
    /// (a test thread had one before the policy; blocks past an arena heap's 64 MiB would
    /// still be mmapped there, which the command's threads, all in the main arena, never are).
    #[test]
    fn a_large_block_comes_from_an_arena() {
        match keep_freed_memory() {
            Policy::LeftToTheUser => {
                eprintln!("SKIPPED: the environment sets the allocator, so the policy is left off");
                return;
            }
            p => assert_eq!(p, Policy::Applied),
        }
        let before = mmapped_bytes();
        let block = vec![1u8; 48 << 20];
        let during = mmapped_bytes();
        std::hint::black_box(&block);
        drop(block);
        // Other tests may free blocks mapped before the policy, not map 48 MiB more.
        assert!(during < before + (48 << 20), "the block was mmapped: {before} → {during} bytes");
        release_freed_memory();
    }
}
