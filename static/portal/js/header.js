// The header's live parts on every signed-in page: the count of questions waiting for me (inbox-feed.js).
import { subscribe } from "./inbox-feed.js";
import { format, ngettext } from "./i18n.js";
import { el } from "./dom.js";

const badge = document.getElementById("inbox-count");

function show({ count = 0 }) {
  badge.hidden = !count;
  badge.dataset.count = String(count);
  // The number is for the eye; a screen reader hears the link as "Inbox, 3 questions waiting".
  badge.replaceChildren(
    el("span", { "aria-hidden": "true", text: count > 99 ? "99+" : String(count) }),
    el("span", {
      class: "visually-hidden",
      text: format(ngettext("%(n)s question waiting", "%(n)s questions waiting", count), { n: count }),
    }),
  );
}

if (badge) {
  badge.removeAttribute("aria-label"); // a label on a plain span is not announced: the hidden text is
  subscribe(show);
}
