// NOC overview: polls the API and redraws; nothing to build, nothing to install.
"use strict";

// Changes arrive on the live stream (SSE); a slow poll is only a safety net.
const REFRESH_MS = 15000;
const params = new URLSearchParams(location.search);
if (params.get("token")) {
  localStorage.setItem("shelterwatch-token", params.get("token"));
  history.replaceState(null, "", location.pathname);
}
let token = localStorage.getItem("shelterwatch-token");
let selectedTicket = null;

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

async function api(path) {
  const res = await fetch(path, {headers: {Authorization: `Bearer ${token}`}});
  if (res.status === 401) { throw new Error("unauthorized"); }
  if (!res.ok) { throw new Error(`${path}: HTTP ${res.status}`); }
  return res.json();
}

function showLogin(message) {
  $("#overview").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

function renderSites(sites) {
  const regions = {};
  for (const s of sites) { (regions[s.region] = regions[s.region] || []).push(s); }
  $("#sites").innerHTML = Object.keys(regions).sort().map((region) => `
    <div class="region"><h3>${esc(region)}</h3>${regions[region].map((s) => {
      const cls = s.agent_reachable === false ? "unreachable" : (s.worst_severity ? `sev-${s.worst_severity}` : "");
      return `<span class="site ${cls}" data-site="${esc(s.site_id)}" title="${esc(s.open_alarms)} open alarm(s)">${esc(s.site_id)}</span>`;
    }).join("")}</div>`).join("");
}

function renderAlarms(page) {
  const counts = {};
  for (const a of page.items) { counts[a.severity] = (counts[a.severity] || 0) + 1; }
  $("#alarm-counts").innerHTML = Object.entries(counts).map(([s, n]) => `<span class="sev-${s}">${esc(s)} ${n}</span>`).join("");
  $("#alarms tbody").innerHTML = page.items.map((a) => `
    <tr data-alarm="${a.id}"><td class="sev"><span class="site sev-${esc(a.severity)}">${esc(a.severity)}</span></td>
    <td>${esc(a.site_id)}</td><td>${esc(a.equipment_id)} / ${esc(a.point)}</td><td>${esc(a.alarm_type)}</td>
    <td>${esc(a.state)}</td><td>${when(a.first_seen)}</td><td>${a.count}</td></tr>`).join("");
}

function slaCell(sla) {
  if (!sla) { return ""; }
  if (sla.breached) { return `<span class="site sev-critical">breached ${Math.round(-sla.remaining_min)} min</span>`; }
  if (sla.clock !== "running") { return `<span class="site unreachable">${esc(sla.clock)} · ${Math.round(sla.remaining_min)} min left</span>`; }
  const share = sla.remaining_min / sla.gtr_min;
  const cls = share < 0.25 ? "sev-major" : share < 0.5 ? "sev-minor" : "";
  return `<span class="site ${cls}" title="deadline ${when(sla.deadline)}">${Math.round(sla.remaining_min)} min left</span>`;
}

function renderTickets(page) {
  $("#tickets tbody").innerHTML = page.items.map((t) => `
    <tr class="clickable" data-ticket="${esc(t.ref)}"><td>${esc(t.ref)}</td><td>${esc(t.criticality)}</td><td>${esc(t.state)}</td>
    <td>${esc(t.site_id)}</td><td>${esc(t.title)}</td><td>${when(t.opened_at)}</td><td>${slaCell(t.sla)}</td>
    <td>L${t.escalation_level}</td></tr>`).join("");
  for (const row of document.querySelectorAll("#tickets tr[data-ticket]")) {
    row.addEventListener("click", () => { selectedTicket = row.dataset.ticket; refresh(); });
  }
}

async function renderDetail() {
  if (!selectedTicket) { return; }
  const t = await api(`/api/v1/tickets/${encodeURIComponent(selectedTicket)}`);
  $("#ticket-detail").hidden = false;
  $("#detail-ref").textContent = t.ref;
  const sla = t.sla || {};
  $("#detail-summary").innerHTML = `<p>${esc(t.title)} — <b>${esc(t.state)}</b>, ${esc(t.criticality)}, escalation level ${t.escalation_level}</p>
    <p>SLA (${esc(sla.contract_id)}, ${esc(sla.calendar)}): ${sla.elapsed_min} of ${sla.gtr_min} min counted, ${sla.frozen_min} min frozen,
    clock ${esc(sla.clock)}, deadline ${when(sla.deadline)} ${slaCell(sla)}</p>`;
  $("#operations tbody").innerHTML = t.operations.map((o) => `
    <tr><td>${when(o.at)}</td><td>${esc(o.actor)}</td><td>${esc(o.action)}</td><td>${esc(o.detail)}</td></tr>`).join("");
}

async function refresh() {
  if (!token) { showLogin(); return; }
  try {
    const [sites, alarms, tickets] = await Promise.all([
      api("/api/v1/sites"), api("/api/v1/alarms?state=open&limit=200"), api("/api/v1/tickets?open_only=true&limit=200"),
    ]);
    $("#login").hidden = true;
    $("#overview").hidden = false;
    renderSites(sites);
    renderAlarms(alarms);
    renderTickets(tickets);
    await renderDetail();
    $("#status").textContent = `updated ${new Date().toLocaleTimeString()}${stream ? " · live" : ""}`;
  } catch (err) {
    if (err.message === "unauthorized") { localStorage.removeItem("shelterwatch-token"); token = null; showLogin("invalid token"); }
    else { $("#status").textContent = `error: ${err.message}`; }
  }
}

$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("#token").value.trim();
  localStorage.setItem("shelterwatch-token", token);
  refresh().then(openStream);
});

let stream = null;
let pending = null;
function scheduleRefresh() {
  if (pending) { return; }
  pending = setTimeout(() => { pending = null; refresh(); }, 150);
}
function openStream() {
  if (stream || !token) { return; }
  stream = new EventSource(`/api/v1/stream?access_token=${encodeURIComponent(token)}`);
  stream.addEventListener("alarm", scheduleRefresh);
  stream.addEventListener("ticket", scheduleRefresh);
  stream.onopen = () => { $("#status").dataset.live = "yes"; };
  stream.onerror = () => { $("#status").dataset.live = "no"; };
}

refresh().then(openStream);
setInterval(refresh, REFRESH_MS);
