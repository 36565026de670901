// Django's JavaScript catalog (jsi18n/, loaded by base.html) defines gettext, ngettext and interpolate.
export const _ = (text) => (window.gettext ? window.gettext(text) : text);
export const ngettext = (one, many, n) => (window.ngettext ? window.ngettext(one, many, n) : n === 1 ? one : many);
// interpolate(_("%(name)s is here"), {name}) with named placeholders.
export const format = (text, values) =>
  window.interpolate ? window.interpolate(text, values, true) : text.replace(/%\((\w+)\)s/g, (_m, k) => values[k]);

export function formatDate(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(document.documentElement.lang || undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

const STATUS = {
  queued: () => _("queued"),
  running: () => _("running"),
  waiting_human: () => _("waiting for you"),
  succeeded: () => _("succeeded"),
  failed: () => _("failed"),
  cancelled: () => _("cancelled"),
  timed_out: () => _("timed out"),
};
export const statusLabel = (status) => (STATUS[status] ? STATUS[status]() : status);

// A number in the page's language, with at most `digits` decimals.
const number = (value, digits) =>
  new Intl.NumberFormat(document.documentElement.lang || undefined, { maximumFractionDigits: digits }).format(value);

// A duration given in milliseconds (a span, a trace): milliseconds under a second, then seconds, minutes.
export function formatMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return "—";
  if (ms < 1000) return format(_("%(ms)s ms"), { ms: number(ms, ms < 10 ? 2 : 1) });
  if (ms < 60_000) return format(_("%(s)s s"), { s: number(ms / 1000, 2) });
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return format(_("%(m)s min %(s)s s"), { m: Math.floor(seconds / 60), s: seconds % 60 });
  return format(_("%(h)s h %(m)s min"), { h: Math.floor(seconds / 3600), m: Math.floor((seconds % 3600) / 60) });
}

// A size in bytes, in decimal units (1 KB = 1,000 bytes); the units read the same in both languages.
export function formatSize(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${number(value, unit === 0 || value >= 100 ? 0 : 1)} ${units[unit]}`;
}

const AGENT_STATE = {
  unknown: () => _("unknown"),
  idle: () => _("idle"),
  busy: () => _("busy"),
  waiting_input: () => _("waiting for input"),
  error: () => _("error"),
  offline: () => _("offline"),
};
export const agentStateLabel = (state) => (AGENT_STATE[state] ? AGENT_STATE[state]() : state);
