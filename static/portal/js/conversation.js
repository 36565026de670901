// A conversation (a session): each run is a turn — my message, then what the agent streams — read from the
// API: the session (GET /api/sessions/{id}/), a finished run's events as JSON pages, an active run's over
// SSE (GET /api/runs/{id}/events). A message I send starts its run with POST /api/runs/start, whose response
// is already the run's event stream (one request, no gap between starting and listening). Events are applied
// in seq order and at most once (a run remembers the last seq it showed), so a reconnect — EventSource's
// own with Last-Event-ID, or ours after a drop — shows no duplicate and no gap.
import { api, ApiError, csrfToken, errorText } from "./api.js";
import { _, format, statusLabel } from "./i18n.js";
import { announce, el, pageData } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

const page = pageData();
const thread = document.getElementById("thread");
const connection = document.getElementById("connection");
const todosList = document.getElementById("todos");
const todosEmpty = document.getElementById("todos-empty");
const composer = document.getElementById("composer");
const ACTIVE = new Set(["queued", "running", "waiting_human"]);
const EVENT_TYPES = [
  "run.queued", "run.started", "run.finished", "message.delta", "message.stop", "tool.call", "tool.result",
  "todo.update", "human_loop.request", "human_loop.reply",
];
const runs = new Map();
let sessionId = page.session;

const seqOf = (eventId) => Number(String(eventId).split(":").pop());
const pretty = (value) => JSON.stringify(value, null, 2);

// The gateway's outcomes of a call (gateway.models.Outcome), in words.
const CALL_OUTCOMES = {
  ok: _("ok"),
  refused: _("refused"),
  invalid: _("invalid arguments"),
  rate_limited: _("rate limited"),
  error: _("failed"),
  timeout: _("timed out"),
};

class RunView {
  constructor(run) {
    this.id = run.id;
    this.status = run.status;
    this.lastSeq = 0;
    this.messages = new Map();
    this.tools = new Map();
    this.questions = new Map();
    this.source = null;
    this.statusText = el("span", { class: `status ${run.status}`, text: statusLabel(run.status) });
    this.cancelButton = el("button", {
      type: "button", class: "button small danger", hidden: true, text: _("Cancel run"),
      onclick: () => this.cancel(),
    });
    this.error = el("p", { class: "error", hidden: true });
    this.body = el("div", { class: "turn-body" });
    this.node = el(
      "li",
      { class: "turn", id: `run-${run.id}`, "data-run": run.id },
      el("div", { class: "bubble mine", text: messageOf(run.input) }),
      this.body,
      el("p", { class: "run-status" }, el("span", { text: _("Run:") }), this.statusText, this.cancelButton),
      this.error,
    );
    this.showStatus(run.status);
  }

  apply(type, data, seq) {
    if (seq <= this.lastSeq) return; // already shown: storage and live delivery overlap
    this.lastSeq = seq;
    const handler = HANDLERS[type];
    if (handler) handler(this, data);
  }

  showStatus(status, error) {
    this.status = status;
    this.statusText.className = `status ${status}`;
    this.statusText.textContent = statusLabel(status);
    this.cancelButton.hidden = !(page.mine && ACTIVE.has(status));
    if (error) {
      this.error.hidden = false;
      this.error.textContent = error;
    }
    updateComposer();
    if (page.operator && !ACTIVE.has(status) && !this.traceAsked) {
      this.traceAsked = true;
      this.linkTrace(this.live ? 2 : 0);
    }
    if (!ACTIVE.has(status) && this.tools.size && !this.auditAsked) {
      this.auditAsked = true;
      this.showToolAudit();
    }
  }

  // What the tool gateway recorded of each call (GET /api/runs/{id}/tool-calls): its outcome and time,
  // and for an operator a link to the call's span in the trace.
  async showToolAudit() {
    let calls = null;
    try {
      calls = await api(`/api/runs/${this.id}/tool-calls`);
    } catch (error) {
      return; // the cards already show the calls; the audit is extra
    }
    for (const call of calls.results) {
      const tool = this.tools.get(call.call_id);
      if (!tool || tool.audited) continue;
      tool.audited = true;
      const line = el("p", {
        class: "muted tool-audit",
        text: format(_("Gateway: %(outcome)s, HTTP %(status)s, %(ms)s ms"), {
          outcome: CALL_OUTCOMES[call.outcome] || call.outcome,
          status: call.status,
          ms: call.duration_ms.toFixed(1),
        }),
      });
      if (page.operator && call.trace_id && call.span_id) {
        const href = `/dashboard/traces/${call.trace_id}#span-${call.span_id}`;
        line.append(" · ", el("a", { href, text: _("Span") }));
      }
      tool.node.append(line);
    }
  }

  // An operator's finished run links to its waterfall, if the API has a trace for it (GET
  // /api/runs/{id}/trace). Spans are written in batches: a run seen finishing may have none stored yet.
  async linkTrace(retries) {
    try {
      const trace = await api(`/api/runs/${this.id}/trace`);
      this.statusText.parentNode.append(
        el("a", { class: "trace-link", href: `/dashboard/traces/${trace.trace_id}`, text: _("Trace") }),
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && retries > 0) {
        window.setTimeout(() => this.linkTrace(retries - 1), 3000);
      }
    }
  }

  message(id) {
    let message = this.messages.get(id);
    if (!message) {
      message = { text: "", node: el("div", { class: "bubble agent", "data-message": id }), pending: false };
      this.messages.set(id, message);
      this.body.append(message.node);
    }
    return message;
  }

  async cancel() {
    this.cancelButton.disabled = true;
    try {
      const run = await api(`/api/runs/${this.id}/cancel`, { method: "POST" });
      if (!ACTIVE.has(run.status)) this.showStatus(run.status);
    } catch (error) {
      announce(errorText(error));
      this.error.hidden = false;
      this.error.textContent = errorText(error);
    } finally {
      this.cancelButton.disabled = false;
    }
  }

  follow() {
    this.live = true;
    // EventSource reconnects by itself, sending Last-Event-ID. When it gives up (an HTTP error, or a long
    // outage), a new one resumes from the last seq shown.
    this.close();
    const resume = this.lastSeq ? `?lastEventId=${encodeURIComponent(`run-${this.id}:${this.lastSeq}`)}` : "";
    const source = new EventSource(`/api/runs/${this.id}/events${resume}`);
    this.source = source;
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (event) => {
        this.apply(type, JSON.parse(event.data), seqOf(event.lastEventId));
        if (type === "run.finished") this.close();
      });
    }
    source.addEventListener("open", () => connectionRestored());
    source.addEventListener("error", () => {
      if (this.source !== source) return;
      connectionLost();
      if (source.readyState === EventSource.CLOSED) window.setTimeout(() => this.source === source && this.follow(), 2000);
    });
  }

  close() {
    if (this.source) this.source.close();
    this.source = null;
  }

  // The stream POST /api/runs/start answered with, read as it arrives. If it ends before run.finished (a
  // dropped connection), the run is followed from the last seq shown.
  async readStart(response) {
    const controller = new AbortController();
    const reading = { close: () => controller.abort() };
    this.live = true;
    this.source = reading;
    let buffer = "";
    try {
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      controller.signal.addEventListener("abort", () => reader.cancel().catch(() => {}));
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          this.applyBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // aborted (offline, or the page closed the run) or cut: handled below
    }
    if (this.source !== reading) return;
    this.source = null;
    if (ACTIVE.has(this.status) && navigator.onLine) this.follow();
  }

  applyBlock(block) {
    let type = "message";
    let id = "";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (!id || !EVENT_TYPES.includes(type)) return; // stream-open, keep-alive
    this.apply(type, JSON.parse(data.join("\n")), seqOf(id));
  }

  async loadHistory() {
    let after = 0;
    for (;;) {
      const pageOfEvents = await api(`/api/runs/${this.id}/events?after=${after}&limit=1000`);
      for (const event of pageOfEvents.events) this.apply(event.type, event.data, event.seq);
      after = pageOfEvents.next_after;
      if (!pageOfEvents.has_more) return pageOfEvents.run_status;
    }
  }
}

const HANDLERS = {
  "run.queued": (run, data) => {
    run.showStatus("queued");
    adoptSession(data.session_id);
  },
  "run.started": (run) => run.showStatus("running"),
  "run.finished": (run, data) => {
    run.showStatus(data.status, data.error_detail || data.error?.message || data.error_class || "");
    for (const question of run.questions.values()) question.close();
    announce(format(_("The run finished: %(status)s."), { status: statusLabel(data.status) }));
  },
  "message.delta": (run, data) => {
    const message = run.message(data.message_id || "m");
    message.text += data.text || "";
    if (!message.pending) {
      message.pending = true; // one render per frame however fast deltas arrive
      window.requestAnimationFrame(() => {
        message.pending = false;
        renderMarkdown(message.node, message.text);
      });
    }
  },
  "message.stop": (run, data) => {
    const message = run.message(data.message_id || "m");
    message.node.dataset.complete = "true";
    announce(_("The agent's message is complete."));
  },
  "tool.call": (run, data) => {
    const output = el("pre", { class: "tool-result", text: _("Waiting for the result…") });
    const outcome = el("span", { class: "tool-outcome" });
    const node = el(
      "details",
      { class: "tool", "data-call": data.call_id },
      el("summary", {}, format(_("Tool call: %(name)s"), { name: data.name }), outcome),
      el("p", { class: "muted", text: _("Arguments") }),
      el("pre", { text: pretty(data.arguments ?? {}) }),
      el("p", { class: "muted", text: _("Result") }),
      output,
    );
    run.tools.set(data.call_id, { node, output, outcome });
    run.body.append(node);
  },
  "tool.result": (run, data) => {
    const tool = run.tools.get(data.call_id);
    if (!tool) return;
    const failed = data.ok === false;
    tool.output.textContent = failed ? `${_("Error")}: ${pretty(data.error)}` : pretty(data.result);
    tool.node.dataset.ok = String(!failed);
    tool.outcome.textContent = failed
      ? format(_("failed: %(code)s"), { code: (data.error && data.error.code) || _("error") })
      : _("done");
  },
  "todo.update": (_run, data) => showTodos(data.todos || []),
  "human_loop.request": (run, data) => {
    if (ACTIVE.has(run.status)) run.showStatus("waiting_human");
    const question = new Question(run, data);
    run.questions.set(data.request_id, question);
    run.body.append(question.node);
    if (question.form) announce(_("The agent is asking you a question."));
  },
  "human_loop.reply": (run, data) => {
    run.questions.get(data.request_id)?.answered(data.answer);
    if (run.status === "waiting_human" && ![...run.questions.values()].some((q) => q.form)) run.showStatus("running");
  },
};

class Question {
  constructor(run, data) {
    this.run = run;
    this.requestId = data.request_id;
    const id = `q-${run.id}-${String(data.request_id).replace(/\W/g, "_")}`;
    this.status = el("p", { class: "muted answer-status", role: "status" });
    this.node = el(
      "section",
      { class: "question", "aria-labelledby": `${id}-text`, "data-request": data.request_id },
      el("h3", { class: "visually-hidden", text: _("A question for you") }),
      el("p", { id: `${id}-text`, class: "question-text", text: data.question ?? pretty(data) }),
      this.status,
    );
    this.form = null;
    if (page.mine && ACTIVE.has(run.status)) this.buildForm(id, data.options || []);
  }

  buildForm(id, options) {
    const text = el("textarea", { id: `${id}-answer`, name: "answer", rows: 2, maxlength: 20000 });
    this.error = el("p", { class: "error", role: "alert" });
    const optionButtons = options.map((option) =>
      el("button", { type: "button", class: "button", "data-option": option, text: String(option), onclick: () => this.send(String(option)) }),
    );
    this.form = el(
      "form",
      { class: "answer-form", onsubmit: (event) => { event.preventDefault(); if (text.value.trim()) this.send(text.value); } },
      optionButtons.length ? el("div", { class: "options", role: "group", "aria-label": _("Answers the agent offered") }, optionButtons) : null,
      el("div", { class: "field" }, el("label", { for: text.id, text: _("Your answer") }), text),
      el("button", { type: "submit", class: "button primary", text: _("Answer") }),
      this.error,
    );
    this.node.append(this.form);
  }

  async send(answer) {
    for (const button of this.form.querySelectorAll("button")) button.disabled = true;
    try {
      await api("/api/human-loop/reply", { method: "POST", body: { request_id: this.requestId, run_id: this.run.id, answer } });
      this.answered(answer);
    } catch (error) {
      this.error.textContent = errorText(error);
      for (const button of this.form.querySelectorAll("button")) button.disabled = false;
    }
  }

  answered(answer) {
    this.node.classList.add("answered");
    this.status.textContent = format(_("Answered: %(answer)s"), { answer });
    this.close();
  }

  close() {
    this.form?.remove();
    this.form = null;
  }
}

function messageOf(input) {
  if (input && typeof input.message === "string") return input.message;
  return pretty(input ?? {});
}

const MARKS = { done: "✓", in_progress: "▶", pending: "○" };
function showTodos(todos) {
  todosEmpty.hidden = todos.length > 0;
  todosList.replaceChildren(
    ...todos.map((todo) =>
      el(
        "li",
        { class: todo.status, "data-todo": todo.id, "data-status": todo.status },
        el("span", { class: "mark", "aria-hidden": "true", text: MARKS[todo.status] ?? "○" }),
        el("span", { text: todo.title }),
        el("span", { class: "visually-hidden", text: ` (${todoStatus(todo.status)})` }),
      ),
    ),
  );
}
const todoStatus = (status) => ({ done: _("done"), in_progress: _("in progress"), pending: _("to do") })[status] ?? status;

// --- the connection's state, said once -------------------------------------------------------------------
let lost = false;
function connectionLost() {
  if (lost) return;
  lost = true;
  connection.hidden = false;
  connection.textContent = _("Connection lost. Reconnecting…");
  announce(connection.textContent);
}
function connectionRestored() {
  if (!lost) return;
  lost = false;
  connection.textContent = _("Reconnected.");
  announce(connection.textContent);
  window.setTimeout(() => (connection.hidden = lost), 3000);
}
// The browser knows before the socket does: an open stream over a network that went away can hang until TCP
// gives up. Offline closes the streams; online resumes each from the last seq it showed.
window.addEventListener("offline", () => {
  for (const run of runs.values()) run.close();
  connectionLost();
});
window.addEventListener("online", () => {
  for (const run of runs.values()) if (ACTIVE.has(run.status) && !run.source) run.follow();
});

// --- the composer ------------------------------------------------------------------------------------------
function updateComposer() {
  if (!composer) return;
  const busy = [...runs.values()].some((run) => ACTIVE.has(run.status));
  composer.dataset.busy = String(busy);
}

function adoptSession(id) {
  if (sessionId || !id) return;
  sessionId = id; // the first message made the session: this page is now its conversation
  window.history.replaceState(null, "", `/portal/sessions/${sessionId}`);
}

async function start(message, multitask) {
  const body = { app: page.app, input: { message }, multitask };
  if (sessionId) body.session_id = sessionId;
  const response = await fetch("/api/runs/start", {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "text/event-stream", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const view = addRun({ id: response.headers.get("X-Run-ID"), status: "queued", input: body.input });
  view.readStart(response);
  return view;
}

function setUpComposer() {
  if (!composer) return;
  const text = document.getElementById("composer-text");
  const error = document.getElementById("composer-error");
  const send = document.getElementById("composer-send");
  const queue = document.getElementById("composer-queue");
  const submit = async (multitask) => {
    const message = text.value.trim();
    if (!message) return;
    error.textContent = "";
    queue.hidden = true;
    send.disabled = true;
    try {
      await start(message, multitask);
      text.value = "";
    } catch (failure) {
      error.textContent = errorText(failure);
      // The session has a run in progress and refuses a second (its multitask rule): offer to queue it.
      if (failure instanceof ApiError && failure.status === 409 && failure.code === "run_active") queue.hidden = false;
    } finally {
      send.disabled = false;
      text.focus();
    }
  };
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submit("reject");
  });
  queue.addEventListener("click", () => submit("enqueue"));
  text.addEventListener("keydown", (event) => {
    // Never send while an input method is composing (Chinese, Japanese…): isComposing, and keyCode 229
    // for the IMEs that do not set it.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    composer.requestSubmit();
  });
  text.focus();
  composer.dataset.ready = "true"; // scripts attached: Enter sends
}

function addRun(run) {
  const view = new RunView(run);
  runs.set(run.id, view);
  thread.append(view.node);
  updateComposer();
  return view;
}

async function load() {
  if (!sessionId) return;
  const session = await api(`/api/sessions/${sessionId}/`);
  const views = session.runs.map(addRun);
  for (const view of views) {
    if (ACTIVE.has(view.status)) view.follow();
    else view.showStatus(await view.loadHistory());
  }
  if (window.location.hash) document.querySelector(window.location.hash)?.scrollIntoView();
}

setUpComposer();
load().catch((error) => {
  connection.hidden = false;
  connection.classList.add("error");
  connection.textContent = errorText(error);
});
