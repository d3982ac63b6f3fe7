#!lua
--[[ statehq update: apply hash operations to one session's document atomically,
     and append its audit entries in the same call.

KEYS[1]  doc    hash  path -> JSON leaf ("{}" marks an object)
KEYS[2]  hist   list  the history ring, newest first: the newest version in full, each older
               one as a reverse patch from the version after it (see store/history.py)
KEYS[3]  seen   string last version written (outlives the session to tell "expired")
KEYS[4]  lease  string "<token>:<holder>"
KEYS[5]  route  string set when this session moved to another key (identity binding)
KEYS[6]  audit  stream the session's audit trail
KEYS[7]  msg    string dedup mark of the inbound message (optional)
KEYS[8]  outbox list   replies queued for sending with this change (optional; needs msg)

ARGV[1]  expected version, "" for none (0 = must not exist)
ARGV[2]  fencing token, "" for none
ARGV[3]  session TTL in ms          ARGV[4]  seen-marker TTL in ms
ARGV[5]  history length            ARGV[6]  dedup-mark TTL in ms
ARGV[7]  max document bytes        ARGV[8]  _last_updated as a JSON string leaf
ARGV[9]  audit retention in ms     ARGV[10] audit stream max length
ARGV[11] secret top-level field names, "\n"-separated (values never audited)
ARGV[12] "1" = quiet: when nothing changes and there are no audit events, keep the
         version (the dedup mark and replies are still written, the TTL still slides)
ARGV[13] n = number of audit events; then n quadruples (event, channel, reason, detail)
then     m = number of replies; then m entries pushed to the outbox
then     operation triples (op, path, value); see statehq/store/codec.py

Returns one of
  {"OK", version, ttl_ms, encoded, audit_ids}  encoded = JSON object of path -> leaf
  {"DUP", produced_version, version, ttl_ms, encoded or ""}
  {"CONFLICT", actual_version}
  {"LEASE", current_token or -1}
  {"QUIET", version, ttl_ms}                   quiet and nothing changed: version kept
  {"TOOBIG", size}
  {"MOVED", target}                          the session now lives under target
  {"ABSENT"}                                 an "E" op found no document

Nothing is written unless the reply is OK (or QUIET). JSON is never decoded here: leaves are
opaque strings, which is what keeps [] a list and 2**64 exact. (An "H" op decodes the history's
copy of the current version: a JSON object whose values are those opaque strings.)

History: the ring's head is the current version in full (the encoded reply); a write turns
it into the reverse patch back from the new version and pushes the new version in full. The
patch holds what this write changed, as read from the hash; with an "H" op (replace: recovery)
it is the difference from the head itself, so a hash damaged by hand never leaks into the
older versions. Patch format: see store/history.py.
]]
local doc_key, hist_key, seen_key, lease_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local route_key, audit_key, msg_key, outbox_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local expected, token = ARGV[1], ARGV[2]
local ttl, seen_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local hist_len, dedup_ttl, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local stamp = ARGV[8]
local audit_ms, audit_len = tonumber(ARGV[9]), tonumber(ARGV[10])
local secret = {}
for name in string.gmatch(ARGV[11], "[^\n]+") do secret[name] = true end
local quiet = ARGV[12] == "1"
local n_events = tonumber(ARGV[13])
local n_out = tonumber(ARGV[14 + 4 * n_events])
local first_out = 15 + 4 * n_events
local first_op = first_out + n_out

local function queue_replies()
  if outbox_key and n_out > 0 then
    redis.call("RPUSH", outbox_key, unpack(ARGV, first_out, first_out + n_out - 1))
    redis.call("PEXPIRE", outbox_key, dedup_ttl)
  end
end

local moved = redis.call("GET", route_key)
if moved then return {"MOVED", moved} end

if token ~= "" then
  local held = redis.call("GET", lease_key)
  local current = held and string.match(held, "^(%d+):")
  if current ~= token then return {"LEASE", tonumber(current) or -1} end
end

local flat = redis.call("HGETALL", doc_key)
local exists = #flat > 0
local doc = {}
for i = 1, #flat, 2 do doc[flat[i]] = flat[i + 1] end
local version = exists and (tonumber(doc["_version"]) or 0) or 0
local old_version, old_stamp = doc["_version"] or false, doc["_last_updated"] or false
local rebase = false

if msg_key then
  local produced = redis.call("GET", msg_key)
  if produced then
    local encoded = exists and cjson.encode(doc) or ""
    return {"DUP", tonumber(produced), version, redis.call("PTTL", doc_key), encoded}
  end
end

if expected ~= "" and tonumber(expected) ~= version then return {"CONFLICT", version} end

-- before[path] is a field's value before this call (false when absent), recorded the
-- first time the field is touched; comparing it with the final value tells real changes.
local before, touched = {}, {}
local function touch(path)
  if before[path] == nil then before[path] = doc[path] or false; touched[#touched + 1] = path end
end
local function drop_subtree(path)
  local prefix = path .. "."
  local n = #prefix
  for field in pairs(doc) do
    if string.sub(field, 1, n) == prefix then touch(field); doc[field] = nil end
  end
end

local keep = {_version = true, _last_updated = true}
for i = first_op, #ARGV, 3 do
  local op, path, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == "S" then
    if doc[path] == "{}" then drop_subtree(path) end
    touch(path); doc[path] = value
  elseif op == "O" then
    if doc[path] ~= "{}" then touch(path); doc[path] = "{}" end
  elseif op == "D" then
    if doc[path] == "{}" then drop_subtree(path) end
    if doc[path] then touch(path); doc[path] = nil end
  elseif op == "P" then
    keep[path] = true
  elseif op == "C" then
    for field in pairs(doc) do
      if not keep[string.match(field, "^[^.]*")] then touch(field); doc[field] = nil end
    end
  elseif op == "E" then
    if not exists then return {"ABSENT"} end
  elseif op == "H" then
    rebase = true
  else
    return redis.error_reply("ERR statehq update: unknown operation " .. tostring(op))
  end
end

local new_version = version + 1
if not exists then new_version = (tonumber(redis.call("GET", seen_key)) or 0) + 1 end
local version_leaf = string.format("%d", new_version)
doc["_version"] = version_leaf
doc["_last_updated"] = stamp

local size = 0
for field, value in pairs(doc) do size = size + #field + #value end
if size > max_bytes then return {"TOOBIG", size} end

local real_change = false
for _, path in ipairs(touched) do
  if (doc[path] or false) ~= before[path] then real_change = true; break end
end
if quiet and exists and not real_change and n_events == 0 then
  -- Nothing to version: only remember the message, queue its replies, slide the TTL.
  redis.call("PEXPIRE", doc_key, ttl)
  redis.call("PEXPIRE", hist_key, ttl)
  redis.call("PEXPIRE", seen_key, seen_ttl)
  if msg_key then redis.call("SET", msg_key, tostring(version), "PX", dedup_ttl) end
  queue_replies()
  return {"QUIET", version, ttl}
end

local sets, dels, changed, removed, values, differ = {}, {}, {}, {}, {}, {}
table.sort(touched)
for _, path in ipairs(touched) do
  local now, was = doc[path] or false, before[path]
  if now ~= was then
    differ[#differ + 1] = path
    if now then sets[#sets + 1] = path; sets[#sets + 1] = now else dels[#dels + 1] = path end
    -- Audit names leaves, not object markers; a secret field's value is never copied.
    if now and now ~= "{}" then
      changed[#changed + 1] = path
      if not secret[string.match(path, "^[^.]*")] then
        local shown = #now <= 200 and now or cjson.encode("<" .. #now .. " bytes>")
        values[#values + 1] = cjson.encode(path) .. ":" .. shown
      end
    elseif not now and was ~= "{}" then
      removed[#removed + 1] = path
    end
  end
end

-- The history ring (format: store/history.py). patch_entry writes the reverse patch back to
-- the older version: sorted paths, each with the leaf the older version has there (older[path],
-- false for none; a path under one the older version lacks is implied and left out). Paths
-- never hold a tab, newline or \31 (codec.py escapes them); a leaf with a newline (a hand
-- edit) sends the patch to the JSON form.
local function json_entry(paths, older, was_version, was_stamp)
  local patch = {_version = was_version or false, _last_updated = was_stamp or false}
  for _, path in ipairs(paths) do patch[path] = older[path] or false end
  return "-" .. cjson.encode(patch)
end

local function patch_entry(paths, older, was_version, was_stamp)
  if not (was_version and string.match(was_version, "^%d+$") and was_stamp
      and was_stamp ~= "" and not string.find(was_stamp, "[\n\t\31]")) then
    return json_entry(paths, older, was_version, was_stamp)
  end
  local lines, last_parent = {"-" .. was_version .. "\t" .. was_stamp}, nil
  for _, path in ipairs(paths) do
    local value = older[path] or false
    local parent, name = string.match(path, "^(.*)%.([^.]*)$")
    if not (value == false and parent and older[parent] == false) then
      local shown = (parent and parent == last_parent) and ("\31" .. name) or path
      last_parent = parent
      if not value then
        lines[#lines + 1] = shown
      elseif string.find(value, "\n", 1, true) then
        return json_entry(paths, older, was_version, was_stamp)
      else
        lines[#lines + 1] = shown .. "\t" .. value
      end
    end
  end
  return table.concat(lines, "\n")
end

-- The ring's head decoded, when it is the version this write replaces, in full.
local function replaced_head()
  local head = redis.call("LINDEX", hist_key, 0)
  if not (head and old_version and string.byte(head, 1) == 123) then return nil end
  if not string.find(head, '"_version":"' .. old_version .. '"', 1, true) then return nil end
  local ok, older = pcall(cjson.decode, head)
  if not ok or type(older) ~= "table" then return nil end
  for _, value in pairs(older) do
    if type(value) ~= "string" then return nil end
  end
  return older
end

-- What the head becomes: the patch back from the new version to the one before it (the
-- head holds that one in full: every write and restore leaves it so), nil with no ring. It
-- is what this write changed in the hash; with "H", the difference from the head itself.
local function history_patch()
  local older = rebase and replaced_head()
  if not older then
    if redis.call("LLEN", hist_key) == 0 then return nil end
    return patch_entry(differ, before, old_version, old_stamp)
  end
  local paths = {}
  for path, value in pairs(older) do
    if doc[path] ~= value and path ~= "_version" and path ~= "_last_updated" then
      paths[#paths + 1] = path
    end
  end
  for path in pairs(doc) do
    if older[path] == nil then older[path] = false; paths[#paths + 1] = path end
  end
  table.sort(paths)
  return patch_entry(paths, older, older["_version"], older["_last_updated"])
end

sets[#sets + 1] = "_version"; sets[#sets + 1] = version_leaf
sets[#sets + 1] = "_last_updated"; sets[#sets + 1] = stamp
for i = 1, #dels, 1000 do redis.call("HDEL", doc_key, unpack(dels, i, math.min(i + 999, #dels))) end
for i = 1, #sets, 1000 do redis.call("HSET", doc_key, unpack(sets, i, math.min(i + 999, #sets))) end

local encoded = cjson.encode(doc)
local back = exists and hist_len > 1 and history_patch()
if back then redis.call("LSET", hist_key, 0, back) end
redis.call("LPUSH", hist_key, encoded)
redis.call("LTRIM", hist_key, 0, hist_len - 1)
redis.call("PEXPIRE", doc_key, ttl)
redis.call("PEXPIRE", hist_key, ttl)
redis.call("SET", seen_key, version_leaf, "PX", seen_ttl)
if msg_key then redis.call("SET", msg_key, version_leaf, "PX", dedup_ttl) end
queue_replies()

local audit_ids = {}
if n_events > 0 then
  local function json_list(items)
    if #items == 0 then return "[]" end
    return cjson.encode(items)
  end
  local fields_json, removed_json = json_list(changed), json_list(removed)
  local values_json = "{" .. table.concat(values, ",") .. "}"
  for e = 0, n_events - 1 do
    local base = 14 + 4 * e
    audit_ids[#audit_ids + 1] = redis.call("XADD", audit_key, "MAXLEN", audit_len, "*",
      "ts", stamp, "event", ARGV[base], "channel", ARGV[base + 1], "reason", ARGV[base + 2],
      "detail", ARGV[base + 3], "v_before", tostring(version), "v_after", version_leaf,
      "fields", fields_json, "removed", removed_json, "values", values_json)
  end
  local now = redis.call("TIME")
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - audit_ms
  redis.call("XTRIM", audit_key, "MINID", string.format("%d", math.max(oldest, 0)))
  redis.call("PEXPIRE", audit_key, audit_ms)
end
return {"OK", new_version, ttl, encoded, audit_ids}
