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

/// Nothing to raise off Unix.
#[cfg(not(unix))]
pub(crate) fn raise() -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::process::{Resource, getrlimit};

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let now = super::raise();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(now, limit.current);
        assert_eq!(limit.current, limit.maximum);
    }
}
