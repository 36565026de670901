// One trace as a waterfall, drawn from GET /api/traces/{trace_id}: a row per span in the API's depth-first
// order, indented by depth, its bar placed by offset_ms and sized by duration_ms on the trace's time line;
// errors are marked in words as well as in colour. Choosing a span shows its attributes; #span-<id> in the
// address chooses one on arrival (a link can point at a span).
import { api, errorText } from "./api.js";
import { _, format, formatDate, formatMs, statusLabel } from "./i18n.js";
import { el, pageData } from "./dom.js";

const ACTIVE = new Set(["queued", "running", "waiting_human"]);
const PROCESS_COLOURS = 4; // portal.css: .process-0 to .process-3
const SPAN_STATUS = { ok: () => _("ok"), error: () => _("error"), unset: () => _("unset") };
const page = pageData();
const statusLine = document.getElementById("trace-status");
const waterfall = document.getElementById("waterfall");
const axis = document.getElementById("waterfall-axis");
const legend = document.getElementById("waterfall-legend");
const detailEmpty = document.getElementById("span-detail-empty");
const detailBody = document.getElementById("span-detail-body");
const lang = document.documentElement.lang || undefined;
const buttons = new Map(); // span_id → its row's button

const percent = (part, whole) => `${Math.min(100, Math.max(0, (part / whole) * 100)).toFixed(3)}%`;
const preciseTime = (iso) =>
  new Date(iso).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3, hour12: false });

function showSummary(trace) {
  const run = document.getElementById("trace-run");
  if (trace.run) {
    run.replaceChildren(
      el("a", { href: `/portal/runs/${trace.run.id}`, text: trace.run.app }),
      " ",
      el("span", { class: `status ${trace.run.status}`, text: statusLabel(trace.run.status) }),
    );
  } else {
    run.textContent = "—";
  }
  document.getElementById("trace-started").replaceChildren(el("time", { datetime: trace.started_at, text: formatDate(trace.started_at) }));
  document.getElementById("trace-duration").textContent = formatMs(trace.duration_ms);
  const errors = trace.spans.filter((span) => span.status === "error").length;
  document.getElementById("trace-count").textContent = errors
    ? format(_("%(n)s, of which %(errors)s failed"), { n: trace.spans.length, errors })
    : String(trace.spans.length);
  document.getElementById("trace-summary").hidden = false;
}

// Ticks at round values (1, 2 or 5 times a power of ten) that fit the trace, placed on its time line.
function drawAxis(total) {
  const rough = total / 6;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough);
  const track = el("span", { class: "axis-track" });
  for (let at = 0; at <= total + step * 1e-9; at += step) {
    const tick = el("span", { class: "tick", text: formatMs(Number(at.toPrecision(12))) });
    tick.style.setProperty("--at", percent(at, total));
    track.append(tick);
  }
  axis.replaceChildren(track);
}

// Each process (web, worker, …) has its bar colour, named in the legend; the colours are a help to the eye
// only: a span's process is in its details.
function drawLegend(spans) {
  const processes = [...new Set(spans.map((span) => span.process))];
  legend.replaceChildren(
    ...processes.map((process, n) =>
      el("li", { "data-process": process }, el("span", { class: `swatch process-${n % PROCESS_COLOURS}`, "aria-hidden": "true" }), process || "—"),
    ),
  );
  return new Map(processes.map((process, n) => [process, n % PROCESS_COLOURS]));
}

function spanRow(span, total, colours) {
  const error = span.status === "error";
  const bar = el("span", { class: `span-bar process-${colours.get(span.process)}` });
  // Set through the CSSOM: the Content-Security-Policy refuses style attributes, not style properties.
  bar.style.setProperty("--left", percent(span.offset_ms, total));
  bar.style.setProperty("--width", percent(span.duration_ms, total));
  const label = el(
    "span",
    { class: "span-label" },
    el("span", { class: "span-name", text: span.name }),
    error ? el("span", { class: "span-error", text: _("error") }) : null,
  );
  label.style.setProperty("--depth", String(span.depth));
  const button = el(
    "button",
    { type: "button", class: "span-button", "aria-pressed": "false", "aria-controls": "span-detail", "data-span": span.span_id },
    label,
    el("span", { class: "span-track", "aria-hidden": "true" }, bar),
    el("span", { class: "span-duration", text: formatMs(span.duration_ms) }),
    el("span", { class: "visually-hidden", text: format(_(", from %(offset)s"), { offset: formatMs(span.offset_ms) }) }),
  );
  button.addEventListener("click", () => choose(span));
  buttons.set(span.span_id, button);
  return el("li", { class: error ? "span-row error" : "span-row", id: `span-${span.span_id}`, "data-depth": String(span.depth) }, button);
}

function choose(span) {
  for (const [id, button] of buttons) button.setAttribute("aria-pressed", String(id === span.span_id));
  detailEmpty.hidden = true;
  detailBody.hidden = false;
  detailBody.replaceChildren(...spanDetail(span));
  if (window.location.hash !== `#span-${span.span_id}`) window.history.replaceState(null, "", `#span-${span.span_id}`);
}

function spanDetail(span) {
  const facts = [
    [_("Status"), [SPAN_STATUS[span.status]?.() ?? span.status, span.status_message].filter(Boolean).join(" — ")],
    [_("Kind"), span.kind],
    [_("Process"), span.process || "—"],
    [_("Start"), preciseTime(span.start)],
    [_("Duration"), formatMs(span.duration_ms)],
    [_("From the trace's start"), formatMs(span.offset_ms)],
    [_("Span id"), span.span_id],
    [_("Parent span id"), span.parent_id || "—"],
  ];
  const attributes = Object.entries(span.attributes || {}).sort(([a], [b]) => a.localeCompare(b));
  return [
    el("h3", { class: "span-detail-name", text: span.name }),
    el(
      "dl",
      { class: span.status === "error" ? "span-facts error" : "span-facts" },
      ...facts.map(([term, value]) => el("div", {}, el("dt", { text: term }), el("dd", { text: value }))),
    ),
    el("h3", { text: _("Attributes") }),
    attributes.length
      ? el(
          "table",
          { class: "span-attributes" },
          el("caption", { class: "visually-hidden", text: format(_("Attributes of %(name)s"), { name: span.name }) }),
          el("thead", {}, el("tr", {}, el("th", { scope: "col", text: _("Name") }), el("th", { scope: "col", text: _("Value") }))),
          el("tbody", {}, ...attributes.map(([name, value]) => el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: typeof value === "string" ? value : JSON.stringify(value) })))),
        )
      : el("p", { class: "muted", text: _("No attributes.") }),
  ];
}

// Up and down move between the rows, as in a list.
waterfall.addEventListener("keydown", (event) => {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const all = [...buttons.values()];
  const at = all.indexOf(document.activeElement);
  if (at < 0) return;
  event.preventDefault();
  all[Math.min(all.length - 1, Math.max(0, at + (event.key === "ArrowDown" ? 1 : -1)))].focus();
});

async function load() {
  let trace;
  try {
    trace = await api(`/api/traces/${page.trace}`);
  } catch (error) {
    document.querySelector(".trace-layout").hidden = true;
    statusLine.textContent = error.status === 404 ? _("There is no such trace, or none you may see.") : errorText(error);
    return;
  }
  showSummary(trace);
  const total = Math.max(trace.duration_ms, ...trace.spans.map((span) => span.offset_ms + span.duration_ms), 0.001);
  drawAxis(total);
  const colours = drawLegend(trace.spans);
  waterfall.replaceChildren(...trace.spans.map((span) => spanRow(span, total, colours)));
  const going = trace.run && ACTIVE.has(trace.run.status);
  statusLine.textContent = !trace.spans.length
    ? _("This trace has no span.")
    : going ? _("The run is still going: load the page again for its later spans.") : "";
  statusLine.hidden = !statusLine.textContent;
  waterfall.dataset.ready = "true";
  const wanted = window.location.hash.startsWith("#span-") ? window.location.hash.slice(6) : "";
  const chosen = trace.spans.find((span) => span.span_id === wanted);
  if (chosen) {
    choose(chosen);
    buttons.get(chosen.span_id).scrollIntoView({ block: "center" });
  }
}

load();
