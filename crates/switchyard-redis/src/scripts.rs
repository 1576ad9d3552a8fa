//! The server-side scripts: each operation is one round trip and atomic on the server.

use std::sync::LazyLock;

use redis::Script;

/// KEYS[1]: the charge id key; KEYS[2..]: the counters. ARGV[1]: micro-dollars; ARGV[2]:
/// how long the charge id is remembered (ms); ARGV[2 + i]: counter i's retention (s).
/// Returns 1 when applied, 0 when the charge id was seen before.
///
/// Redis does not roll a script back when one of its commands fails, so every key is
/// checked before the first write (the script runs atomically: nothing changes in
/// between): the charge id must be absent or a string, each counter absent or an integer
/// string of at most 18 digits, and the amount at most 18 digits (so no `INCRBY` can
/// overflow). A wrong one is an error reply (`WRONGTYPE` or `ERR`) and nothing is written,
/// so the caller journals the charge and a resend after the key is fixed applies it in
/// full. The charge id is set last.
pub(crate) static CHARGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local id_type = redis.call('TYPE', KEYS[1])['ok']
if id_type == 'string' then return 0 end
if id_type ~= 'none' then
  return redis.error_reply('WRONGTYPE charge id key ' .. KEYS[1] .. ' holds a ' .. id_type .. ', not a string')
end
if not string.match(ARGV[1], '^%d+$') or #ARGV[1] > 18 then
  return redis.error_reply('ERR charge amount ' .. ARGV[1] .. ' is not an integer of at most 18 digits')
end
for i = 2, #KEYS do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t == 'string' then
    local v = redis.call('GET', KEYS[i])
    local digits = string.match(v, '^%-?(%d+)$')
    if not digits or #digits > 18 then
      return redis.error_reply('ERR spend counter ' .. KEYS[i] .. ' holds `' .. string.sub(v, 1, 40) .. '`, not an integer of at most 18 digits')
    end
  elseif t ~= 'none' then
    return redis.error_reply('WRONGTYPE spend counter ' .. KEYS[i] .. ' holds a ' .. t .. ', not a string')
  end
end
for i = 2, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[i + 1])
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
return 1
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

/// KEYS[1]: a stored response's key; ARGV[1]: the value to keep (an envelope:
/// `StoredBytes::to_envelope`, the caller as JSON, a newline, the record); ARGV[2]: the
/// caller as that JSON; ARGV[3]: its time to live (ms). Keeps the value unless the key holds
/// an envelope of another caller. Anything else under the key is no stored response (a
/// `GET` of the store ignores it) and is replaced, as `SET` would: a value of another type,
/// a string without a newline, or one whose caller part is not a JSON string or `null`.
/// Returns 1 when kept, 0 when the id is another caller's.
pub(crate) static PUT_UNLESS_TAKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('TYPE', KEYS[1])['ok'] == 'string' then
  local v = redis.call('GET', KEYS[1])
  local nl = string.find(v, '\n', 1, true)
  if nl then
    local head = string.sub(v, 1, nl - 1)
    local ok, caller = pcall(cjson.decode, head)
    if ok and (type(caller) == 'string' or caller == cjson.null) and head ~= ARGV[2] then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
",
    )
});
