//! Raises the open-file limit: every client connection and every upstream connection is a
//! file descriptor, and the usual soft limit (1024) is far below what the hard limit allows.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force
/// (`None` when unlimited or unknown). Failures are logged, never fatal.
#[cfg(unix)]
pub(crate) fn raise() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(
                from = ?limit.current,
                to = ?limit.maximum,
                "raised the open-file limit to its hard limit"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                soft = ?limit.current,
                "could not raise the open-file limit; connections may run out of descriptors"
            ),
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Descriptors kept aside from client connections (listener, logs, ledger, probes).
const SPARE_DESCRIPTORS: u64 = 64;

/// `configured` client connections, lowered to fit the open-files soft limit in force:
/// each client connection may hold an upstream connection too, so at most half of what is
/// left after [`SPARE_DESCRIPTORS`]. Without it, at 1024 descriptors and the default 4096
/// connections, accept fails with "Too many open files" before the cap sheds anything.
pub(crate) fn connection_cap(configured: usize) -> usize {
    fit(configured, soft_limit())
}

/// `configured` lowered to fit a soft limit of `soft` descriptors (`None`: unlimited).
fn fit(configured: usize, soft: Option<u64>) -> usize {
    let Some(soft) = soft else {
        return configured;
    };
    let room = usize::try_from(soft.saturating_sub(SPARE_DESCRIPTORS) / 2).unwrap_or(usize::MAX);
    configured.min(room.max(1))
}

#[cfg(unix)]
fn soft_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn soft_limit() -> Option<u64> {
    None
}

/// Nothing to raise off Unix.
#[cfg(not(unix))]
pub(crate) fn raise() -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::process::{Resource, getrlimit};

    #[test]
    fn connections_fit_in_the_open_files_limit() {
        assert_eq!(super::fit(4096, Some(1024)), 480);
        assert_eq!(super::fit(100, Some(1024)), 100);
        assert_eq!(super::fit(4096, Some(65536)), 4096);
        assert_eq!(super::fit(4096, None), 4096);
        assert_eq!(super::fit(4096, Some(10)), 1);
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let now = super::raise();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(now, limit.current);
        assert_eq!(limit.current, limit.maximum);
    }
}
