// The dashboard: four pages over the JSON API (docs/WEB.md). No framework; the chart is SVG
// drawn here. Every change (pause, reload, logout) sends the session's CSRF token.
"use strict";

let csrf = "";
const $ = (selector) => document.querySelector(selector);

function text(tag, value, className) {
  const element = document.createElement(tag);
  element.textContent = value === undefined || value === null ? "" : String(value);
  if (className) element.className = className;
  return element;
}

function showMessage(message) { $("#message").textContent = message || ""; }

async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options };
  if (init.method === "POST") {
    init.headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf, ...(init.headers || {}) };
  }
  const response = await fetch(path, init);
  if (response.status === 401) { window.location.assign("/login"); throw new Error("logged out"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${path}: ${response.status}`);
  return body;
}

// ---- Pages

const pages = ["live", "overview", "explain", "lists"];
function show(page) {
  if (!pages.includes(page)) page = "live";
  for (const p of pages) $(`#page-${p}`).hidden = p !== page;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  if (page === "overview") loadOverview();
  if (page === "lists") loadLists();
}
window.addEventListener("hashchange", () => show(location.hash.slice(1)));

// ---- Status bar and pause (on every page)

function describePause(pause) {
  if (!pause) return "Filtering is on.";
  if (pause.until === null || pause.until === undefined) return `Filtering is paused until resumed (by ${pause.by}).`;
  const left = Math.max(0, Math.round(pause.until - Date.now() / 1000));
  return `Filtering is paused for ${left} s more (by ${pause.by}).`;
}

function renderPause(pause) {
  $("#pause-state").textContent = describePause(pause);
  $("#pause-bar").classList.toggle("paused", !!pause);
  $("#resume").hidden = !pause;
}

async function refreshStatus() {
  try {
    const status = await api("/api/status");
    renderPause(status.pause);
    $("#counters").textContent = `${status.queries} queries · ${status.blocked} blocked · ${status.rules} rules`;
  } catch (e) { showMessage(e.message); }
}

for (const button of document.querySelectorAll("[data-pause]")) {
  button.addEventListener("click", async () => {
    try {
      const reply = await api("/api/pause", { method: "POST", body: JSON.stringify({ seconds: button.dataset.pause }) });
      renderPause(reply.pause);
      showMessage("");
    } catch (e) { showMessage(e.message); }
  });
}

$("#logout").addEventListener("click", async () => {
  try { await api("/api/logout", { method: "POST", body: "{}" }); } catch (e) { /* going anyway */ }
  window.location.assign("/login");
});

// ---- Live

let source = null;
let viewPaused = false;
const maxRows = 500;

function liveRow(entry) {
  const row = document.createElement("tr");
  row.className = entry.action || "";
  const time = (entry.time || "").split("T")[1] || "";
  const detail = entry.rule ? `${entry.rule.text || ""} (${(entry.rule.list || "").split("/").pop()}:${entry.rule.line})`
    : (entry.answers || []).join(" ");
  const client = entry.client_name ? `${entry.client_name} (${entry.client})` : entry.client;
  const cells = [time.replace("Z", ""), entry.proto, client, entry.server, entry.qtype || "", entry.qname || entry.sni || "",
    entry.action, entry.rcode || "", detail];
  cells.forEach((value, i) => row.appendChild(text("td", value, i === 6 ? "action" : "")));
  row.title = "explain this query";
  row.addEventListener("click", () => {
    const form = $("#explain-form");
    // form.elements[...]: `form.name` is the form's own name attribute.
    form.elements["name"].value = entry.qname || entry.sni || "";
    form.elements["type"].value = entry.qtype || "A";
    form.elements["client"].value = (entry.client || "").replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    form.elements["server"].value = entry.server || "";
    location.hash = "#explain";
    runExplain();
  });
  return row;
}

function startLive() {
  if (source) source.close();
  const params = new URLSearchParams();
  for (const element of $("#live-filters").elements) {
    if (element.name && element.value) params.set(element.name, element.value);
  }
  $("#live-table tbody").replaceChildren();
  source = new EventSource(`/api/queries?${params}`);
  $("#live-state").textContent = "connecting…";
  source.onopen = () => { $("#live-state").textContent = "live"; };
  source.onerror = () => { $("#live-state").textContent = "reconnecting…"; };
  source.onmessage = (event) => {
    if (viewPaused) return;
    let entry;
    try { entry = JSON.parse(event.data); } catch (e) { return; }
    const body = $("#live-table tbody");
    body.insertBefore(liveRow(entry), body.firstChild);
    while (body.rows.length > maxRows) body.deleteRow(body.rows.length - 1);
  };
  source.addEventListener("skipped", (event) => {
    const skipped = JSON.parse(event.data);
    $("#live-state").textContent = `live, sampling (${skipped.lines} lines left out)`;
  });
}

$("#live-filters").addEventListener("submit", (event) => { event.preventDefault(); startLive(); });
$("#live-toggle").addEventListener("click", () => {
  viewPaused = !viewPaused;
  $("#live-toggle").textContent = viewPaused ? "Resume view" : "Pause view";
});

// ---- Overview

function table(selector, rows, columns, rowClass, headings) {
  const element = $(selector);
  element.replaceChildren();
  if (headings) {
    const tr = document.createElement("tr");
    for (const heading of headings) tr.appendChild(text("th", heading));
    element.appendChild(tr);
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    if (rowClass) tr.className = rowClass(row);
    for (const column of columns) tr.appendChild(text("td", row[column]));
    element.appendChild(tr);
  }
  if (rows.length === 0) element.appendChild(document.createElement("tr")).appendChild(text("td", "none yet", "hint"));
}

function drawChart(series) {
  const svg = $("#chart");
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const width = 960, height = 200, top = 10;
  const max = Math.max(1, ...series.map((m) => m.q));
  const x = (i) => (i / Math.max(1, series.length - 1)) * width;
  const y = (v) => top + height - (v / max) * (height - top);
  for (const [key, className] of [["q", "queries"], ["b", "blocked"]]) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", className);
    line.setAttribute("points", series.map((m, i) => `${x(i).toFixed(1)},${y(m[key]).toFixed(1)}`).join(" "));
    svg.appendChild(line);
  }
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "4");
  label.setAttribute("y", "14");
  label.textContent = `max ${max} / min`;
  svg.appendChild(label);
  svg.dataset.points = String(series.filter((m) => m.q > 0).length);
}

async function loadOverview() {
  try {
    const o = await api("/api/overview");
    const s = o.status;
    const upstreamBound = s.cached + s.forwarded;
    const cards = [
      ["queries", s.queries], ["blocked", `${s.blocked} (${s.queries ? (100 * s.blocked / s.queries).toFixed(1) : 0} %)`],
      ["cache hits", upstreamBound ? `${(100 * s.cached / upstreamBound).toFixed(1)} %` : "–"],
      ["upstream p50 / p99", s.forwardedP50Ms === undefined || s.forwardedP50Ms === null ? "–" : `${s.forwardedP50Ms} / ${s.forwardedP99Ms} ms`],
      ["answered locally", s.local], ["rules", s.rules], ["workers", s.workers],
    ];
    $("#overview-summary").replaceChildren(...cards.map(([label, value]) => {
      const card = text("div", label, "card");
      card.prepend(text("b", value));
      return card;
    }));
    drawChart(o.perMinute);
    $("#chart-note").textContent = o.backfilling ? "still reading the log's past…" : "";
    table("#top-domains", o.domains, ["name", "count"]);
    table("#top-blocked", o.blocked, ["name", "count"]);
    table("#top-clients", o.clients, ["name", "count"]);
    table("#top-servers", o.servers, ["server", "queries", "clients"], (r) => (r.hardCoded ? "hard-coded" : ""), ["server", "queries", "clients"]);
    table("#top-quic", o.quic, ["name", "count"]);
    table("#upstreams", s.upstreams, ["server", "queries", "timeouts"], null, ["upstream", "queries", "timeouts"]);
    $("#top-note").textContent = o.entries ? `Top lists: the last ${o.entries} entries of the query log (since ${o.since}).`
      : (s.queryLog ? "The query log is empty so far." : "The query log is off: top lists need querylog.path.");
  } catch (e) { showMessage(e.message); }
}

// ---- Explain

async function runExplain() {
  const form = $("#explain-form");
  const params = new URLSearchParams();
  for (const name of ["name", "type", "client", "server"]) if (form.elements[name].value) params.set(name, form.elements[name].value);
  const out = $("#explain-result");
  out.replaceChildren(text("p", "…", "hint"));
  try {
    const e = await api(`/api/explain?${params}`);
    const parts = [text("p", `${e.name} ${e.type}${e.client ? " from " + e.client : ""}: ${e.verdict}`, "verdict")];
    if (e.paused) parts.push(text("p", "Filtering is paused: the lists are not applied now.", "hint"));
    const steps = document.createElement("table");
    for (const step of e.steps) {
      const tr = document.createElement("tr");
      tr.append(text("td", step.stage), text("td", step.result));
      steps.appendChild(tr);
    }
    parts.push(steps);
    for (const m of e.matches) {
      parts.push(text("p", `${m.decided ? "decided by" : "also matched"} ${m.list}:${m.line}: ${m.text}${m.important ? " (important)" : ""}`,
        m.decided ? "rule decided" : "rule"));
    }
    out.replaceChildren(...parts);
  } catch (err) { out.replaceChildren(text("p", err.message, "error")); }
}
$("#explain-form").addEventListener("submit", (event) => { event.preventDefault(); runExplain(); });

// ---- Lists and zones

function when(seconds) { return seconds ? new Date(seconds * 1000).toLocaleString() : "never"; }

async function loadLists() {
  try {
    const s = await api("/api/lists");
    const lists = $("#lists-table tbody");
    lists.replaceChildren();
    const rejected = [];
    for (const l of s.lists) {
      const tr = document.createElement("tr");
      tr.append(text("td", l.path), text("td", l.format), text("td", l.rules), text("td", l.exceptions), text("td", l.ignored),
        text("td", l.rejectedCount), text("td", l.loaded ? when(l.lastLoad) : "failed; the previous rules stay"));
      lists.appendChild(tr);
      for (const r of l.rejected) rejected.push(`${l.path}:${r.line}: ${r.reason}: ${r.text}`);
    }
    $("#rejected").replaceChildren(...(rejected.length ? [text("h3", "Rejected lines"), ...rejected.map((line) => text("p", line, "rejected"))] : []));
    const zones = $("#zones-table tbody");
    zones.replaceChildren(...s.zones.map((z) => {
      const tr = document.createElement("tr");
      tr.append(text("td", z.file), text("td", z.origin), text("td", z.records), text("td", z.loaded ? when(z.lastLoad) : "failed"));
      return tr;
    }));
    $("#reload-state").textContent = s.lastReload ? `last reload ${when(s.lastReload)}: ${s.lastReloadResult}` : "";
  } catch (e) { showMessage(e.message); }
}

$("#reload").addEventListener("click", async () => {
  try {
    await api("/api/reload", { method: "POST", body: "{}" });
    $("#reload-state").textContent = "reloading…";
    setTimeout(loadLists, 1000);
  } catch (e) { showMessage(e.message); }
});

// ---- Start

(async () => {
  try {
    csrf = (await api("/api/session")).csrf;
  } catch (e) { return; }
  show(location.hash.slice(1));
  startLive();
  refreshStatus();
  setInterval(refreshStatus, 2000);
  setInterval(() => { if (!$("#page-overview").hidden) loadOverview(); }, 10000);
})();
