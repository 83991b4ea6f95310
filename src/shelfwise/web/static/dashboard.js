// The dashboard: traffic and latency per endpoint (GET /dashboard/stats, polled), the models
// served and on disk, and evaluation reports with their plots (GET /dashboard/reports).
// In `serve` mode every call needs an admin key (asked for once, kept in localStorage).

import { ApiError, apiFetch, apiGet, pageConfig, storedKey, useKeySlot } from "./js/api.js";
import { barChart, lineChart } from "./js/charts.js";
import { el, message } from "./js/dom.js";
import { keyForm } from "./js/keys.js";

useKeySlot("dashboard");
const POLL_SECONDS = Number(new URLSearchParams(location.search).get("poll") || 5);
const MAX_SAMPLES = 120;
const samples = []; // [{t, requests, errors}] from each poll, for the traffic chart
let selectedRoute = null; // "GET /recommendations/{user_id}": whose latency histogram is drawn
const main = document.getElementById("main");

const when = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleString() : "—");
const ms = (value) => (value === null || value === undefined ? "—" : value < 10 ? value.toFixed(2) : value.toFixed(1));

function section(id, title, ...content) {
  return el(`section#${id}.panel`, {}, el("h2", {}, title), ...content);
}

function definitionList(pairs) {
  return el("dl.facts", {}, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

function overview(stats) {
  const model = stats.models.serving;
  return section("overview", "Overview", definitionList([
    ["mode", stats.mode === "demo" ? "demo (reads open)" : "serve (keys required)"],
    ["model served", model ? el("span#model-version", {}, `${model.name} ${model.version}`) : "none"],
    ["model source", model?.source],
    ["trained / fitted", when(model?.created_at)],
    ["loaded", when(model?.loaded_at)],
    ["uptime", `${Math.round(stats.process.uptime_seconds)} s (process ${stats.process.pid})`],
    ["requests", stats.totals.requests.toLocaleString()],
    ["5xx errors", stats.totals.errors.toLocaleString()],
    ["rate limited", stats.totals.rate_limited.toLocaleString()],
    ["events stored", `${stats.events.stored.toLocaleString()} of ${stats.events.received.toLocaleString()} received` +
      ` (${stats.events.rejected} rejected; commit p99 ${ms(stats.events.write_p99_ms)} ms)`],
  ]));
}

function trafficChart() {
  const rates = samples.slice(1).map((s, i) => {
    const before = samples[i];
    const seconds = Math.max(0.001, s.t - before.t);
    return { t: s.t - samples[0].t, requests: (s.requests - before.requests) / seconds, errors: (s.errors - before.errors) / seconds };
  });
  return section("traffic", "Traffic",
    el("p.subtle", {}, `requests per second in this process, sampled every ${POLL_SECONDS} s while this page is open`),
    lineChart({ series: [
      { name: "requests/s", points: rates.map((r) => [r.t, r.requests]) },
      { name: "5xx/s", points: rates.map((r) => [r.t, r.errors]) },
    ], xLabel: "seconds", title: "requests per second" }));
}

function endpointTable(stats) {
  const rows = stats.endpoints.map((e) => {
    const name = `${e.method} ${e.route}`;
    const statuses = Object.entries(e.statuses).map(([s, n]) => `${s}: ${n}`).join(", ");
    return el("tr", { class: name === selectedRoute ? "selected" : "", dataset: { route: name },
      onclick: () => { selectedRoute = name; render(lastStats); } },
    el("td", {}, e.method), el("td.route", {}, e.route === "unmatched" ? "(no route: static files, 404s)" : e.route), el("td.num", {}, e.requests.toLocaleString()),
    el("td", {}, statuses), el("td.num", {}, e.errors), el("td.num", {}, ms(e.mean_ms)), el("td.num", {}, ms(e.p50_ms)),
    el("td.num", {}, ms(e.p95_ms)), el("td.num", {}, ms(e.p99_ms)));
  });
  const table = el("table#latency-table.data", {},
    el("thead", {}, el("tr", {}, ["method", "route", "requests", "statuses", "5xx", "mean ms", "p50 ms", "p95 ms", "p99 ms"]
      .map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
  const chosen = stats.endpoints.find((e) => `${e.method} ${e.route}` === selectedRoute) || stats.endpoints[0];
  const histogram = chosen ? el("figure#latency-histogram", {},
    barChart({ bars: chosen.buckets.map((b) => ({ label: b.le_ms === null ? "inf" : `${b.le_ms}`, value: b.count })),
      xLabel: "latency bucket, ms (upper bound)", title: "latency histogram" }),
    el("figcaption", {}, `Latency of ${chosen.method} ${chosen.route} (${chosen.requests} requests); click a row to choose`)) : null;
  return section("endpoints", "Latency per endpoint",
    stats.endpoints.length ? table : message("No requests yet."), histogram);
}

function models(stats) {
  const { serving, previous, available } = stats.models;
  const versions = Object.entries(available).map(([name, info]) =>
    el("tr", {}, el("td", {}, name), el("td", {}, info.latest), el("td", {}, info.versions.join(", "))));
  const indexes = Object.entries(stats.indexes).map(([name, size]) => `${name}: ${size.toLocaleString()}`).join(" · ");
  return section("models", "Models",
    definitionList([
      ["serving", serving ? `${serving.name} ${serving.version} (${serving.source}${serving.artifact ? `, ${serving.artifact}` : ""})` : "none"],
      ["previous (rollback target)", previous ? `${previous.name} ${previous.version}` : "none"],
      ["items the model knows", serving?.n_items?.toLocaleString()],
      ["indexes", indexes],
    ]),
    versions.length
      ? el("table#model-versions.data", {}, el("thead", {}, el("tr", {}, el("th", {}, "artifact"), el("th", {}, "latest"), el("th", {}, "versions on disk"))),
        el("tbody", {}, versions))
      : el("p.subtle", {}, "No trained artifacts yet: shelfwise train recommender --model sasrec"));
}

// ---- evaluation reports ----

function metricTable(tables) {
  const rows = Object.entries(tables);
  if (!rows.length) return null;
  const columns = [...new Set(rows.flatMap(([, row]) => Object.keys(row)))];
  return el("table.data.metrics", {},
    el("thead", {}, el("tr", {}, el("th", {}), columns.map((c) => el("th", {}, c)))),
    el("tbody", {}, rows.map(([name, row]) => el("tr", {}, el("th", {}, name),
      columns.map((c) => el("td.num", {}, typeof row[c] === "number" ? (Number.isInteger(row[c]) ? row[c] : row[c].toFixed(4)) : ""))))));
}

function learningCurves(curves) {
  if (!curves?.points?.length) return null;
  const names = [...new Set(curves.points.flatMap((p) => Object.keys(p).filter((k) => k !== "x")))];
  const series = (keys) => keys.map((name) => ({ name, points: curves.points.map((p) => [p.x, p[name] ?? null]) }));
  const losses = names.filter((n) => n.includes("loss"));
  const others = names.filter((n) => !n.includes("loss"));
  return el("div.curves", {},
    losses.length ? lineChart({ series: series(losses), width: 420, height: 180, xLabel: curves.x, title: "training loss" }) : null,
    others.length ? lineChart({ series: series(others), width: 420, height: 180, xLabel: curves.x, title: "validation metrics" }) : null);
}

// Report files are fetched with the key; HTML shows in a sandboxed frame (no scripts), images inline.
async function openFile(file, viewer) {
  viewer.replaceChildren(el("p.subtle", {}, `loading ${file.name}…`));
  try {
    const response = await apiFetch(file.url);
    if (file.kind === "html") {
      viewer.replaceChildren(el("iframe.report-frame", { sandbox: "", title: file.name, srcdoc: await response.text() }));
    } else if (["png", "svg", "jpg", "jpeg"].includes(file.kind)) {
      viewer.replaceChildren(el("img.plot", { src: URL.createObjectURL(await response.blob()), alt: file.name }));
    } else {
      viewer.replaceChildren(el("pre.json", {}, JSON.stringify(await response.json(), null, 2)));
    }
  } catch (error) {
    viewer.replaceChildren(message(error.message, "error"));
  }
}

function reportCard(report) {
  const viewer = el("div.viewer");
  return el("article.report", { dataset: { path: report.path } },
    el("h3", {}, report.path, report.latest ? el("span.badge", {}, "latest") : null),
    el("p.subtle", {}, `updated ${when(report.modified)}`),
    metricTable(report.tables),
    learningCurves(report.curves),
    el("p.files", {}, report.files.map((file) =>
      el("button.file.secondary", { type: "button", dataset: { kind: file.kind }, onclick: () => openFile(file, viewer) },
        `${file.name} (${Math.ceil(file.bytes / 1024)} KB)`))),
    viewer);
}

async function loadReports(container) {
  try {
    const { reports } = await apiGet("/dashboard/reports");
    container.replaceChildren(...(reports.length ? reports.map(reportCard)
      : [el("p.subtle", {}, "No evaluation reports yet. Train a model (shelfwise train recommender) or run a benchmark with --out inside the home's artifacts folder.")]));
  } catch (error) {
    container.replaceChildren(message(error.message, "error"));
  }
}

// ---- page ----

let lastStats = null;
const reportsList = el("div#report-list", {}, el("p.subtle", {}, "loading…"));
const reportsPanel = section("reports", "Evaluation reports",
  el("button.secondary", { type: "button", onclick: () => loadReports(reportsList) }, "Refresh"), reportsList);
const livePanels = el("div#live");

function render(stats) {
  lastStats = stats;
  livePanels.replaceChildren(overview(stats), trafficChart(), endpointTable(stats), models(stats));
}

function askForKey(error) {
  clearInterval(poller);
  main.replaceChildren(keyForm(storedKey()
    ? `The stored key was refused (${error.message}). The dashboard needs a key with the admin scope.`
    : "The dashboard needs an API key with the admin scope (shelfwise keys create --scope admin)."));
}

async function poll() {
  try {
    const stats = await apiGet("/dashboard/stats");
    samples.push({ t: stats.generated_at, requests: stats.totals.requests, errors: stats.totals.errors });
    if (samples.length > MAX_SAMPLES) samples.shift();
    render(stats);
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.needsKey) askForKey(error);
    else livePanels.replaceChildren(message(error.message, "error"));
    return false;
  }
}

let poller = null;
async function start() {
  const config = await pageConfig();
  document.getElementById("mode-banner").textContent = config.mode === "demo"
    ? "Demo: the dashboard is open without a key." : "";
  main.replaceChildren(livePanels, reportsPanel);
  if (await poll()) {
    loadReports(reportsList);
    poller = setInterval(poll, POLL_SECONDS * 1000);
  }
}

start();
