//! Helpers shared by the integration tests: the generic ones come from
//! `switchyard_testkit::support` (shared with the other client's tests), the client here.

#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub
)]

use switchyard_http::Timeouts;
use switchyard_ollama::{OllamaClient, OllamaConfig};
pub use switchyard_testkit::support::{
    GUARD, drain, eventually, guarded, request, split, text_of, timeouts,
};

pub fn client_with(base_url: &str, timeouts: Timeouts) -> OllamaClient {
    let mut config = OllamaConfig::new(base_url);
    config.client.timeouts = timeouts;
    OllamaClient::new(config).unwrap()
}

pub fn client(base_url: &str) -> OllamaClient {
    client_with(base_url, timeouts(2000, 2000))
}
