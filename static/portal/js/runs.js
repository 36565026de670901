// My runs (GET /api/runs/), or every run I may read (scope=visible) when I hold run.view_all on some app.
// The filters and the page live in the page's query string, so reload and back keep them.
import { api, errorText } from "./api.js";
import { _, format, formatDate, ngettext, statusLabel } from "./i18n.js";
import { el } from "./dom.js";

const PAGE_SIZE = 20;
const STATUSES = ["queued", "running", "waiting_human", "succeeded", "failed", "cancelled", "timed_out"];
const FIELDS = ["scope", "app", "status", "from", "to"];
const MESSAGE_WORDS = 12;

const form = document.getElementById("runs-filter");
const scopeField = document.getElementById("runs-scope-field");
const appSelect = document.getElementById("runs-app");
const statusSelect = document.getElementById("runs-status");
const rows = document.getElementById("runs-rows");
const statusLine = document.getElementById("runs-status-line");
const previous = document.getElementById("runs-previous");
const next = document.getElementById("runs-next");
const pageLabel = document.getElementById("runs-page");
const appNames = new Map();
let me = null;
let page = 1;

for (const status of STATUSES) statusSelect.append(el("option", { value: status, text: statusLabel(status) }));

// A date field holds a day in the browser's time zone: the API is given that day's first instant, and the
// "to" day is included (the API's created_before is exclusive: the next day's first instant).
function dayStart(value, addDays = 0) {
  const [year, month, day] = value.split("-").map(Number);
  return new Date(year, month - 1, day + addDays).toISOString();
}

function readUrl() {
  const query = new URLSearchParams(window.location.search);
  for (const name of FIELDS) {
    const control = form.elements.namedItem(name);
    const value = query.get(name) || "";
    if (control.tagName === "SELECT" && value && ![...control.options].some((o) => o.value === value)) {
      control.append(el("option", { value, text: value }));  // an app no longer in the store, say
    }
    control.value = value || (name === "scope" ? "mine" : "");
  }
  page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
}

function writeUrl() {
  const query = new URLSearchParams();
  for (const name of FIELDS) {
    const value = form.elements.namedItem(name).value;
    if (value && !(name === "scope" && value === "mine")) query.set(name, value);
  }
  if (page > 1) query.set("page", String(page));
  const url = `${window.location.pathname}${query.size ? `?${query}` : ""}`;
  if (url !== `${window.location.pathname}${window.location.search}`) window.history.pushState(null, "", url);
}

function apiQuery() {
  const values = Object.fromEntries(FIELDS.map((name) => [name, form.elements.namedItem(name).value]));
  const query = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
  if (values.scope === "visible") query.set("scope", "visible");
  if (values.app) query.set("app", values.app);
  if (values.status) query.set("status", values.status);
  if (values.from) query.set("created_after", dayStart(values.from));
  if (values.to) query.set("created_before", dayStart(values.to, 1));
  return query;
}

function duration(run) {
  if (!run.started_at) return "—";
  const end = run.finished_at ? new Date(run.finished_at) : new Date();
  const seconds = Math.max(0, Math.round((end - new Date(run.started_at)) / 1000));
  if (seconds < 60) return format(_("%(s)s s"), { s: seconds });
  if (seconds < 3600) return format(_("%(m)s min %(s)s s"), { m: Math.floor(seconds / 60), s: seconds % 60 });
  return format(_("%(h)s h %(m)s min"), { h: Math.floor(seconds / 3600), m: Math.floor((seconds % 3600) / 60) });
}

function firstWords(input) {
  const message = typeof input?.message === "string" ? input.message.trim() : "";
  if (!message) return el("span", { class: "muted", text: _("(no message)") });
  const words = message.split(/\s+/);
  const shown = words.slice(0, MESSAGE_WORDS).join(" ");
  return words.length > MESSAGE_WORDS || shown.length > 120 ? `${shown.slice(0, 120)}…` : shown;
}

function row(run) {
  const started = run.started_at || run.created_at;
  return el(
    "tr",
    { "data-run": run.id },
    el("td", { text: appNames.get(run.app) || run.app }),
    el("td", {}, el("span", { class: `status ${run.status}`, text: statusLabel(run.status) })),
    el("td", {}, el("time", { datetime: started, text: formatDate(started) })),
    el("td", { text: duration(run) }),
    el("td", { class: "run-message" }, firstWords(run.input)),
    el("td", { class: "run-owner", text: run.user && run.user !== me ? run.user : "" }),
    el("td", {}, el("a", { href: `/portal/runs/${run.id}`, "aria-label": format(_("Open the run of %(app)s started %(when)s"), { app: appNames.get(run.app) || run.app, when: formatDate(started) }), text: _("Open") })),
  );
}

let latest = 0; // filters change faster than answers come: only the last request's answer is shown

async function load() {
  const mine = ++latest;
  statusLine.textContent = _("Loading…");
  try {
    const data = await api(`/api/runs/?${apiQuery()}`);
    if (mine !== latest) return;
    rows.replaceChildren(...data.results.map(row));
    const pages = Math.max(1, Math.ceil(data.count / PAGE_SIZE));
    previous.disabled = !data.previous;
    next.disabled = !data.next;
    pageLabel.textContent = format(_("Page %(page)s of %(pages)s"), { page, pages });
    statusLine.textContent = data.count
      ? format(ngettext("%(n)s run", "%(n)s runs", data.count), { n: data.count })
      : _("No run matches.");
  } catch (error) {
    if (mine !== latest) return;
    rows.replaceChildren();
    previous.disabled = page <= 1;
    next.disabled = true;
    statusLine.textContent = error.status === 404 && page > 1 ? _("There is no such page.") : errorText(error);
  }
}

async function loadChoices() {
  const [apps, who] = await Promise.all([api("/api/apps/?page_size=500"), api("/api/me/")]);
  me = who.username;
  for (const app of apps.results) {
    appNames.set(app.slug, app.name);
    appSelect.append(el("option", { value: app.slug, text: app.name }));
  }
  scopeField.hidden = !apps.results.some((app) => app.all_runs_readable);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  page = 1;
  writeUrl();
  load();
});
form.addEventListener("change", () => form.requestSubmit());
previous.addEventListener("click", () => {
  page = Math.max(1, page - 1);
  writeUrl();
  load();
});
next.addEventListener("click", () => {
  page += 1;
  writeUrl();
  load();
});
window.addEventListener("popstate", () => {
  readUrl();
  load();
});

try {
  await loadChoices();
} catch (error) {
  statusLine.textContent = errorText(error);
}
readUrl();
load();
