//! The process's allocator: mimalloc, configured in the binary.
//!
//! mimalloc is faster than glibc's allocator for verdict's many small strings and returns freed
//! memory to the system instead of keeping it in per-thread arenas. It does so after a delay:
//! an ingest frees hundreds of MB a second (decoded chunks, sorted row groups), and what is
//! freed but not yet returned counts in the process's resident memory. mimalloc's own default
//! is a second or more; 300 ms lowers an ingest's peak by about an eighth at the same speed,
//! while shorter delays cost time (pages returned and faulted in again; README, Benchmarks).
//! Transparent huge pages are off: zeroing 2 MiB pages that were released and touched again
//! cost an ingest a fifth of its time.
//!
//! The options are set by the allocator's first allocation, before `main`, so they hold for
//! every thread; mimalloc's environment variables for the same options (`MIMALLOC_PURGE_DELAY`
//! and the like) do not override them.

use std::time::Duration;

use commonware_allocator::mimalloc::{Config, MiMalloc, Purge};

/// How long memory freed into mimalloc's arenas stays committed before it is returned.
pub const PURGE_DELAY: Duration = Duration::from_millis(300);

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc::new(Config {
    purge: Purge::After(PURGE_DELAY),
    transparent_huge_pages: false,
    ..Config::DEFAULT
});

#[cfg(test)]
mod tests {
    use commonware_allocator::mimalloc::{is_global_allocator, Effective};

    use super::PURGE_DELAY;

    #[test]
    fn the_configured_allocator_is_in_force() {
        assert!(is_global_allocator());
        let e = Effective::read();
        assert_eq!(e.purge, Some(PURGE_DELAY));
        assert!(!e.transparent_huge_pages);
    }
}
