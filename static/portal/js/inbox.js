// The inbox: the questions my runs are waiting on me for, live (inbox-feed.js), each answerable here with
// its options or a free-text answer (POST /api/human-loop/reply with the list's request_id).
import { subscribe, refresh } from "./inbox-feed.js";
import { api, errorText } from "./api.js";
import { _, format, ngettext, formatDate } from "./i18n.js";
import { el, announce } from "./dom.js";

const list = document.getElementById("inbox-items");
const status = document.getElementById("inbox-status");
const errorBox = document.getElementById("inbox-error");
const TICK_MS = 15_000;
const nodes = new Map(); // request_id -> its <li>, kept across reads so a half-typed answer survives
const answeredHere = new Set(); // hidden at once, even if a read that started before the answer lists them

function duration(seconds) {
  const lang = document.documentElement.lang || undefined;
  const [value, unit] =
    seconds < 3600 ? [Math.floor(seconds / 60), "minute"] : seconds < 172_800 ? [Math.floor(seconds / 3600), "hour"] : [Math.floor(seconds / 86_400), "day"];
  return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "long" }).format(value);
}

function waitedText(createdAt) {
  const seconds = (Date.now() - Date.parse(createdAt)) / 1000;
  if (seconds < 60) return _("Waiting for less than a minute");
  return format(_("Waiting for %(duration)s"), { duration: duration(seconds) });
}

function optionValue(option) {
  if (option && typeof option === "object") return String(option.value ?? option.label ?? JSON.stringify(option));
  return String(option);
}

function optionLabel(option) {
  if (option && typeof option === "object") return String(option.label ?? option.value ?? JSON.stringify(option));
  return String(option);
}

function item(question) {
  const id = question.request_id;
  const alert = el("p", { class: "error", role: "alert" });
  const controls = [];
  const send = async (answer) => {
    alert.textContent = "";
    for (const control of controls) control.disabled = true;
    try {
      await api("/api/human-loop/reply", { method: "POST", body: { request_id: id, answer } });
      answeredHere.add(id);
      node.remove();
      nodes.delete(id);
      announce(_("Answer sent."));
      refresh();
    } catch (error) {
      alert.textContent = errorText(error);
      for (const control of controls) control.disabled = false;
      if (error.status === 404 || error.status === 409) refresh(); // answered or ended elsewhere
    }
  };
  const options = (question.options || []).map((option) =>
    el("button", { class: "button", type: "button", "data-option": optionValue(option), onclick: () => send(optionValue(option)), text: optionLabel(option) }),
  );
  controls.push(...options);
  const fieldId = `answer-${id}`;
  const textarea = el("textarea", { id: fieldId, name: "answer", rows: "2", maxlength: "20000", required: true });
  const submit = el("button", { class: "button primary", type: "submit", text: _("Send answer") });
  controls.push(textarea, submit);
  const form = el(
    "form",
    {
      class: "inbox-answer",
      onsubmit: (event) => {
        event.preventDefault();
        if (textarea.value.trim()) send(textarea.value);
      },
    },
    el("div", { class: "field" }, el("label", { for: fieldId, text: _("Your answer") }), textarea),
    submit,
  );
  const time = el("time", { class: "waited", datetime: question.created_at, title: formatDate(question.created_at), text: waitedText(question.created_at) });
  const node = el(
    "li",
    { class: "card inbox-item", "data-request": id, "data-run": question.run_id },
    el("header", {}, el("h2", { text: question.app?.name || question.app?.slug || "" }), time),
    el("p", { class: "inbox-question", text: question.question }),
    options.length ? el("div", { class: "options", role: "group", "aria-label": _("Answer with an option") }, options) : null,
    form,
    alert,
    el("a", { href: `/portal/sessions/${encodeURIComponent(question.session_id)}#run-${encodeURIComponent(question.run_id)}`, text: _("Open the conversation") }),
  );
  return node;
}

function show({ count = 0, items = [], error }) {
  errorBox.hidden = !error;
  errorBox.textContent = error ? errorText(error) : "";
  const waiting = items.filter((question) => !answeredHere.has(question.request_id));
  const keep = new Set(waiting.map((question) => question.request_id));
  for (const [id, node] of nodes) {
    if (!keep.has(id)) {
      node.remove();
      nodes.delete(id);
    }
  }
  waiting.forEach((question, index) => {
    let node = nodes.get(question.request_id);
    if (!node) {
      node = item(question);
      nodes.set(question.request_id, node);
    }
    if (list.children[index] !== node) list.insertBefore(node, list.children[index] ?? null);
  });
  const total = Math.max(0, count - (items.length - waiting.length));
  let text = total
    ? format(ngettext("%(n)s question is waiting for you.", "%(n)s questions are waiting for you.", total), { n: total })
    : _("No questions are waiting for you.");
  if (total > waiting.length) text += " " + format(_("Showing the oldest %(shown)s."), { shown: waiting.length });
  status.textContent = text;
}

window.setInterval(() => {
  for (const time of list.querySelectorAll("time.waited")) time.textContent = waitedText(time.getAttribute("datetime"));
}, TICK_MS);

subscribe(show);
