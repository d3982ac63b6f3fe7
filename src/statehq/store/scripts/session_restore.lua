#!lua
--[[ statehq session_restore: put one session back as a backup (or a migration) holds it.

Refuses to replace a live session that is newer than the record, or at the same version
with a different document, unless forced; writes nothing when the live session already
is the record, so running a restore twice changes nothing the second time. Otherwise the
document, history, version marker and TTL are written exactly, and one audit entry says
so. Audit entries carried by the record are merged into the trail by id (ones already
there are left alone), so they too are restored once however often this runs.

KEYS[1]  doc    hash   path -> JSON leaf
KEYS[2]  hist   list   the history ring, newest first (a full version, then reverse patches)
KEYS[3]  seen   string last version written
KEYS[4]  route  string set when the session moved to another key
KEYS[5]  audit  stream the session's audit trail

ARGV[1]  the record's version       ARGV[2]  "1" = force: replace a newer or different session
ARGV[3]  "1" = the record has no _last_updated of its own (this call stamped it): compare
         documents without it, so a second run still finds the session unchanged
ARGV[4]  session TTL in ms, "" = no expiry
ARGV[5]  seen-marker TTL in ms, "" = no expiry
ARGV[6]  audit retention in ms      ARGV[7]  audit stream max length
ARGV[8]  timestamp (JSON string)    ARGV[9..12] the restore's audit event: event, channel,
                                               reason, detail
ARGV[13] n = document fields; then n pairs (path, leaf), _version and _last_updated included
then     h = history entries; then h ring entries, newest first, as store/history.py
         writes them (opaque here)
then     a = audit entries; then a groups of 11: id (<ms>-<seq>, ascending, none repeated),
         ts, event, channel, reason, detail, v_before, v_after, fields, removed, values

Returns {"MOVED", target}                         the key is routed elsewhere: nothing written
        {"NEWER", live_version}                   a newer live session: nothing written
        {"DIFFERENT", live_version}               same version, other document: nothing written
        {"UNCHANGED", live_version, audit_added}  the live session is the record
        {"RESTORED", live_version, audit_added, audit_id}   live_version -1: there was none

The caller checks every argument first (ids, sizes), so no command below can fail half way.
]]
local doc_key, hist_key, seen_key, route_key, audit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5]
local version, force, unstamped = tonumber(ARGV[1]), ARGV[2] == "1", ARGV[3] == "1"
local ttl, seen_ttl = ARGV[4], ARGV[5]
local audit_ms, audit_len, stamp = tonumber(ARGV[6]), ARGV[7], ARGV[8]
local n_fields = tonumber(ARGV[13])
local first_field = 14
local n_hist = tonumber(ARGV[first_field + 2 * n_fields])
local first_hist = first_field + 2 * n_fields + 1
local n_audit = tonumber(ARGV[first_hist + n_hist])
local first_audit = first_hist + n_hist + 1
local ENTRY_FIELDS = {"ts", "event", "channel", "reason", "detail", "v_before", "v_after",
  "fields", "removed", "values"}

local moved = redis.call("GET", route_key)
if moved then return {"MOVED", moved} end

local flat = redis.call("HGETALL", doc_key)
local live = {}
for i = 1, #flat, 2 do live[flat[i]] = flat[i + 1] end
local live_version = #flat > 0 and (tonumber(live["_version"]) or 0) or -1

local function same_document()
  if #flat ~= 2 * n_fields then return false end
  for i = first_field, first_field + 2 * n_fields - 1, 2 do
    local path = ARGV[i]
    if live[path] ~= ARGV[i + 1] and not (unstamped and path == "_last_updated") then
      return false
    end
  end
  return true
end

local unchanged = live_version == version and same_document()
if not unchanged and not force then
  if live_version > version then return {"NEWER", live_version} end
  if live_version == version then return {"DIFFERENT", live_version} end
end

local function id_parts(id)
  local ms, seq = string.match(id, "^(%d+)-(%d+)$")
  return tonumber(ms), tonumber(seq)
end
local function older(a, b)
  local a_ms, a_seq = id_parts(a.id)
  local b_ms, b_seq = id_parts(b.id)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end

-- A stream only grows at its end, so entries older than the newest one cannot be added
-- in place: when any is missing, the trail is rebuilt from the union, in id order.
local function merge_audit()
  if n_audit == 0 then return 0 end
  local existing = redis.call("XRANGE", audit_key, "-", "+")
  local have, all = {}, {}
  for _, entry in ipairs(existing) do
    have[entry[1]] = true
    all[#all + 1] = {id = entry[1], fields = entry[2]}
  end
  local added = 0
  for e = 0, n_audit - 1 do
    local base = first_audit + 11 * e
    if not have[ARGV[base]] then
      local fields = {}
      for f, name in ipairs(ENTRY_FIELDS) do
        fields[#fields + 1] = name
        fields[#fields + 1] = ARGV[base + f]
      end
      all[#all + 1] = {id = ARGV[base], fields = fields}
      added = added + 1
    end
  end
  if added == 0 then return 0 end
  table.sort(all, older)
  redis.call("DEL", audit_key)
  for _, entry in ipairs(all) do redis.call("XADD", audit_key, entry.id, unpack(entry.fields)) end
  return added
end

local function expire_audit()
  redis.call("XTRIM", audit_key, "MAXLEN", audit_len)
  local now = redis.call("TIME")
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - audit_ms
  redis.call("XTRIM", audit_key, "MINID", string.format("%d", math.max(oldest, 0)))
  redis.call("PEXPIRE", audit_key, audit_ms)
end

local audit_added = merge_audit()
if unchanged then
  if audit_added > 0 then expire_audit() end
  return {"UNCHANGED", live_version, audit_added}
end

redis.call("DEL", doc_key, hist_key)
local last_field = first_field + 2 * n_fields - 1
for i = first_field, last_field, 1000 do
  redis.call("HSET", doc_key, unpack(ARGV, i, math.min(i + 999, last_field)))
end
local last_hist = first_hist + n_hist - 1
for i = first_hist, last_hist, 1000 do
  redis.call("RPUSH", hist_key, unpack(ARGV, i, math.min(i + 999, last_hist)))
end
if ttl ~= "" then
  redis.call("PEXPIRE", doc_key, ttl)
  redis.call("PEXPIRE", hist_key, ttl)
end
if seen_ttl ~= "" then
  redis.call("SET", seen_key, ARGV[1], "PX", seen_ttl)
else
  redis.call("SET", seen_key, ARGV[1])
end

local id = redis.call("XADD", audit_key, "*",
  "ts", stamp, "event", ARGV[9], "channel", ARGV[10], "reason", ARGV[11], "detail", ARGV[12],
  "v_before", live_version >= 0 and tostring(live_version) or "", "v_after", ARGV[1],
  "fields", "[]", "removed", "[]", "values", "{}")
expire_audit()
return {"RESTORED", live_version, audit_added, id}
