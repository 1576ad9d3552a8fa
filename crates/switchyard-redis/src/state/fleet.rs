//! [`FleetState`] of the [`RedisState`]: in-flight counts and shared probe results.
//!
//! - `inflight:<provider>`: a hash, one field per replica id, each `<count>:<expiry ms>`
//!   on the server's clock; an admission script drops expired fields, sums the others and
//!   sets this replica's count only when the sum stays within the limit (one round trip,
//!   atomic). The hash itself expires twice the TTL after its last write.
//! - `probe:<provider>`: the last probe result (`up`, `down:<reason code>`) with a TTL of
//!   one probe interval; `probe-claim:<provider>` (`SET NX`) names no one, it only makes
//!   one replica at a time the prober.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use switchyard_router::{FleetAdmit, FleetState, ProbeTurn, SharedProbe, SharedStateError};

use super::{RedisState, millis};

/// KEYS[1]: the provider's in-flight hash. ARGV: replica id, its new count, the limit,
/// the TTL (ms). Returns -1 when admitted, else the other replicas' total.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local others = 0
for i = 1, #all, 2 do
  local n, exp = string.match(all[i + 1], '^(%d+):(%d+)$')
  if n == nil or tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] then
    others = others + tonumber(n)
  end
end
if others + tonumber(ARGV[2]) > tonumber(ARGV[3]) then
  return others
end
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. string.format('%d', now + ttl))
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
return -1
",
    )
});

/// KEYS[1]: the provider's in-flight hash. ARGV: replica id, its count (0 removes it),
/// the TTL (ms).
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if tonumber(ARGV[2]) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. string.format('%d', now + ttl))
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
return 1
",
    )
});

/// KEYS[1]: the probe result; KEYS[2]: the probe claim. ARGV[1]: the claim's length (ms).
/// Returns the fresh result, `` (the claim is yours) or `-` (another replica holds it).
static PROBE_TURN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local r = redis.call('GET', KEYS[1])
if r then return r end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return '' end
return '-'
",
    )
});

impl RedisState {
    fn in_flight_key(&self, provider: &str) -> String {
        format!("{}:inflight:{provider}", self.prefix)
    }

    fn probe_keys(&self, provider: &str) -> (String, String) {
        (
            format!("{}:probe:{provider}", self.prefix),
            format!("{}:probe-claim:{provider}", self.prefix),
        )
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, SharedStateError> {
        let mut conn = self.conn().await?;
        match invocation.invoke_async::<T>(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.fail(&e).await),
        }
    }
}

#[async_trait]
impl FleetState for RedisState {
    async fn admit(
        &self,
        provider: &str,
        replica: &str,
        count: u64,
        limit: u64,
        ttl: Duration,
    ) -> Result<FleetAdmit, SharedStateError> {
        let mut invocation = ADMIT.prepare_invoke();
        invocation
            .key(self.in_flight_key(provider))
            .arg(replica)
            .arg(count)
            .arg(limit)
            .arg(millis(ttl));
        match self.run::<i64>(&invocation).await? {
            -1 => Ok(FleetAdmit::Admitted),
            others => Ok(FleetAdmit::Full {
                others: u64::try_from(others).unwrap_or(0),
            }),
        }
    }

    async fn publish_in_flight(
        &self,
        provider: &str,
        replica: &str,
        count: u64,
        ttl: Duration,
    ) -> Result<(), SharedStateError> {
        let mut invocation = PUBLISH.prepare_invoke();
        invocation
            .key(self.in_flight_key(provider))
            .arg(replica)
            .arg(count)
            .arg(millis(ttl));
        self.run::<i64>(&invocation).await.map(drop)
    }

    async fn probe_turn(
        &self,
        provider: &str,
        claim: Duration,
    ) -> Result<ProbeTurn, SharedStateError> {
        let (result, claim_key) = self.probe_keys(provider);
        let mut invocation = PROBE_TURN.prepare_invoke();
        invocation.key(result).key(claim_key).arg(millis(claim));
        let answer = self.run::<String>(&invocation).await?;
        match answer.as_str() {
            "" => Ok(ProbeTurn::Yours),
            "-" => Ok(ProbeTurn::Busy),
            stored => SharedProbe::decode(stored)
                .map(ProbeTurn::Fresh)
                .ok_or_else(|| SharedStateError::Answer(format!("probe result `{stored}`"))),
        }
    }

    async fn publish_probe(
        &self,
        provider: &str,
        result: SharedProbe,
        ttl: Duration,
    ) -> Result<(), SharedStateError> {
        let (result_key, claim_key) = self.probe_keys(provider);
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(result_key)
            .arg(result.encode())
            .arg("PX")
            .arg(millis(ttl))
            .ignore()
            .del(claim_key)
            .ignore();
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(&e).await),
        }
    }
}
