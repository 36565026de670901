// The app store: the apps I may see (GET /api/apps/), a start link on those I may use, the reason on the rest.
import { api, errorText } from "./api.js";
import { _, format, ngettext } from "./i18n.js";
import { el } from "./dom.js";

const grid = document.getElementById("store-apps");
const status = document.getElementById("store-status");
const filter = document.getElementById("store-filter");
const categorySelect = document.getElementById("store-category");
const knownCategories = new Set();

const GLYPHS = new URL("../glyphs.svg", import.meta.url).pathname;
const SVG = "http://www.w3.org/2000/svg";

function icon(app) {
  if (app.icon_url) return el("img", { class: "app-icon", src: app.icon_url, alt: "" });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "app-icon");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("data-glyph", app.glyph);
  const use = document.createElementNS(SVG, "use");
  use.setAttribute("href", `${GLYPHS}#glyph-${app.glyph || "bot"}`);
  svg.append(use);
  return svg;
}

function startAction(app) {
  if (app.usable && app.enabled) {
    return el("a", {
      class: "button primary",
      href: `/portal/apps/${encodeURIComponent(app.slug)}/new`,
      "data-start": app.slug,
      text: _("Start a conversation"),
    });
  }
  const reasonId = `reason-${app.slug}`;
  const reason = app.enabled
    ? _("You may see this app but not start it. Ask an administrator for access.")
    : _("This app is disabled.");
  return [
    el("button", { class: "button", type: "button", disabled: true, "aria-describedby": reasonId, "data-start": app.slug, text: _("Start a conversation") }),
    el("p", { class: "reason", id: reasonId, text: reason }),
  ];
}

// Only where I hold prompt.edit (the API says so per app): the page would be a 404 for anyone else.
function promptLink(app) {
  if (!app.prompt_editable) return null;
  return el("a", {
    class: "prompt-link",
    href: `/portal/apps/${encodeURIComponent(app.slug)}/prompts`,
    "data-prompts": app.slug,
    text: _("Prompt history"),
  });
}

function card(app) {
  const meta = el("div", { class: "meta" });
  if (app.category) meta.append(el("span", { class: "chip", text: app.category }));
  if (app.active_prompt_version !== null) {
    meta.append(el("span", { class: "chip", "data-prompt-version": app.active_prompt_version, text: format(_("prompt v%(n)s"), { n: app.active_prompt_version }) }));
  }
  for (const tag of app.tags || []) meta.append(el("span", { class: "chip", text: `#${tag}` }));
  return el(
    "li",
    { class: "card app-card", "data-app": app.slug },
    el("header", {}, icon(app), el("h2", { text: app.name })),
    el("p", { text: app.description || _("No description.") }),
    meta,
    el("div", { class: "actions" }, startAction(app), promptLink(app)),
  );
}

let latest = 0; // typing outruns the answers: only the last request's answer is shown

async function load() {
  const mine = ++latest;
  const query = new URLSearchParams({ page_size: "500" });
  const data = new FormData(filter);
  if (data.get("q")) query.set("q", data.get("q"));
  if (data.get("category")) query.set("category", data.get("category"));
  status.textContent = _("Loading…");
  try {
    const page = await api(`/api/apps/?${query}`);
    if (mine !== latest) return;
    grid.replaceChildren(...page.results.map(card));
    for (const app of page.results) {
      if (app.category && !knownCategories.has(app.category)) {
        knownCategories.add(app.category);
        categorySelect.append(el("option", { value: app.category, text: app.category }));
      }
    }
    status.textContent = page.results.length
      ? format(ngettext("%(n)s app", "%(n)s apps", page.count), { n: page.count })
      : _("No app matches.");
  } catch (error) {
    if (mine !== latest) return;
    status.textContent = errorText(error);
  }
}

let timer = 0;
filter.addEventListener("input", () => {
  window.clearTimeout(timer);
  timer = window.setTimeout(load, 200);
});
filter.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
load();
