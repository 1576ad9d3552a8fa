//! Errors of starting and running the server (not of single requests: those are answered
//! in the client's API shape, see [`crate::status_for`]).

use std::net::SocketAddr;

/// Why the gateway could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The listen address is reachable from other hosts but no API keys are configured.
    #[error(
        "insecure_listen: refusing to listen on {addr} without API keys: anyone who can reach \
         this address could use (and spend on) every provider; configure server.keys, listen \
         on a loopback address (127.0.0.1 or ::1), or set the explicit insecure flag"
    )]
    InsecureListen {
        /// The address that was refused.
        addr: SocketAddr,
    },
    /// The listening socket failed.
    #[error("listener_failed: {0}")]
    Listener(#[source] std::io::Error),
}

impl GatewayError {
    /// A stable snake_case code.
    pub fn reason_code(&self) -> &'static str {
        match self {
            GatewayError::InsecureListen { .. } => "insecure_listen",
            GatewayError::Listener(_) => "listener_failed",
        }
    }
}
