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

/// A key's rate limits, both in one call. KEYS[1]: the GCRA theoretical arrival time of
/// its requests, KEYS[2]: that of its tokens (ms, server clock); ARGV[1]: requests per
/// minute, ARGV[2]: tokens per minute (0: no such limit). Requests: a burst of up to a
/// minute's requests, then one per 60 s / n (at least 1 ms: `PX 0` is refused). Tokens: admitted while their arrival time is
/// less than a minute ahead (charged after the answer by [`TOKENS`]). Returns 0 when
/// admitted (the request counted), else the longer wait in ms (nothing counted).
pub(crate) static RATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
if tonumber(ARGV[2]) > 0 then
  local ahead = tonumber(redis.call('GET', KEYS[2]) or '0') - now
  if ahead >= 60000 then wait = ahead - 60000 + 1 end
end
local n = tonumber(ARGV[1])
local nxt = nil
if n > 0 then
  local interval = math.floor(60000 / n)
  if interval < 1 then interval = 1 end
  local limit = interval * n
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  nxt = tat + interval
  if nxt - now > limit and nxt - now - limit > wait then
    wait = nxt - now - limit
  end
end
if wait > 0 then return wait end
if nxt then
  redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', string.format('%d', nxt - now))
end
return 0
",
    )
});

/// Tokens an answer used. KEYS[1]: the key's token arrival time (ms, server clock);
/// ARGV[1]: tokens, ARGV[2]: tokens per minute. Moves the arrival time on by
/// tokens * 60 s / tpm (rounded up to the ms) from itself or now, the later, at most two
/// minutes ahead (one minute of debt). Returns how far ahead it is now (ms).
pub(crate) static TOKENS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = math.ceil(tonumber(ARGV[1]) * 60000 / tonumber(ARGV[2]))
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + cost
if tat > now + 120000 then tat = now + 120000 end
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', string.format('%d', tat - now))
return tat - now
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
