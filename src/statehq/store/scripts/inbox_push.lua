#!lua
--[[ statehq inbox_push: queue one sender's updates of a webhook request, once each.

KEYS[1] inbox     sorted set  message id, scored by timestamp then arrival
KEYS[2] bodies    hash        message id -> encoded update
KEYS[3] seq       string      arrival counter (orders updates sharing a timestamp)
KEYS[3+i] mark    string      "received" mark of the i-th update (dedup TTL)

ARGV[1] dedup TTL in ms; then one triple per update: timestamp (s), id, body

Returns one flag per update: 1 queued, 0 already received (a redelivery, the same id in
another batch, a second app subscribed to the account). Every key is in the sender's
hash slot, so this runs on Redis Cluster.
]]
local dedup_ttl = ARGV[1]
local flags = {}
for i = 0, (#ARGV - 1) / 3 - 1 do
  local ts, id, body = tonumber(ARGV[2 + 3 * i]), ARGV[3 + 3 * i], ARGV[4 + 3 * i]
  if redis.call("SET", KEYS[4 + i], "1", "NX", "PX", dedup_ttl) then
    local seq = redis.call("INCR", KEYS[3]) % 1000000
    -- timestamp * 10^6 + arrival stays below 2^53, so the score is exact.
    redis.call("ZADD", KEYS[1], string.format("%.0f", ts * 1000000 + seq), id)
    redis.call("HSET", KEYS[2], id, body)
    flags[#flags + 1] = 1
  else
    flags[#flags + 1] = 0
  end
end
return flags
