// statehq's page: chat as a member through the web channel, and watch the state live.
// Two EventSource streams (replies, state), resumed by the browser with Last-Event-ID.
"use strict";

const $ = (id) => document.getElementById(id);
let token = localStorage.getItem("statehq-token") || "";
let phone = "";
let streams = [];
let state = null;
let ttlTimer = null;
let compare = [];

function askToken() {
  $("auth").hidden = false;
  $("token").focus();
}

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  localStorage.setItem("statehq-token", token);
  $("auth").hidden = true;
  if (phone) open(phone);
});

$("demo").addEventListener("change", () => {
  if ($("demo").value) $("phone").value = $("demo").value;
});

$("who").addEventListener("submit", (event) => {
  event.preventDefault();
  open($("phone").value.trim().replace(/^\+/, ""));
});

function open(who) {
  phone = who;
  streams.forEach((s) => s.close());
  streams = [];
  $("messages").replaceChildren();
  $("chat-who").textContent = "as " + who;
  if (!token) return askToken();
  const query = "member=" + encodeURIComponent(who) + "&token=" + encodeURIComponent(token);
  const replies = new EventSource("/web/replies?" + query);
  replies.addEventListener("reply", (e) => showReply(JSON.parse(e.data)));
  const inspect = new EventSource("/web/inspect?" + query);
  inspect.addEventListener("state", (e) => showState(JSON.parse(e.data)));
  inspect.onopen = () => { $("connection").textContent = "live"; $("connection").className = "pill live"; };
  inspect.onerror = () => { $("connection").textContent = "reconnecting…"; $("connection").className = "pill"; };
  streams = [replies, inspect];
  $("text").disabled = false;
  document.querySelector("#say button").disabled = false;
  $("text").focus();
}

async function send(text, choice) {
  const body = { from: phone, text: text, id: "web." + crypto.randomUUID() };
  if (choice) body.choice = choice;
  bubble("you", text);
  const answer = await fetch("/webhooks/web", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
    body: JSON.stringify(body),
  });
  if (answer.status === 401 || answer.status === 403) askToken();
}

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  send(text, null);
});

function bubble(who, text) {
  const item = document.createElement("li");
  item.className = who;
  item.textContent = text;
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function showReply(reply) {
  const item = bubble("bot", reply.text);
  if (reply.kind === "buttons") {
    const row = document.createElement("div");
    row.className = "options";
    for (const option of reply.options) row.append(choice(option, option.title));
    item.append(row);
  } else if (reply.kind === "list") {
    const label = document.createElement("div");
    label.textContent = "☰ " + reply.button;
    const rows = document.createElement("ul");
    rows.className = "rows";
    for (const option of reply.options) {
      const li = document.createElement("li");
      const button = choice(option, option.title);
      if (option.description) {
        const small = document.createElement("small");
        small.textContent = option.description;
        button.append(small);
      }
      li.append(button);
      rows.append(li);
    }
    item.append(label, rows);
  }
}

function choice(option, title) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = title;
  button.addEventListener("click", () => send(option.title, option.id));
  return button;
}

function showState(next) {
  state = next;
  $("key").textContent = next.key;
  $("status").textContent = next.status;
  $("status").className = next.status === "expired" ? "status-expired" : "";
  $("version").textContent = next.version ?? "—";
  $("stage").textContent = next.stage ?? "—";
  $("flow").textContent = next.flow ? next.flow + " · " + (next.step ?? "") : "—";
  $("lease").textContent = next.lease ?? "free";
  $("queue").textContent = next.backlog + " · " + next.pending + " · " + next.dead;
  $("document").textContent = next.document ? JSON.stringify(next.document, null, 2) : "(no live document: " + next.status + ")";
  countdown();
  showHistory(next.history);
  showDead(next.dead_letters || []);
  showAudit(next.audit);
}

function showDead(letters) {
  const list = $("dead");
  list.replaceChildren();
  for (const letter of letters) {
    const item = document.createElement("li");
    const replay = document.createElement("button");
    replay.type = "button";
    replay.textContent = "Replay " + letter.id;
    replay.addEventListener("click", () =>
      admin("/admin/dead/" + encodeURIComponent(letter.id) + "/replay",
        { sender: letter.sender, reason: "replayed from the inspector" }));
    item.append(letter.at + " · " + letter.error + " (" + letter.attempts + " attempts) ", replay);
    list.append(item);
  }
  if (!letters.length) list.append("none");
}

$("reset").addEventListener("click", () => {
  if (!state || !confirm("Reset " + state.key + " to a fresh session (keeping who it is)?")) return;
  admin("/admin/members/" + encodeURIComponent(state.key) + "/reset",
    { reason: "reset from the inspector" });
});

async function admin(path, body) {
  const answer = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
    body: JSON.stringify(body),
  });
  if (answer.status === 401 || answer.status === 403) askToken();
  return answer;
}

function countdown() {
  clearInterval(ttlTimer);
  const tick = () => {
    if (!state || state.expires_at == null) { $("ttl").textContent = "—"; return; }
    const left = Math.max(0, state.expires_at - Date.now() / 1000);
    $("ttl").textContent = left > 0 ? Math.ceil(left) + " s" : "expired";
  };
  tick();
  ttlTimer = setInterval(tick, 1000);
}

function showHistory(versions) {
  const list = $("history");
  list.replaceChildren();
  for (const entry of versions) {
    const item = document.createElement("li");
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.setAttribute("aria-label", "compare version " + entry.version);
    pick.checked = compare.includes(entry.version);
    pick.addEventListener("change", () => choose(entry.version, pick.checked));
    const roll = document.createElement("button");
    roll.type = "button";
    roll.textContent = "Roll back to v" + entry.version;
    roll.addEventListener("click", () => rollback(entry.version));
    item.append(pick, " v" + entry.version + " · " + entry.last_updated + " ", roll);
    list.append(item);
  }
  showDiff();
}

function choose(version, on) {
  compare = compare.filter((v) => v !== version);
  if (on) compare.push(version);
  compare = compare.slice(-2);
  showHistory(state.history);
}

function flatten(value, prefix, out) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? prefix + "." + k : k, out);
  } else {
    out[prefix] = JSON.stringify(value);
  }
  return out;
}

function showDiff() {
  if (compare.length < 2 || !state) { $("diff").textContent = ""; return; }
  const [a, b] = [...compare].sort((x, y) => x - y);
  const doc = (v) => (state.history.find((e) => e.version === v) || {}).state || {};
  const left = flatten(doc(a), "", {}), right = flatten(doc(b), "", {});
  const lines = ["v" + a + " → v" + b];
  for (const key of [...new Set([...Object.keys(left), ...Object.keys(right)])].sort()) {
    if (left[key] === right[key]) continue;
    if (key in left) lines.push("- " + key + ": " + left[key]);
    if (key in right) lines.push("+ " + key + ": " + right[key]);
  }
  $("diff").textContent = lines.join("\n");
}

function showAudit(entries) {
  const list = $("audit");
  list.replaceChildren();
  for (const entry of [...entries].reverse()) {
    const item = document.createElement("li");
    const versions = entry.version_after != null ? " v" + entry.version_before + "→v" + entry.version_after : "";
    const fields = (entry.fields || []).concat(entry.removed || []);
    item.textContent = entry.at + " " + entry.event + versions + (fields.length ? " · " + fields.join(", ") : "") + (entry.reason ? " (" + entry.reason + ")" : "");
    list.append(item);
  }
}

function rollback(version) {
  return admin("/admin/members/" + encodeURIComponent(state.key) + "/rollback",
    { version: version, reason: "rolled back from the inspector" });
}

if (!token) askToken();
