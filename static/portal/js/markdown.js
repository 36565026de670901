// Agent text as Markdown, rendered by marked and sanitised by DOMPurify before it touches the page: the only
// HTML the portal ever inserts. Links open in a new tab without access to this one.
import { marked } from "../../vendor/marked-18.2.1/marked.esm.js";

const purify = window.DOMPurify;
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});
marked.use({ gfm: true, breaks: true });

const SANITISE = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "img", "video", "audio", "iframe"],
  FORBID_ATTR: ["style", "class", "id"],
};

export function renderMarkdown(target, text) {
  target.innerHTML = purify.sanitize(marked.parse(text), SANITISE);
}
