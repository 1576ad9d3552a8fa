//! Shared state for a fleet of Switchyard replicas on Redis or Valkey: the
//! [`switchyard_router::SharedState`] implementation [`RedisState`], and the Responses
//! API's store on the same connection, [`RedisResponses`]
//! (a [`switchyard_gateway::ResponseBackend`]).
//!
//! What it keeps (all keys under one hash tag, `{<key_prefix>}:`, so a Cluster keeps them
//! on one slot and every script's keys are together):
//! - `spend:<scope>:<period>`: micro-dollars per day and month, global and per caller,
//!   added by one Lua script that first sets `charge:<charge id>` with `SET NX` (three
//!   days), so a charge sent twice (a retry, a reconciliation) counts once;
//! - `rate:<key id>` and `tpm:<key id>`: the GCRA theoretical arrival times of a key's
//!   requests and tokens, both checked (the request counted) by one script using the
//!   server's clock (`TIME`), one round trip a request; an answer's tokens move `tpm:` on
//!   with another script after it;
//! - `cool:<provider id>`: a cooldown, as a key whose TTL is the time left;
//! - `inflight:<provider id>`: each replica's in-flight count of a provider whose
//!   `max_concurrency` is fleet-wide (a hash field per replica, `<count>:<expiry ms>`),
//!   admitted by one script that sums the live fields;
//! - `probe:<provider id>`: the last health probe result, fresh for one probe interval, and
//!   `probe-claim:<provider id>`, the claim of the replica probing it now;
//! - `resp:<response id>`: a stored Responses API response (its caller and JSON), with the
//!   store's time to live as the key's (`SET ... PX`).
//!
//! URLs: `redis://[user:password@]host:port/db`, `rediss://` (TLS, rustls),
//! `redis+sentinel://host:port[,host:port...]/service[/db]` (the master of `service`, found
//! through the Sentinels at connect and again after a failure) and
//! `redis+cluster://host:port[,host:port...]` (`rediss+` for TLS on either). A password
//! given apart ([`RedisConfig::password`]) overrides one in the URL. TLS trusts the
//! built-in web roots, or only the CAs of [`RedisConfig::ca_file`] (a private CA) for the
//! server, every Cluster node, a Sentinel's master and TLS Sentinels.
//!
//! Errors name what to check: a wrong or missing password or user (`authentication
//! failed`), an ACL user without the scripting commands or the prefix's keys (`lacks a
//! permission`), a server certificate that no trusted CA signed (`set
//! shared_state.ca_file`). After a Sentinel failover (the connection drops, or a demoted
//! master answers `READONLY`), the master is looked up again.
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchyard_redis::{RedisConfig, RedisState};
//! use switchyard_router::{OutagePolicy, SharedStateHandle};
//!
//! let state = RedisState::new(RedisConfig::new("redis://127.0.0.1:6379/0"))?;
//! let handle = Arc::new(SharedStateHandle::new(Arc::new(state), OutagePolicy::default()));
//! // router.with_shared_state(handle)
//! # Ok::<(), switchyard_redis::RedisConfigError>(())
//! ```

mod conn;
mod endpoint;
mod responses;
mod scripts;
mod state;

pub use endpoint::{Endpoint, RedisConfigError};
pub use responses::RedisResponses;
pub use state::{RedisConfig, RedisState};
