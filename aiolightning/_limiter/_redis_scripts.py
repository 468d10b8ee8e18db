"""The two Lua scripts the shared limiter runs inside Redis, atomically, on Redis's clock.

Each scope has two keys (one hash slot: ``{<shared_key>:<scope>}``): ``:tat``, the token
bucket as GCRA's *theoretical arrival time*, and ``:pause``, the pause gate's opening time;
both in microseconds of the server's ``TIME``, so the hosts' clocks never matter.

* :data:`GRANT` reserves up to ``n`` send times for a process's queued callers in one round
  trip: slot ``i`` goes out at ``s = max(now, tat - tolerance)``, then ``tat = max(tat, s) +
  interval`` (a bucket of ``rate = 1/interval`` with ``burst = tolerance/interval + 1``). It
  stops at the first slot beyond ``now + horizon`` but always grants one, so every call is
  useful and processes never poll against each other. Returns ``{pause_left, offset...}``
  (microseconds from now).
* :data:`PAUSE` closes the gate until ``now + seconds`` (extends, never shortens), moves
  ``tat`` so that the first slot after the pause is at its end with no burst, and publishes
  ``"<origin> <left> <scope>"`` on the channel so that other processes close their gates at
  once (the reservations they already hold for inside the pause are then dropped).

Numbers are Lua doubles (exact to 2^53 µs); they are written with ``%.0f``, never
``tostring`` (which would round them to 14 digits).
"""

from __future__ import annotations

__all__ = ["GRANT", "PAUSE"]

GRANT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local horizon = now + tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = {0}
for i = 1, n do
  local s = math.max(now, tat - tolerance)
  if i > 1 and s > horizon then break end
  out[#out + 1] = s - now
  tat = math.max(tat, s) + interval
end
redis.call('SET', KEYS[1], string.format('%.0f', tat),
  'PX', math.floor((tat - now) / 1000) + 60000)
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then out[1] = paused - now end
return out
"""

PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local seconds = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local untl = now + seconds
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if untl <= current then return 0 end
redis.call('SET', KEYS[2], string.format('%.0f', untl), 'PX', math.floor(seconds / 1000) + 1000)
if tolerance >= 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < untl + tolerance then
    tat = untl + tolerance
    redis.call('SET', KEYS[1], string.format('%.0f', tat),
      'PX', math.floor((tat - now) / 1000) + 60000)
  end
end
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. string.format('%.0f', seconds) .. ' ' .. ARGV[5])
return 1
"""
