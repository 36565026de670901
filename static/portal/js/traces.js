// Recent traces (GET /api/traces/), newest first, filtered by app, run status and duration; each opens its
// waterfall. The filters and the page (the API's `before` cursor) live in the query string, so reload and
// back keep them.
import { api, errorText } from "./api.js";
import { _, format, formatDate, formatMs, ngettext, statusLabel } from "./i18n.js";
import { el } from "./dom.js";

const STATUSES = ["queued", "running", "waiting_human", "succeeded", "failed", "cancelled", "timed_out"];
const FIELDS = ["app", "status", "min_duration_ms", "max_duration_ms"];

const form = document.getElementById("traces-filter");
const statusSelect = document.getElementById("traces-status");
const appChoices = document.getElementById("traces-apps");
const rows = document.getElementById("traces-rows");
const statusLine = document.getElementById("traces-status-line");
const newest = document.getElementById("traces-newest");
const older = document.getElementById("traces-older");
let before = "";
let nextBefore = "";

for (const status of STATUSES) statusSelect.append(el("option", { value: status, text: statusLabel(status) }));

function readUrl() {
  const query = new URLSearchParams(window.location.search);
  for (const name of FIELDS) form.elements.namedItem(name).value = query.get(name) || "";
  before = query.get("before") || "";
}

function query() {
  const values = new URLSearchParams();
  for (const name of FIELDS) {
    const value = form.elements.namedItem(name).value.trim();
    if (value) values.set(name, value);
  }
  if (before) values.set("before", before);
  return values;
}

function writeUrl() {
  const values = query();
  const url = `${window.location.pathname}${values.size ? `?${values}` : ""}`;
  if (url !== `${window.location.pathname}${window.location.search}`) window.history.pushState(null, "", url);
}

function row(trace) {
  const errors = trace.error_count;
  return el(
    "tr",
    { "data-trace": trace.trace_id, "data-run": trace.run_id },
    el("td", {}, el("time", { datetime: trace.started_at, text: formatDate(trace.started_at) })),
    el("td", { text: trace.app || "—" }),
    el("td", {}, trace.status ? el("span", { class: `status ${trace.status}`, text: statusLabel(trace.status) }) : "—"),
    el("td", { class: "number", text: formatMs(trace.duration_ms) }),
    el("td", { class: "number", text: String(trace.span_count) }),
    el("td", { class: errors ? "number trouble-text" : "number", text: String(errors) }),
    el("td", {}, el("a", {
      href: `/dashboard/traces/${trace.trace_id}`,
      "aria-label": format(_("Open the trace of %(app)s started %(when)s"), { app: trace.app || "—", when: formatDate(trace.started_at) }),
      text: _("Open"),
    })),
  );
}

let latest = 0; // filters change faster than answers come: only the last request's answer is shown

async function load() {
  const mine = ++latest;
  say(_("Loading…"));
  const values = query();
  values.set("limit", "50");
  try {
    const data = await api(`/api/traces/?${values}`);
    if (mine !== latest) return;
    rows.replaceChildren(...data.results.map(row));
    nextBefore = data.next ? new URL(data.next, window.location.href).searchParams.get("before") || "" : "";
    older.disabled = !nextBefore;
    newest.disabled = !before;
    const n = data.results.length;
    say(n ? format(ngettext("%(n)s trace shown", "%(n)s traces shown", n), { n }) : _("No trace matches."));
  } catch (error) {
    if (mine !== latest) return;
    rows.replaceChildren();
    older.disabled = true;
    newest.disabled = !before;
    say(errorText(error));
  }
}

function say(text) {
  statusLine.textContent = text;
}

async function loadApps() {
  const apps = await api("/api/apps/?page_size=500");
  appChoices.replaceChildren(...apps.results.map((app) => el("option", { value: app.slug, text: app.name })));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!form.reportValidity()) return;
  before = "";
  writeUrl();
  load();
});
form.elements.namedItem("status").addEventListener("change", () => form.requestSubmit());
older.addEventListener("click", () => {
  before = nextBefore;
  writeUrl();
  load();
});
newest.addEventListener("click", () => {
  before = "";
  writeUrl();
  load();
});
window.addEventListener("popstate", () => {
  readUrl();
  load();
});

readUrl();
load();
loadApps().catch(() => {}); // the app names are only suggestions for the filter
