"""The Lua scripts the Redis store runs, and the keys they use (docs/scaling.md, "In Redis").

Owns: the data layout in Redis and every multi-key change, each one script so that Redis applies
it atomically and the node pays one round trip for it (scripts are sent with EVALSHA, many per
pipelined batch).

Does not own: when scripts run (:mod:`rawws.chat.redis_store`, :mod:`rawws.chat.redis_link`).

Keys (``P`` is the configured prefix)::

    P:bus            stream: every change any node makes, in one order (XADD MAXLEN ~)
    P:bus:q          counter: each bus entry's number (field q), so a reader sees a gap
    P:incarnation    random string set once: changes only if Redis lost its data
    P:rooms          set of room names that have a meta hash
    P:room:NAME      hash: seq (last assigned), epoch
    P:hist:NAME      stream: the room's kept messages, entry id "SEQ-0", field d (MAXLEN ~)
    P:inboxes        set of users that have an inbox hash
    P:inbox:NAME     hash: message_id -> "ORDER|EXPIRES|TEXT" (key expires with its newest item)
    P:inbox:q        counter: inbox items' order
    P:idem:SCOPE:KEY hash: f (fingerprint), d (stored text, if any), x (extra JSON),
                     e (expiry, store clock); EXPIRE idempotency_ttl
    P:nodes          sorted set: node id -> last heartbeat (Redis TIME, ms)
    P:node:ID        hash: connection id -> JSON {"u": user, "r": [rooms], "p": [patterns]}

Bus entries carry ``q`` (number), ``n`` (node), ``k`` (kind) and per kind: ``m`` a room message
(``r`` room, ``s`` seq, ``e`` epoch, ``d`` text, ``w`` the writer's op number, ``x`` the
connection not to deliver it to), ``i`` an inbox item (``u``, ``m`` message_id, ``o`` order,
``X`` expiry, ``d``, ``w``), ``a`` inbox items gone (``u``, ``ids``), ``g`` a room gone (``r``,
``e``), ``p`` / ``P`` presence changes / a node's whole presence (``c`` JSON), ``h`` heartbeat,
``x`` a node gone (``t``), ``l`` a live delivery (``v`` u|t|b, ``a`` user or topic, ``o``
droppable, ``d``).

Every script's KEYS start with the bus and its counter, ARGV with the bus length, the node id
and the op number (``w``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["SCRIPTS"]

_BUS: Final = """
local function bus(...)
  local q = redis.call('INCR', KEYS[2])
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'q', q, 'n', ARGV[2], ...)
end
"""

_RECORD: Final = """
local function record(key, f, d, x, e, ttl)
  redis.call('DEL', key)
  if d then
    redis.call('HSET', key, 'f', f, 'd', d, 'x', x, 'e', e)
  else
    redis.call('HSET', key, 'f', f, 'x', x, 'e', e)
  end
  redis.call('EXPIRE', key, ttl)
end
"""

#: KEYS: bus, bus:q, room:NAME, hist:NAME, rooms[, idem]. ARGV: length, node, w, room, head
#: (the event's JSON without its closing brace), proposed epoch, message_id, history length,
#: excluded connection ('' none)[, fingerprint, extra, expiry, ttl].
#: Returns {seq, epoch, bus id}, or {0} if the idempotency key exists (a concurrent duplicate).
APPEND: Final = _BUS + _RECORD + """
if #KEYS >= 6 and redis.call('EXISTS', KEYS[6]) == 1 then return {0} end
local epoch = redis.call('HGET', KEYS[3], 'epoch')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', KEYS[3], 'epoch', epoch)
  redis.call('SADD', KEYS[5], ARGV[4])
end
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
local text = ARGV[5] .. ',"seq":' .. seq .. ',"epoch":"' .. epoch .. '","message_id":"'
  .. ARGV[7] .. '"}'
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], seq .. '-0', 'd', text)
local id = bus('k', 'm', 'w', ARGV[3], 'r', ARGV[4], 's', seq, 'e', epoch, 'x', ARGV[9],
               'd', text)
if #KEYS >= 6 then record(KEYS[6], ARGV[10], text, ARGV[11], ARGV[12], ARGV[13]) end
return {seq, epoch, id}
"""

#: KEYS: bus, bus:q, inbox:NAME, inbox:q, inboxes[, idem]. ARGV: length, node, w, user, head,
#: message_id, expiry (store clock), key ttl (s)[, fingerprint, extra, expiry, ttl].
#: Returns {order, bus id}, or {0} for a concurrent duplicate key.
INBOX_PUSH: Final = _BUS + _RECORD + """
if #KEYS >= 6 and redis.call('EXISTS', KEYS[6]) == 1 then return {0} end
local order = redis.call('INCR', KEYS[4])
local text = ARGV[5] .. ',"message_id":"' .. ARGV[6] .. '"}'
redis.call('HSET', KEYS[3], ARGV[6], order .. '|' .. ARGV[7] .. '|' .. text)
local ttl = tonumber(ARGV[8])
if redis.call('TTL', KEYS[3]) < ttl then redis.call('EXPIRE', KEYS[3], ttl) end
redis.call('SADD', KEYS[5], ARGV[4])
local id = bus('k', 'i', 'w', ARGV[3], 'u', ARGV[4], 'm', ARGV[6], 'o', order, 'X', ARGV[7],
               'd', text)
if #KEYS >= 6 then record(KEYS[6], ARGV[9], text, ARGV[10], ARGV[11], ARGV[12]) end
return {order, id}
"""

#: KEYS: bus, bus:q, inbox:NAME. ARGV: length, node, w, user, ids... Returns {removed}.
INBOX_DROP: Final = _BUS + """
local n = 0
for i = 5, #ARGV do n = n + redis.call('HDEL', KEYS[3], ARGV[i]) end
if n > 0 then bus('k', 'a', 'u', ARGV[4], 'ids', table.concat(ARGV, ',', 5)) end
return {n}
"""

#: KEYS: bus, bus:q, room:NAME, hist:NAME, rooms. ARGV: length, node, w, room, seq, epoch.
#: Deletes the room only if it is still at that seq under that epoch (nobody wrote since).
ROOM_GONE: Final = _BUS + """
local meta = redis.call('HMGET', KEYS[3], 'seq', 'epoch')
if meta[2] ~= ARGV[6] or tonumber(meta[1] or '0') ~= tonumber(ARGV[5]) then return {0} end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('SREM', KEYS[5], ARGV[4])
bus('k', 'g', 'r', ARGV[4], 'e', ARGV[6])
return {1}
"""

#: KEYS: bus, bus:q, node:ID, nodes. ARGV: length, node, w, ttl (ms), whole ('1': replace the
#: node's presence), changes JSON, then (connection, state or '') pairs.
PRESENCE: Final = _BUS + """
local whole = ARGV[5] == '1'
if whole then redis.call('DEL', KEYS[3]) end
for i = 7, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[3], ARGV[i])
  else redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[3], ARGV[4])
if whole then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[4], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),
             ARGV[2])
  bus('k', 'P', 'c', ARGV[6])
else
  bus('k', 'p', 'c', ARGV[6])
end
return {1}
"""

#: KEYS: bus, bus:q, nodes, node:ID. ARGV: length, node, w, ttl (ms).
#: Returns {1 if this node was not listed (new, or reaped as dead), nodes silent for ttl}.
HEARTBEAT: Final = _BUS + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[3], now, ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
bus('k', 'h')
return {added, redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[4]))}
"""

#: KEYS: bus, bus:q, nodes, node:DEAD. ARGV: length, node, w, dead node id, ttl (ms; 0: now,
#: for a node leaving by itself). Returns {1} if the node was removed.
REAP: Final = _BUS + """
local score = redis.call('ZSCORE', KEYS[3], ARGV[4])
if not score then return {0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(ARGV[5]) > 0 and tonumber(score) > now - tonumber(ARGV[5]) then return {0} end
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('DEL', KEYS[4])
bus('k', 'x', 't', ARGV[4])
return {1}
"""

#: KEYS: bus, bus:q[, idem]. ARGV: length, node, w, kind (u|t|b), target, droppable (0|1),
#: data[, fingerprint, extra, expiry, ttl]. A live delivery for other nodes (with the
#: request's idempotency record). Returns {bus id}.
RELAY: Final = _BUS + _RECORD + """
local id = bus('k', 'l', 'v', ARGV[4], 'a', ARGV[5], 'o', ARGV[6], 'd', ARGV[7])
if #KEYS >= 3 then record(KEYS[3], ARGV[8], false, ARGV[9], ARGV[10], ARGV[11]) end
return {id}
"""

#: KEYS: idem. ARGV: fingerprint, extra, expiry, ttl. An idempotency record on its own.
REMEMBER: Final = _RECORD + """
record(KEYS[1], ARGV[1], false, ARGV[2], ARGV[3], ARGV[4])
return {1}
"""

#: KEYS: bus, bus:q, incarnation. ARGV: a new incarnation (kept if one exists).
#: Returns {last bus id, last bus number, incarnation}: a consistent starting point.
SNAPSHOT: Final = """
redis.call('SET', KEYS[3], ARGV[1], 'NX')
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
return {id, redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3])}
"""

SCRIPTS: Final = {
    "append": APPEND,
    "inbox_push": INBOX_PUSH,
    "inbox_drop": INBOX_DROP,
    "room_gone": ROOM_GONE,
    "presence": PRESENCE,
    "heartbeat": HEARTBEAT,
    "reap": REAP,
    "relay": RELAY,
    "remember": REMEMBER,
    "snapshot": SNAPSHOT,
}
