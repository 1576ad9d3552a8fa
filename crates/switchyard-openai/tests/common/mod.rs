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
use switchyard_openai::{OpenAiClient, OpenAiConfig};
pub use switchyard_testkit::support::{
    GUARD, drain, eventually, guarded, request, split, text_of, timeouts,
};

pub fn client_with(base_url: &str, timeouts: Timeouts) -> OpenAiClient {
    let mut config = OpenAiConfig::new(base_url);
    config.client.timeouts = timeouts;
    OpenAiClient::new(config).unwrap()
}

pub fn client(base_url: &str) -> OpenAiClient {
    client_with(base_url, timeouts(2000, 2000))
}
