// NOC dashboard: one page per hash route, redrawn from the API; changes arrive on the live
// stream (SSE). Nothing to build, nothing to install.
"use strict";

const REFRESH_MS = 15000; // a slow poll, only a safety net under the live stream
const params = new URLSearchParams(location.search);
if (params.get("token")) {
  localStorage.setItem("shelterwatch-token", params.get("token"));
  history.replaceState(null, "", location.pathname + location.hash);
}
let token = localStorage.getItem("shelterwatch-token");
let me = null;

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
// Every date in Paris time, 24 h, with its zone (07/12/2026 19:30 UTC+1), whatever the zone of
// the screen showing it: the NOC and its clients work on Paris time.
const PARIS = new Intl.DateTimeFormat("fr-FR", {
  timeZone: "Europe/Paris", day: "2-digit", month: "2-digit", year: "numeric",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
});
const when = (iso) => (iso ? PARIS.format(new Date(iso)).replace(",", "") : "");
const enc = encodeURIComponent;

async function api(path) {
  const res = await fetch(path, {headers: {Authorization: `Bearer ${token}`}});
  if (res.status === 401) { throw new Error("unauthorized"); }
  if (!res.ok) {
    // Errors are problem documents (RFC 9457): show what the collector says is wrong.
    const problem = await res.json().catch(() => null);
    throw new Error(`${path}: ${(problem && (problem.detail || problem.title)) || "HTTP " + res.status}`);
  }
  return res.json();
}

function showLogin(message) {
  for (const page of document.querySelectorAll(".page")) { page.hidden = true; }
  $("#nav").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

function showPage(id, title) {
  $("#login").hidden = true;
  $("#nav").hidden = false;
  for (const page of document.querySelectorAll(".page")) { page.hidden = page.id !== id; }
  $("#page-title").textContent = title;
}

function sevBadge(severity) {
  return `<span class="site sev-${esc(severity)}">${esc(severity)}</span>`;
}

function slaCell(sla) {
  if (!sla) { return ""; }
  if (sla.breached) { return `<span class="site sev-critical">breached ${Math.round(-sla.remaining_min)} min</span>`; }
  if (sla.clock !== "running") { return `<span class="site unreachable">${esc(sla.clock)} · ${Math.round(sla.remaining_min)} min left</span>`; }
  const share = sla.remaining_min / sla.gtr_min;
  const cls = share < 0.25 ? "sev-major" : share < 0.5 ? "sev-minor" : "";
  return `<span class="site ${cls}" title="deadline ${when(sla.deadline)}">${Math.round(sla.remaining_min)} min left</span>`;
}

function linkRows(selector) {
  for (const row of document.querySelectorAll(`${selector} [data-href]`)) {
    row.addEventListener("click", () => { location.hash = row.dataset.href; });
  }
}

// -- overview ---------------------------------------------------------------------------

async function overview() {
  const [sites, alarms, tickets] = await Promise.all([
    api("/api/v1/sites"),
    api("/api/v1/alarms?state=open&sort=severity&limit=200"),
    api("/api/v1/tickets?open_only=true&limit=200"),
  ]);
  showPage("overview", me && me.client_id ? `${me.client_id} — overview` : "NOC overview");
  const regions = {};
  for (const s of sites) { (regions[s.region] = regions[s.region] || []).push(s); }
  $("#sites").innerHTML = Object.keys(regions).sort().map((region) => `
    <div class="region"><h3>${esc(region)}</h3>${regions[region].map((s) => {
      const cls = s.agent_reachable === false ? "unreachable" : (s.worst_severity ? `sev-${s.worst_severity}` : "");
      return `<span class="site clickable ${cls}" data-href="#/sites/${enc(s.site_id)}" data-site="${esc(s.site_id)}" title="${esc(s.open_alarms)} open alarm(s)">${esc(s.site_id)}</span>`;
    }).join("")}</div>`).join("");
  linkRows("#sites");
  const counts = {};
  for (const a of alarms.items) { counts[a.severity] = (counts[a.severity] || 0) + 1; }
  $("#alarm-counts").innerHTML = Object.entries(counts).map(([s, n]) => `<span class="sev-${s}">${esc(s)} ${n}</span>`).join("");
  $("#alarms tbody").innerHTML = alarms.items.map((a) => `
    <tr class="clickable" data-alarm="${a.id}" data-href="#/sites/${enc(a.site_id)}"><td class="sev">${sevBadge(a.severity)}</td>
    <td>${esc(a.site_id)}</td><td>${esc(a.equipment_id)} / ${esc(a.point)}</td><td>${esc(a.alarm_type)}</td>
    <td>${esc(a.state)}</td><td>${when(a.first_seen)}</td><td>${a.count}</td></tr>`).join("");
  linkRows("#alarms");
  $("#tickets tbody").innerHTML = tickets.items.map((t) => `
    <tr class="clickable" data-ticket="${esc(t.ref)}" data-href="#/tickets/${enc(t.ref)}"><td>${esc(t.ref)}</td><td>${esc(t.criticality)}</td><td>${esc(t.state)}</td>
    <td>${esc(t.site_id)}</td><td>${esc(t.title)}</td><td>${when(t.opened_at)}</td><td>${slaCell(t.sla)}</td>
    <td>L${t.escalation_level}</td></tr>`).join("");
  linkRows("#tickets");
}

// -- site page --------------------------------------------------------------------------

function chart(points, unit) {
  if (!points.length) { return "<p class=\"muted\">no samples</p>"; }
  const w = 360, h = 90;
  const xs = points.map((p) => new Date(p.at).getTime());
  const ys = points.map((p) => p.mean);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
  const y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => (x1 === x0 ? w / 2 : ((x - x0) / (x1 - x0)) * (w - 10) + 5);
  const sy = (y) => (y1 === y0 ? h / 2 : h - 5 - ((y - y0) / (y1 - y0)) * (h - 10));
  const path = points.map((p, i) => `${i ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(ys[i]).toFixed(1)}`).join(" ");
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img">
    <path d="${path}" fill="none" stroke="#4fc3f7" stroke-width="1.5"/></svg>
    <div class="muted">${y0.toFixed(1)} – ${y1.toFixed(1)} ${esc(unit || "")}</div>`;
}

async function sitePage(siteId) {
  const [site, history] = await Promise.all([
    api(`/api/v1/sites/${enc(siteId)}`),
    api(`/api/v1/alarms?site_id=${enc(siteId)}&limit=100`),
  ]);
  showPage("site-page", `site ${site.site_id}`);
  const agent = site.agent;
  $("#site-title").textContent = `${site.site_id} — ${site.name}`;
  $("#site-summary").innerHTML = `<p>${esc(site.kind.toUpperCase())}, ${esc(site.region)}${site.parent_nro ? `, under ${esc(site.parent_nro)}` : ""} — ${esc(site.address)}</p>
    <p>Agent: ${agent ? `${esc(agent.agent_id)} <b>${agent.reachable ? "reachable" : "UNREACHABLE"}</b>, last seen ${when(agent.last_seen)}, version ${esc(agent.agent_version)}, config ${esc(agent.config_hash)}, ${agent.outbox_events_pending} event(s) buffered` : "none reports yet"}</p>
    <p>Services: ${site.services.map((s) => `${esc(s.hosting_ref)} (${esc(s.client_id)})`).join(", ") || "none"}</p>`;
  $("#equipment tbody").innerHTML = site.equipment.map((e) => {
    const poll = e.health ? (e.health.ok ? "ok" : "FAILING") : "—";
    return `<tr><td>${esc(e.equipment_id)}${e.label ? ` <span class="muted">${esc(e.label)}</span>` : ""}</td><td>${esc(e.kind)}</td>
      <td>${poll}</td><td>${e.open_alarms}</td><td>${esc(e.health && e.health.last_error)}</td></tr>`;
  }).join("");
  $("#site-alarms tbody").innerHTML = history.items.map((a) => `
    <tr data-alarm="${a.id}"><td>${sevBadge(a.severity)}</td><td>${esc(a.equipment_id)} / ${esc(a.point)}</td><td>${esc(a.alarm_type)}</td>
    <td>${esc(a.state)}</td><td>${when(a.first_seen)}</td><td>${when(a.cleared_at)}</td></tr>`).join("");
  const charts = [];
  for (const e of site.equipment) {
    const report = await api(`/api/v1/reports/equipment/${enc(siteId)}/${enc(e.equipment_id)}?since=${enc(new Date(Date.now() - 86400000).toISOString())}`);
    for (const p of report.performance) {
      const series = await api(`/api/v1/sites/${enc(siteId)}/telemetry?equipment_id=${enc(e.equipment_id)}&point=${enc(p.point)}&hours=24`);
      charts.push(`<div class="chart-box"><h3>${esc(e.equipment_id)} / ${esc(p.point)}</h3>${chart(series, p.unit)}</div>`);
    }
  }
  $("#charts").innerHTML = charts.join("") || "<p class=\"muted\">no telemetry in the last 24 h</p>";
}

// -- ticket page ------------------------------------------------------------------------

async function ticketPage(ref) {
  const t = await api(`/api/v1/tickets/${enc(ref)}`);
  showPage("ticket-page", `ticket ${t.ref}`);
  $("#detail-ref").textContent = `${t.ref}${t.client_ref ? ` (your ref ${t.client_ref})` : ""}`;
  $("#detail-summary").innerHTML = `<p>${esc(t.title)} — <b>${esc(t.state)}</b>, ${esc(t.criticality)}, escalation level ${t.escalation_level}</p>
    <p>${t.site_id ? `site <a href="#/sites/${enc(t.site_id)}">${esc(t.site_id)}</a>, ` : ""}opened ${when(t.opened_at)}, re-supervision ${esc(t.resupervision)}${t.return_to_nominal_at ? `, back to nominal ${when(t.return_to_nominal_at)}` : ""}</p>
    <p>${esc(t.description)}</p>`;
  const s = t.sla || {};
  $("#detail-sla").innerHTML = `<p>${slaCell(s)} contract ${esc(s.contract_id)} (${esc(s.calendar)}), clock <b>${esc(s.clock)}</b></p>
    <table><tbody>
    <tr><td>counted</td><td>${s.elapsed_min} of ${s.gtr_min} min (GTR)</td></tr>
    <tr><td>frozen (waiting for the client)</td><td>${s.frozen_min} min</td></tr>
    <tr><td>out of hours</td><td>${s.out_of_hours_min} min</td></tr>
    <tr><td>planned works</td><td>${s.planned_works_min} min</td></tr>
    <tr><td>deadline</td><td>${when(s.deadline)}</td></tr>
    <tr><td>escalations fired</td><td>${(s.escalations_fired || []).map((f) => `${Math.round(f * 100)} %`).join(", ") || "none"}</td></tr>
    <tr><td>penalty</td><td>${s.penalty_eur} EUR${s.penalty_excluded_from ? ` (lateness after ${when(s.penalty_excluded_from)} excluded)` : ""}</td></tr>
    </tbody></table>`;
  const n = t.restoration_notice;
  $("#detail-notice").innerHTML = n ? `<table><tbody>
    <tr><td>link</td><td>${esc(n.link_ref)}</td></tr><tr><td>corrective operation</td><td>${esc(n.corrective_operation)}</td></tr>
    <tr><td>occurred</td><td>${when(n.occurred_at)}</td></tr><tr><td>nature and location</td><td>${esc(n.description)}</td></tr>
    <tr><td>causes</td><td>${esc(n.causes)}</td></tr><tr><td>back to nominal</td><td>${when(n.return_to_nominal_at)}</td></tr>
    </tbody></table>` : "<p class=\"muted\">not restored yet</p>";
  $("#operations tbody").innerHTML = t.operations.map((o) => `
    <tr><td>${when(o.at)}</td><td>${esc(o.actor)}</td><td>${esc(o.action)}</td>
    <td>${o.before || o.after ? `${esc(o.before)} → ${esc(o.after)}` : ""}</td><td>${esc(o.detail)}</td></tr>`).join("");
}

// -- ticket list (the client view) ------------------------------------------------------

async function ticketsPage() {
  const state = $("#ticket-state").value;
  const query = state === "open" ? "open_only=true" : state ? `state=${enc(state)}` : "";
  const page = await api(`/api/v1/tickets?limit=200&${query}`);
  showPage("tickets-page", me && me.client_id ? `tickets of ${me.client_id}` : "all tickets");
  $("#ticket-list tbody").innerHTML = page.items.map((t) => `
    <tr class="clickable" data-ticket="${esc(t.ref)}" data-href="#/tickets/${enc(t.ref)}"><td>${esc(t.ref)}</td><td>${esc(t.client_ref)}</td>
    <td>${esc(t.criticality)}</td><td>${esc(t.state)}</td><td>${esc(t.site_id)}</td><td>${esc(t.title)}</td>
    <td>${when(t.opened_at)}</td><td>${slaCell(t.sla)}</td></tr>`).join("");
  linkRows("#ticket-list");
}

// -- urgent-requests desk ---------------------------------------------------------------

async function urgentPage() {
  const queue = await api("/api/v1/urgent-requests");
  showPage("urgent-page", "urgent requests desk");
  $("#urgent-empty").hidden = queue.length > 0;
  $("#urgent-list tbody").innerHTML = queue.map((t) => `
    <tr class="clickable" data-ticket="${esc(t.ref)}" data-href="#/tickets/${enc(t.ref)}"><td>${esc(t.ref)}</td><td>${esc(t.client_id)}</td>
    <td>${esc(t.hosting_ref)}</td><td>${esc(t.title)}</td><td>${esc(t.criticality)}</td><td>${esc(t.state)}</td>
    <td>${when(t.opened_at)}</td><td>${slaCell(t.sla)}</td></tr>`).join("");
  linkRows("#urgent-list");
}

// -- routing and refresh ----------------------------------------------------------------

async function refresh() {
  if (!token) { showLogin(); return; }
  try {
    if (!me) {
      me = await api("/api/v1/me");
      $("#who").textContent = `${me.user_id} (${me.role}${me.client_id ? ` ${me.client_id}` : ""})`;
    }
    const [, route, arg] = (location.hash || "#/").match(/^#\/([a-z]*)\/?(.*)$/) || [];
    if (route === "sites" && arg) { await sitePage(decodeURIComponent(arg)); }
    else if (route === "tickets" && arg) { await ticketPage(decodeURIComponent(arg)); }
    else if (route === "tickets") { await ticketsPage(); }
    else if (route === "urgent") { await urgentPage(); }
    else { await overview(); }
    $("#status").textContent = `updated ${new Date().toLocaleTimeString()}${stream ? " · live" : ""}`;
  } catch (err) {
    if (err.message === "unauthorized") { localStorage.removeItem("shelterwatch-token"); token = null; me = null; showLogin("invalid token"); }
    else { $("#status").textContent = `error: ${err.message}`; }
  }
}

$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("#token").value.trim();
  localStorage.setItem("shelterwatch-token", token);
  refresh().then(openStream);
});
$("#ticket-state").addEventListener("change", refresh);
window.addEventListener("hashchange", refresh);

let stream = null;
let pending = null;
function scheduleRefresh() {
  if (pending) { return; }
  pending = setTimeout(() => { pending = null; refresh(); }, 150);
}
function openStream() {
  if (stream || !token) { return; }
  stream = new EventSource(`/api/v1/stream?access_token=${enc(token)}`);
  stream.addEventListener("alarm", scheduleRefresh);
  stream.addEventListener("ticket", scheduleRefresh);
  stream.onopen = () => { $("#status").dataset.live = "yes"; };
  stream.onerror = () => { $("#status").dataset.live = "no"; };
}

refresh().then(openStream);
setInterval(refresh, REFRESH_MS);
