"""The one Lua script that holds an account's shared limit inside Redis.

It applies, for every process and host at once, the rules of the in-process
:class:`~masking_async.client._limiter_state.RateState` (read that docstring first):

* **ceiling** — an exact sliding window: a sorted set of the slots granted in the last window, so
  no window of ``per`` seconds ever holds more than ``requests``, the first one included.
* **pacer** — slots ``1 / rate`` apart from the first one (a late one catches up at most
  ``CATCH_UP`` of a window), so arrivals are even.
* **pause** — after any process's 429, nothing is granted before its ``Retry-After``.
* **AIMD** — the same decrease, hold and climb, on one shared ``rate``.

Why an exact sliding window and not GCRA (redis-cell): GCRA admits ``burst + rate * per`` in a
window of ``per`` seconds, so it is exact only with no burst at all, and it holds no count that a
pause or a lowered rate could be checked against. A log of the last window's slots admits exactly
what the server's own rule admits; the pacer alone is GCRA with no burst, the log its proof.

Slots are *reserved*: a caller that cannot go now is given the earliest time it may go, sleeps,
and *claims* it. A claim more than ``late_us`` (half the margin) late is refused and the caller
lines up again: a process starved of CPU would otherwise send long after its slot, and the spread
of those delays, not the network, is what the margin must cover (measured on a loaded 2-core
machine: 130 ms without this rule, under 40 ms with it).

A slot is ``max(now, paused_until, pacer, newest slot, Nth-newest + window)``: slots never go
back in time and any ``N + 1`` of them span at least ``window`` (``per`` plus the margin for the
spread of delays to the server), whatever is removed later. A 429 removes every
slot not yet reached and bumps an epoch; the claim re-checks both and the pause, so a 429 seen
by any process holds every waiter, including those already queued, and they line up again at
the new rate from the end of the pause.

Every time is Redis ``TIME`` in microseconds (exact in a Lua double), so hosts' clocks never meet.
A Redis younger than one window may have lost what its previous life granted: the first call on
an account with no state then pauses everyone until the server is one window old.

Why the AIMD rule is written twice (here in Lua, and in ``RateState``): the shared rate is
changed by every process's 429 and read by every reservation, so it must change in the same
atomic step as the window it guards, inside Redis; a Python copy that read, decided and wrote
back would race other processes between the read and the write. So the *rule* is copied, and
kept small; its *numbers* are not: ``decrease``, ``increase``, ``quiet`` and the module constants
``FLOOR_SHARE``, ``HOLD_SHARE``, ``HOLD_PERIODS`` and ``CATCH_UP`` of ``_limiter_state`` are
passed in ``ARGV`` by ``limit_arguments``, so a change to one of them reaches both sides.
``tests/test_aimd_agreement.py`` sets one state on both sides and checks that a 429 and the
climbs after it leave the same rate.

``KEYS = {log, state}``; ``ARGV = {op, member, slot, epoch, pause_us}`` then the limit's numbers
(:data:`PARAMETERS`). Every answer is ``{delay_us, slot_us, epoch, rate, pause_left_us}`` with
``rate`` (requests per second) as a string and ``delay_us = -1`` meaning "reserve again".
"""

from __future__ import annotations

from typing import Final

__all__ = ["PARAMETERS", "SCRIPT"]

#: The limit's numbers, in this order after the five operation arguments.
PARAMETERS: Final = (
    "requests",
    "per_us",
    "margin_us",
    "decrease",
    "increase",
    "quiet_us",
    "floor_share",
    "hold_share",
    "hold_periods",
    "catch_up_us",
    "late_us",
)

SCRIPT: Final = r"""
local log, state = KEYS[1], KEYS[2]
local op, member, claimed, epoch_seen, pause = ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5])
local n, per, margin = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local decrease, increase, quiet = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local floor_share, hold_share = tonumber(ARGV[12]), tonumber(ARGV[13])
local hold_periods, catch_up, late = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local window = per + margin
local ceiling = n * 1000000 / per        -- requests per second
local top = n * 1000000 / window         -- the pacer's highest rate

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

if redis.call('EXISTS', state) == 0 then
  local info = redis.call('INFO', 'server')
  local uptime = tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) * 1000000
  local hold = 0
  if uptime < window then hold = now + window - uptime end
  redis.call('HSET', state, 'rate', top, 'paused_until', hold, 'pace', 0, 'epoch', 0,
    'climb_at', 0, 'hold_until', 0, 'refused', top)
end
local s = {}
local raw = redis.call('HGETALL', state)
for i = 1, #raw, 2 do s[raw[i]] = tonumber(raw[i + 1]) end
s.rate = math.min(s.rate, top)

-- What time alone does: after a pause, one climb per quiet period, held under the refused rate.
while s.climb_at > 0 and now >= s.climb_at do
  if s.rate >= top then s.climb_at = 0; break end
  local step = s.rate + increase * ceiling
  if s.climb_at < s.hold_until then
    step = math.min(step, math.max(s.rate, hold_share * s.refused))
  end
  s.rate = math.min(top, step)
  s.climb_at = s.climb_at + quiet
end

local function save()
  redis.call('HSET', state, 'rate', s.rate, 'paused_until', s.paused_until, 'pace', s.pace,
    'epoch', s.epoch, 'climb_at', s.climb_at, 'hold_until', s.hold_until, 'refused', s.refused)
end

local function answer(delay, slot)
  return {delay, slot, s.epoch, tostring(s.rate), math.max(0, s.paused_until - now)}
end

if op == 'reserve' then
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  local slot = math.max(now, s.paused_until, s.pace)
  local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
  if newest[2] then slot = math.max(slot, tonumber(newest[2])) end
  local count = redis.call('ZCARD', log)
  if count >= n then
    local nth = redis.call('ZRANGE', log, count - n, count - n, 'WITHSCORES')
    slot = math.max(slot, tonumber(nth[2]) + window)
  end
  slot = math.ceil(slot)  -- whole microseconds: the answer carries it back exactly
  redis.call('ZADD', log, slot, member)
  redis.call('PEXPIREAT', log, math.ceil((slot + window) / 1000))
  local start = slot  -- the timetable starts at the first slot; a late one catches up a little
  if s.pace > 0 then start = math.max(s.pace, slot - catch_up) end
  s.pace = start + 1000000 / s.rate
  save()
  return answer(slot - now, slot)
end

if op == 'claim' then
  local score = redis.call('ZSCORE', log, member)
  if not score or tonumber(score) ~= claimed or s.epoch ~= epoch_seen
      or claimed < s.paused_until or now - claimed > late then
    redis.call('ZREM', log, member)
    save()
    return answer(-1, claimed)
  end
  save()
  return answer(math.max(0, claimed - now), claimed)
end

if op == 'throttle' then
  local first = now >= s.paused_until
  s.paused_until = math.max(s.paused_until, now + pause)
  if first then  -- once per pause: the 429s of requests already in flight are one signal
    local sent = redis.call('ZCOUNT', log, string.format('(%.0f', now - per), now)
    local just_sent = math.min(s.rate, sent * 1000000 / per)
    s.refused = just_sent
    s.rate = math.max(floor_share * top, decrease * just_sent)
  end
  s.climb_at = s.paused_until + quiet
  s.hold_until = s.paused_until + hold_periods * quiet
  -- Slots not reached yet were granted to no one: drop them, line up again after the pause.
  redis.call('ZREMRANGEBYSCORE', log, string.format('(%.0f', now), '+inf')
  s.pace = s.paused_until
  s.epoch = s.epoch + 1
  save()
  return answer(0, 0)
end

return redis.error_reply('unknown operation ' .. tostring(op))
"""
