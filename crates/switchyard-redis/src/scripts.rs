//! The server-side scripts: each operation is one round trip and atomic on the server.

use std::sync::LazyLock;

use redis::Script;

/// KEYS[1]: the charge id key; KEYS[2..]: the counters. ARGV[1]: micro-dollars; ARGV[2]:
/// how long the charge id is remembered (ms); ARGV[2 + i]: counter i's retention (s).
/// Returns 1 when applied, 0 when the charge id was seen before.
pub(crate) static CHARGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then
  for i = 2, #KEYS do
    redis.call('INCRBY', KEYS[i], ARGV[1])
    redis.call('EXPIRE', KEYS[i], ARGV[i + 1])
  end
  return 1
end
return 0
",
    )
});

/// GCRA. KEYS[1]: the key's theoretical arrival time (ms, server clock); ARGV[1]: requests
/// per minute. A burst of up to a minute's requests, then one per 60 s / n. Returns 0 when
/// admitted (and counted), else the wait in ms.
pub(crate) static RATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local interval = math.floor(60000 / n)
local limit = interval * n
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > limit then
  return nxt - now - limit
end
redis.call('SET', KEYS[1], nxt, 'PX', nxt - now)
return 0
",
    )
});

/// KEYS[1]: the cooldown key; ARGV[1]: its length (ms). Keeps a longer one.
pub(crate) static COOL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
",
    )
});
