// An app's prompt history (/api/apps/{slug}/prompts/...): the versions, one version's text and its diff,
// activating a version (a rollback when it is older) with a reason, the activations, saving a new version.
import { api, errorText } from "./api.js";
import { _, format, formatDate } from "./i18n.js";
import { announce, el, pageData } from "./dom.js";

const PAGE_SIZE = 20;
const { app } = pageData();
const base = `/api/apps/${encodeURIComponent(app)}/prompts/`;
const $ = (id) => document.getElementById(id);
const status = $("prompts-status");
const detail = $("version-detail");
const againstSelect = $("diff-against");
let versionsPage = 1;
let latest = 0;
let shown = null;

function versionRow(version) {
  const pick = el("button", {
    type: "button",
    class: "button small",
    "aria-pressed": String(shown?.number === version.number),
    "data-version": version.number,
    onclick: () => show(version.number),
    text: format(_("v%(n)s"), { n: version.number }),
  });
  return el(
    "tr",
    { class: version.active ? "active-version" : "" },
    el("td", {}, pick),
    el("td", { text: version.author || _("(unknown)") }),
    el("td", {}, el("time", { datetime: version.created_at, text: formatDate(version.created_at) })),
    el("td", { text: version.message }),
    el("td", {}, version.active ? el("span", { class: "chip active-chip", text: _("active") }) : ""),
  );
}

async function loadVersions() {
  const data = await api(`${base}?page=${versionsPage}&page_size=${PAGE_SIZE}`);
  if (versionsPage === 1) latest = data.results[0]?.number ?? 0;
  $("versions-rows").replaceChildren(...data.results.map(versionRow));
  $("versions-previous").disabled = !data.previous;
  $("versions-next").disabled = !data.next;
  const pages = Math.max(1, Math.ceil(data.count / PAGE_SIZE));
  $("versions-page").textContent = format(_("Page %(page)s of %(pages)s"), { page: versionsPage, pages });
  return data;
}

function diffLines(diff) {
  if (!diff) return [el("span", { class: "muted", text: _("No difference.") })];
  return diff.split("\n").map((line) => {
    let kind = "ctx";
    if (line.startsWith("+++") || line.startsWith("---")) kind = "meta";
    else if (line.startsWith("@@")) kind = "hunk";
    else if (line.startsWith("+")) kind = "add";
    else if (line.startsWith("-")) kind = "del";
    return el("span", { class: kind, text: line });
  });
}

function fillAgainst(selected) {
  const options = [];
  for (let n = latest; n >= 1; n -= 1) {
    options.push(el("option", { value: n, selected: n === selected, text: format(_("v%(n)s"), { n }) }));
  }
  againstSelect.replaceChildren(...options);
}

let showing = 0; // a quicker second choice wins over a slower first answer

async function show(number, against = null) {
  const mine = ++showing;
  const query = against ? `?against=${against}` : "";
  const version = await api(`${base}${number}/${query}`);
  if (mine !== showing) return;
  shown = version;
  detail.hidden = false;
  $("detail-heading").textContent = format(_("Version %(n)s"), { n: version.number });
  $("detail-meta").textContent = format(_("Saved by %(who)s on %(when)s. %(state)s"), {
    who: version.author || _("(unknown)"),
    when: formatDate(version.created_at),
    state: version.active ? _("This is the active version.") : _("This version is not active."),
  });
  $("detail-text").textContent = version.text;
  fillAgainst(version.against);
  $("diff-heading").textContent = version.against
    ? format(_("Changes from v%(from)s to v%(to)s"), { from: version.against, to: version.number })
    : _("Changes");
  $("detail-diff").replaceChildren(...diffLines(version.diff));
  $("activate-form").hidden = version.active;
  $("activate-error").textContent = "";
  for (const button of document.querySelectorAll("[data-version]")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.version) === number));
  }
}

function activationRow(move) {
  return el(
    "tr",
    {},
    el("td", {}, el("time", { datetime: move.created_at, text: formatDate(move.created_at) })),
    el("td", { text: format(_("v%(n)s"), { n: move.version }) }),
    el("td", { text: move.previous ? format(_("v%(n)s"), { n: move.previous }) : "—" }),
    el("td", { text: move.activated_by || _("(unknown)") }),
    el("td", { text: move.reason }),
  );
}

async function loadActivations() {
  const data = await api(`${base}activations/?page_size=${PAGE_SIZE}`);
  $("activations-rows").replaceChildren(...data.results.map(activationRow));
}

async function refresh(number) {
  const versions = await loadVersions();
  await loadActivations();
  const active = versions.results.find((version) => version.active);
  const target = number ?? shown?.number ?? active?.number ?? versions.results[0]?.number;
  if (target) await show(target);
  status.textContent = versions.count ? "" : _("This app has no prompt yet: save its first version below.");
}

$("activate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const reason = $("activate-reason").value.trim();
  if (!reason) {
    $("activate-error").textContent = _("Give a reason for activating this version.");
    $("activate-reason").focus();
    return;
  }
  const number = shown.number;
  try {
    await api(`${base}${number}/activate`, { method: "POST", body: { reason } });
    $("activate-reason").value = "";
    await refresh(number);
    const done = format(_("Version %(n)s is now active."), { n: number });
    status.textContent = done;
    announce(done);
  } catch (error) {
    $("activate-error").textContent = errorText(error);
  }
});

$("new-version-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { text: $("new-text").value, message: $("new-note").value };
  try {
    const version = await api(base, { method: "POST", body });
    event.target.reset();
    $("new-error").textContent = "";
    versionsPage = 1;
    await refresh(version.number);
    const done = format(_("Version %(n)s saved."), { n: version.number });
    status.textContent = done;
    announce(done);
  } catch (error) {
    $("new-error").textContent = errorText(error);
  }
});

againstSelect.addEventListener("change", () => show(shown.number, againstSelect.value));
$("versions-previous").addEventListener("click", () => {
  versionsPage = Math.max(1, versionsPage - 1);
  loadVersions().catch((error) => (status.textContent = errorText(error)));
});
$("versions-next").addEventListener("click", () => {
  versionsPage += 1;
  loadVersions().catch((error) => (status.textContent = errorText(error)));
});

refresh().catch((error) => (status.textContent = errorText(error)));
