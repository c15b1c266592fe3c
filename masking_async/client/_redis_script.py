"""The one Lua script that holds an account's shared limit inside Redis.

Why an exact sliding window and not GCRA: GCRA (redis-cell) admits ``burst + rate * per`` in a
window of ``per`` seconds, so it is exact only with no burst at all, and then even the first
``per`` seconds of a job are spread out. A log of the last ``N`` send times admits exactly what
the server's own rule admits: at most ``N`` in ANY window of ``per`` seconds, and all ``N`` at once
when the window is empty. The log is a sorted set of the last window's slots (at most ``N``) and
of the slots reserved by callers still waiting, so each call costs O(log N) in Redis and a few
kilobytes per account.

Slots are *reserved*: a caller that cannot go now is given the earliest time it may go, sleeps,
and *claims* it. The claim re-checks the pause and the epoch (bumped by every 429), so a 429 seen
by any process holds every waiter, including those already queued. A new slot is
``max(now, paused_until, last slot, Nth-newest slot + window)``: slots only grow and any
``N + 1`` of them span more than ``window``, whatever is removed later. ``window`` is ``per`` plus a
margin for the spread of delays between Redis granting a slot and the request reaching the server.

Every time is Redis ``TIME`` in microseconds (exact in a Lua double), so hosts' clocks never meet.
A Redis younger than one window may have lost what its previous life granted: the first call on
an account with no state then pauses everyone until the server is one window old.

Operations (``ARGV[1]``), all with ``KEYS = {log, state}``:

- ``reserve member ceiling window increase`` -> ``{delay_us, slot_us, epoch, allowed, pause_us}``
- ``claim member slot epoch ceiling window`` -> ``{delay_us (-1: reserve again), ...}``
- ``throttle ceiling window pause_us decrease floor`` -> ``{0, 0, epoch, allowed, pause_us}``

``allowed`` is the adaptive (AIMD) share of the ceiling, in requests per window, as a string.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SCRIPT"]

SCRIPT: Final = r"""
local log, state = KEYS[1], KEYS[2]
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function number(field, default)
  local value = redis.call('HGET', state, field)
  if value then return tonumber(value) end
  return default
end

local function load(ceiling, window)
  if redis.call('EXISTS', state) == 0 then
    local info = redis.call('INFO', 'server')
    local uptime = tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) * 1000000
    local hold = 0
    if uptime < window then hold = now + window - uptime end
    redis.call('HSET', state, 'allowed', ceiling, 'epoch', 0, 'paused_until', hold,
      'changed_at', now, 'decreased_at', 0)
  end
  local allowed = math.min(number('allowed', ceiling), ceiling)
  return allowed, number('epoch', 0), number('paused_until', 0)
end

local function answer(delay, slot, epoch, allowed, paused_until)
  return {delay, slot, epoch, tostring(allowed), math.max(0, paused_until - now)}
end

if op == 'reserve' then
  local member, ceiling, window = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
  local allowed, epoch, paused_until = load(ceiling, window)
  -- Additive increase: one step per whole quiet window since the last change.
  local changed_at = number('changed_at', now)
  local steps = math.floor((now - changed_at) / window)
  if steps >= 1 then
    allowed = math.min(ceiling, allowed + steps * tonumber(ARGV[5]) * ceiling)
    redis.call('HSET', state, 'allowed', allowed, 'changed_at', changed_at + steps * window)
  end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  local slot = math.max(now, paused_until)
  local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
  if newest[2] then slot = math.max(slot, tonumber(newest[2])) end
  local n = math.max(1, math.floor(allowed))
  local count = redis.call('ZCARD', log)
  if count >= n then
    local nth = redis.call('ZRANGE', log, count - n, count - n, 'WITHSCORES')
    slot = math.max(slot, tonumber(nth[2]) + window)
  end
  redis.call('ZADD', log, slot, member)
  redis.call('PEXPIREAT', log, math.ceil((slot + window) / 1000))
  return answer(slot - now, slot, epoch, allowed, paused_until)
end

if op == 'claim' then
  local member, slot, ceiling = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
  local allowed, epoch, paused_until = load(ceiling, tonumber(ARGV[6]))
  local score = redis.call('ZSCORE', log, member)
  if not score or tonumber(score) ~= slot or epoch ~= tonumber(ARGV[4])
      or now < paused_until then
    redis.call('ZREM', log, member)
    return answer(-1, slot, epoch, allowed, paused_until)
  end
  return answer(math.max(0, slot - now), slot, epoch, allowed, paused_until)
end

if op == 'throttle' then
  local ceiling, window = tonumber(ARGV[2]), tonumber(ARGV[3])
  local allowed, epoch, paused_until = load(ceiling, window)
  paused_until = math.max(paused_until, now + tonumber(ARGV[4]))
  epoch = epoch + 1
  redis.call('HSET', state, 'paused_until', paused_until, 'epoch', epoch, 'changed_at', now)
  -- Multiplicative decrease below what was just sent, once per window: the 429s of requests
  -- already in flight are one signal, not many.
  if now - number('decreased_at', 0) >= window then
    local sent = redis.call('ZCOUNT', log, string.format('(%.0f', now - window), now)
    local floor = math.max(1, tonumber(ARGV[6]) * ceiling)
    allowed = math.max(floor, math.min(allowed, sent) * tonumber(ARGV[5]))
    redis.call('HSET', state, 'allowed', allowed, 'decreased_at', now)
  end
  return answer(0, 0, epoch, allowed, paused_until)
end

return redis.error_reply('unknown operation ' .. tostring(op))
"""
