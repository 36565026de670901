// The file browser: the roots I may list, then a root's folders page by page (GET /api/files/...), with
// a preview of text (the first 256 KiB, as text) and of images. The root, the folder and the page cursor
// live in the query string, so reload and back keep them.
import { api, errorText } from "./api.js";
import { _, format, formatDate, formatSize } from "./i18n.js";
import { el } from "./dom.js";

const PAGE = 200;
const PREVIEW_BYTES = 256 * 1024;
const IMAGE = /\.(png|jpe?g|gif|webp|avif|bmp)$/i;
const TEXT = /\.(txt|md|csv|tsv|log|json|ya?ml|toml|ini|cfg|xml|html?|py|js|css|sh|sql)$/i;

const crumbs = document.getElementById("files-crumbs");
const statusLine = document.getElementById("files-status");
const rootsList = document.getElementById("files-roots");
const listing = document.getElementById("files-listing");
const rows = document.getElementById("files-rows");
const first = document.getElementById("files-first");
const next = document.getElementById("files-next");
const preview = document.getElementById("files-preview");
const previewTitle = document.getElementById("files-preview-title");
const previewNote = document.getElementById("files-preview-note");
const previewText = document.getElementById("files-preview-text");
const previewImage = document.getElementById("files-preview-image");
const previewDownload = document.getElementById("files-preview-download");
let nextCursor = null;

const state = () => {
  const query = new URLSearchParams(window.location.search);
  return { root: query.get("root") || "", path: query.get("path") || "", after: query.get("after") || "" };
};

function go(values, { replace = false } = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value) query.set(name, value);
  const url = `${window.location.pathname}${query.size ? `?${query}` : ""}`;
  window.history[replace ? "replaceState" : "pushState"](null, "", url);
  show();
}

const fileUrl = (action, root, path, extra = {}) =>
  `/api/files/${encodeURIComponent(root)}/${action}?${new URLSearchParams({ path, ...extra })}`;

function link(text, values) {
  const query = new URLSearchParams(Object.entries(values).filter(([, v]) => v));
  return el("a", {
    href: `?${query}`,
    text,
    onclick: (event) => {
      event.preventDefault();
      go(values);
    },
  });
}

function drawCrumbs({ root, path }) {
  const items = [el("li", {}, root ? link(_("All roots"), {}) : el("span", { "aria-current": "page", text: _("All roots") }))];
  if (root) {
    const parts = path ? path.split("/") : [];
    const trail = [root, ...parts];
    trail.forEach((name, index) => {
      const last = index === trail.length - 1;
      const target = { root, path: parts.slice(0, index).join("/") };
      items.push(el("li", {}, last ? el("span", { "aria-current": "page", text: name }) : link(name, target)));
    });
  }
  crumbs.replaceChildren(...items);
}

async function showRoots() {
  listing.hidden = true;
  const { roots } = await api("/api/files/roots");
  rootsList.replaceChildren(
    ...roots.map((root) =>
      el("li", { class: "card" }, el("h2", {}, link(root.name, { root: root.name })), el("p", { class: "muted", text: root.description || "" })),
    ),
  );
  rootsList.hidden = roots.length === 0;
  statusLine.textContent = roots.length ? "" : _("No file roots are shared with you.");
}

function entryRow(root, entry) {
  let name;
  if (entry.type === "directory") name = link(`${entry.name}/`, { root, path: entry.path });
  else name = el("span", { text: entry.type === "symlink" ? `${entry.name} →` : entry.name });
  const kind = { directory: _("folder"), file: _("file"), symlink: _("link (not followed)"), other: _("special file") }[entry.type];
  const actions = el("td", { class: "actions" });
  if (entry.readable) {
    const previewable = IMAGE.test(entry.name) || TEXT.test(entry.name);
    if (previewable) {
      actions.append(
        el("button", {
          type: "button",
          class: "button",
          text: _("Preview"),
          "aria-label": format(_("Preview %(name)s"), { name: entry.name }),
          onclick: () => openPreview(root, entry),
        }),
        " ",
      );
    }
    actions.append(
      el("a", {
        class: "button",
        href: fileUrl("download", root, entry.path),
        download: entry.name,
        text: _("Download"),
        "aria-label": format(_("Download %(name)s"), { name: entry.name }),
      }),
    );
  }
  return el(
    "tr",
    { "data-type": entry.type },
    el("td", {}, el("span", { class: `file-kind file-kind-${entry.type}`, role: "img", title: kind, "aria-label": kind }), " ", name),
    el("td", { text: entry.type === "file" ? formatSize(entry.size) : "—" }),
    el("td", {}, el("time", { datetime: entry.mtime, text: formatDate(entry.mtime) })),
    actions,
  );
}

async function showFolder({ root, path, after }) {
  rootsList.hidden = true;
  const page = await api(fileUrl("list", root, path, { limit: String(PAGE), ...(after ? { after } : {}) }));
  rows.replaceChildren(...page.entries.map((entry) => entryRow(root, entry)));
  listing.hidden = false;
  nextCursor = page.next;
  next.hidden = !page.next;
  first.hidden = !after;
  statusLine.textContent = page.entries.length ? "" : _("This folder is empty (or holds nothing you may see).");
}

async function openPreview(root, entry) {
  preview.hidden = false;
  previewTitle.textContent = entry.name;
  previewDownload.href = fileUrl("download", root, entry.path);
  previewText.hidden = previewImage.hidden = true;
  previewNote.textContent = _("Loading…");
  const url = fileUrl("download", root, entry.path, { disposition: "inline" });
  if (IMAGE.test(entry.name)) {
    previewImage.alt = entry.name;
    previewImage.src = url;
    previewImage.hidden = false;
    previewNote.textContent = formatSize(entry.size);
    return;
  }
  try {
    const response = await fetch(url, { credentials: "same-origin", headers: { Range: `bytes=0-${PREVIEW_BYTES - 1}` } });
    if (!response.ok && response.status !== 206) throw new Error(format(_("The preview failed (HTTP %(status)s)."), { status: response.status }));
    const bytes = new Uint8Array(await response.arrayBuffer());
    previewText.textContent = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
    previewText.hidden = false;
    previewNote.textContent =
      entry.size > bytes.length
        ? format(_("The first %(shown)s of %(size)s; download the file for the rest."), { shown: formatSize(bytes.length), size: formatSize(entry.size) })
        : formatSize(entry.size);
  } catch (error) {
    previewNote.textContent = errorText(error);
  }
  previewTitle.focus?.();
}

function closePreview() {
  preview.hidden = true;
  previewImage.removeAttribute("src");
  previewText.textContent = "";
}

async function show() {
  const current = state();
  closePreview();
  drawCrumbs(current);
  statusLine.textContent = _("Loading…");
  try {
    if (current.root) await showFolder(current);
    else await showRoots();
  } catch (error) {
    listing.hidden = true;
    rootsList.hidden = true;
    statusLine.textContent = error.status === 404 ? _("Not found, or not shared with you.") : errorText(error);
  }
}

next.addEventListener("click", () => {
  const current = state();
  if (nextCursor) go({ ...current, after: nextCursor });
});
first.addEventListener("click", () => go({ ...state(), after: "" }));
document.getElementById("files-preview-close").addEventListener("click", closePreview);
previewTitle.tabIndex = -1;
window.addEventListener("popstate", show);
show();
