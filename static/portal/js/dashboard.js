// The operators' dashboard: the health summary (GET /api/health/summary), agent status chips
// (GET /api/agents/status, then live from the `agent_status` events of GET /api/agents/events), the recent
// runs I may read (GET /api/runs/?scope=visible) and the dead queue entries (GET /api/queue/dead). The
// summary, the runs and the dead entries are read again every REFRESH_MS while the page is visible.
import { api, errorText } from "./api.js";
import { _, agentStateLabel, format, formatDate, formatMs, ngettext, statusLabel } from "./i18n.js";
import { el } from "./dom.js";

const REFRESH_MS = 15_000;
const RECENT_RUNS = 10;
const DEAD_SHOWN = 20;
const RETRY_MAX_MS = 60_000;
const AGENT_STATES = ["busy", "waiting_input", "idle", "error", "offline", "unknown"];
const RUN_STATUSES = ["queued", "running", "waiting_human", "succeeded", "failed", "cancelled", "timed_out"];
const TROUBLE = new Set(["error", "offline"]);

const $ = (id) => document.getElementById(id);

// Only a changed text is written: a status line is a live region, and the page refreshes itself.
function say(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return _("never");
  if (seconds < 1) return _("just now");
  return format(_("%(duration)s ago"), { duration: formatMs(Math.round(seconds) * 1000) });
}

function counts(list, entries) {
  list.replaceChildren(
    ...entries.map(([label, value, name]) =>
      el(
        "li",
        { "data-count": name, class: value && TROUBLE.has(name) ? "trouble" : null },
        el("span", { class: "count-label", text: label }),
        el("span", { class: "count-value", text: String(value) }),
      ),
    ),
  );
}

function flag(name, trouble) {
  document.querySelector(`[data-health="${name}"]`).classList.toggle("trouble", trouble);
}

const shown = new Map(); // what a table last drew, as JSON
function changed(table, rows) {
  const json = JSON.stringify(rows);
  if (shown.get(table) === json) return false;
  shown.set(table, json);
  return true;
}

// --- the health summary -------------------------------------------------------------------------------

function showHealth(summary) {
  say($("health-as-of"), format(_("As of %(when)s"), { when: formatDate(summary.generated_at) }));
  const { agents, executors, queue, runs_last_hour: runs, reconciler } = summary;

  say($("health-agents-total"), format(ngettext("%(n)s agent", "%(n)s agents", agents.total), { n: agents.total }));
  counts($("health-agents"), AGENT_STATES.map((state) => [agentStateLabel(state), agents.by_state[state] ?? 0, state]));
  flag("agents", AGENT_STATES.some((state) => TROUBLE.has(state) && agents.by_state[state]));

  say($("health-executors-figure"), format(_("%(up)s up, %(down)s down"), { up: executors.up, down: executors.down }));
  $("health-executors").replaceChildren(...executors.items.map(executorItem));
  flag("executors", executors.down > 0);

  say($("health-queue-depth"), format(ngettext("%(n)s entry", "%(n)s entries", queue.depth), { n: queue.depth }));
  counts($("health-queue"), [
    [_("ready"), queue.ready, "ready"],
    [_("parked"), queue.parked, "parked"],
    [_("dead"), queue.dead, "dead"],
    [_("oldest ready"), queue.oldest_ready_age_s === null ? "—" : formatMs(Math.round(queue.oldest_ready_age_s) * 1000), "oldest"],
  ]);
  flag("queue", queue.dead > 0);

  say($("health-runs-total"), format(ngettext("%(n)s run", "%(n)s runs", runs.total), { n: runs.total }));
  const seen = RUN_STATUSES.filter((status) => runs.by_status[status]);
  counts($("health-runs"), seen.map((status) => [statusLabel(status), runs.by_status[status], status]));
  flag("runs", Boolean(runs.by_status.failed || runs.by_status.timed_out));

  say($("health-reconciler-age"), format(_("Last pass: %(ago)s"), { ago: ago(reconciler.age_s) }));
  say($("health-reconciler-owner"), reconciler.owner ? format(_("By %(owner)s"), { owner: reconciler.owner }) : "");
  flag("reconciler", reconciler.last_pass_at === null);
}

function executorItem(executor) {
  const state = !executor.enabled ? _("disabled") : executor.up ? _("up") : _("down");
  const item = el(
    "li",
    { "data-executor": executor.name, class: executor.enabled && !executor.up ? "trouble" : null },
    el("span", { class: "count-label", text: executor.name }),
    el("span", { class: "count-value", text: state }),
  );
  if (executor.enabled && !executor.up && executor.last_error) {
    item.append(el("span", { class: "count-note", text: executor.last_error }));
  }
  return item;
}

async function loadHealth() {
  try {
    showHealth(await api("/api/health/summary"));
  } catch (error) {
    say($("health-as-of"), errorText(error));
  }
}

// --- agent status chips, live -------------------------------------------------------------------------

const chipsList = $("agents");
const chips = new Map(); // "<executor_id>/<agent_id>" → {node, since}
let source = null;
let lastEventId = "";
let retryMs = 1000;
let lostOnce = false;
let followTimer = 0;

const chipKey = (status) => `${status.executor_id}/${status.agent_id}`;

// Both the list and the events say since when a state holds: older news than what is shown is not shown
// (a list read again while events arrive cannot undo them).
function showAgent(status) {
  const key = chipKey(status);
  const known = chips.get(key);
  if (known && known.since && status.since && new Date(status.since) < new Date(known.since)) return;
  const node = known?.node ?? el("li", { class: "agent-chip", "data-agent": status.agent_id, "data-executor": status.executor });
  const detail = status.detail || "";
  if (known && node.dataset.state !== status.state) flash(node);
  node.dataset.state = status.state;
  node.title = detail;
  node.replaceChildren(
    el("span", { class: "chip-dot", "aria-hidden": "true" }),
    el(
      "span",
      { class: "chip-text" },
      el("span", { class: "agent-name", text: status.agent_id }),
      el("span", { class: "agent-state", text: agentStateLabel(status.state) }),
      el("span", { class: "agent-where", text: status.app && !status.agent_id.startsWith(`${status.app}/`) ? `${status.executor} · ${status.app}` : status.executor }),
      detail ? el("span", { class: "visually-hidden", text: `. ${detail}` }) : null,
      status.since ? el("time", { class: "agent-since", datetime: status.since, text: format(_("since %(when)s"), { when: formatDate(status.since) }) }) : null,
    ),
  );
  if (!known) insertChip(key, node);
  chips.set(key, { node, since: status.since });
  $("agents-empty").hidden = chips.size > 0;
}

function flash(node) {
  node.classList.remove("changed");
  void node.offsetWidth; // restarts the animation
  node.classList.add("changed");
}

function insertChip(key, node) {
  node.dataset.key = key;
  const after = [...chipsList.children].find((other) => sortKey(other) > sortKey(node));
  chipsList.insertBefore(node, after ?? null);
}

const sortKey = (node) => `${node.dataset.executor}\u0000${node.dataset.agent}`;

// The list, then the stream from the list's last_event_id: every change after the list, none missed. The
// EventSource reconnects by itself, sending the last id it saw; when it gives up (an HTTP error), a new one
// is opened later, less and less often, from that same id. A server that has lost its history (a restored
// database) says stream-reset: the list is read again.
async function loadAgents() {
  const data = await api("/api/agents/status");
  for (const status of data.results) showAgent(status);
  $("agents-empty").hidden = chips.size > 0;
  chipsList.dataset.loaded = "true";
  lastEventId = data.last_event_id;
}

async function startAgents() {
  try {
    await loadAgents();
  } catch (error) {
    say($("agents-connection"), errorText(error));
    window.setTimeout(startAgents, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    return;
  }
  connect();
}

function connect() {
  const opened = new EventSource(`/api/agents/events?lastEventId=${encodeURIComponent(lastEventId)}`);
  source = opened;
  opened.addEventListener("open", () => {
    retryMs = 1000;
    say($("agents-connection"), lostOnce ? _("Reconnected.") : _("Live"));
    chipsList.dataset.live = "true";
  });
  opened.addEventListener("agent_status", (event) => {
    lastEventId = event.lastEventId;
    showAgent(JSON.parse(event.data));
    // The summary's counts and the runs follow the chips, a burst of changes costing one read of each.
    window.clearTimeout(followTimer);
    followTimer = window.setTimeout(() => {
      loadHealth();
      loadRuns();
    }, 1000);
  });
  opened.addEventListener("stream-reset", (event) => {
    lastEventId = event.lastEventId;
    loadAgents().catch((error) => say($("agents-connection"), errorText(error)));
  });
  opened.addEventListener("error", () => {
    if (source !== opened) return;
    lostOnce = true;
    delete chipsList.dataset.live;
    say($("agents-connection"), _("Connection lost. Reconnecting…"));
    if (opened.readyState !== EventSource.CLOSED) return;
    window.setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  });
}

// --- recent runs and dead entries ---------------------------------------------------------------------

const ACTIVE = new Set(["queued", "running", "waiting_human"]);

function runDuration(run) {
  if (!run.started_at || (!run.finished_at && !ACTIVE.has(run.status))) return "—";
  const end = run.finished_at ? new Date(run.finished_at) : new Date();
  return formatMs(Math.max(0, end - new Date(run.started_at)));
}

function runRow(run) {
  const started = run.started_at || run.created_at;
  return el(
    "tr",
    { "data-run": run.id },
    el("td", { text: run.app }),
    el("td", {}, el("span", { class: `status ${run.status}`, text: statusLabel(run.status) })),
    el("td", {}, el("time", { datetime: started, text: formatDate(started) })),
    el("td", { text: runDuration(run) }),
    el("td", { text: run.user || "" }),
    el("td", {}, el("a", { href: `/portal/runs/${run.id}`, "aria-label": format(_("Open the run of %(app)s started %(when)s"), { app: run.app, when: formatDate(started) }), text: _("Open") })),
  );
}

async function loadRuns() {
  try {
    const data = await api(`/api/runs/?scope=visible&page_size=${RECENT_RUNS}`);
    // Rows drawn again only when they change (or show a running clock): a refresh keeps focus and selection.
    if (changed("runs", data.results) || data.results.some((run) => ACTIVE.has(run.status))) {
      $("recent-rows").replaceChildren(...data.results.map(runRow));
    }
    $("recent-table").hidden = !data.results.length;
    say($("recent-status"), data.count ? format(_("The latest %(shown)s of %(n)s."), { shown: data.results.length, n: data.count }) : _("No run yet."));
  } catch (error) {
    say($("recent-status"), errorText(error));
  }
}

function deadRow(entry) {
  const error = [entry.last_error_class, entry.last_error_detail].filter(Boolean).join(": ");
  // A run pruned since has no app and no page left.
  const open = entry.app
    ? el("a", { href: `/portal/runs/${entry.run_id}`, "aria-label": format(_("Open the dead run of %(app)s"), { app: entry.app }), text: _("Open") })
    : null;
  return el(
    "tr",
    { "data-run": entry.run_id },
    el("td", { text: entry.app || "—" }),
    el("td", { class: "number", text: String(entry.attempts) }),
    el("td", { class: "dead-error", text: error || "—" }),
    el("td", {}, el("time", { datetime: entry.updated_at, text: formatDate(entry.updated_at) })),
    el("td", {}, open),
  );
}

async function loadDead() {
  try {
    const data = await api(`/api/queue/dead?limit=${DEAD_SHOWN}`);
    if (changed("dead", data.results)) $("dead-rows").replaceChildren(...data.results.map(deadRow));
    $("dead-table").hidden = !data.results.length;
    say($("dead-status"), data.results.length ? format(ngettext("%(n)s entry shown.", "%(n)s entries shown.", data.results.length), { n: data.results.length }) : _("No dead entry: the queue has given up on no run."));
  } catch (error) {
    say($("dead-status"), errorText(error));
  }
}

function refresh() {
  if (document.visibilityState === "hidden") return;
  loadHealth();
  loadRuns();
  loadDead();
}

refresh();
startAgents();
window.setInterval(refresh, REFRESH_MS);
document.addEventListener("visibilitychange", refresh);
