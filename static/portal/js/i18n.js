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
