//! The provider ladder's rungs, one module each.

pub(crate) mod account;
pub(crate) mod anthropic;
pub(crate) mod catalog;
pub(crate) mod discovered;
pub(crate) mod dns;
pub(crate) mod generate;
pub(crate) mod generation;
pub(crate) mod http;
pub(crate) mod paths;
pub(crate) mod stream;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod tool_capability;
pub(crate) mod tools;
