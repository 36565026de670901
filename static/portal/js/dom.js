// Building the page from data: text always goes in as text (never as HTML), so nothing an agent or a user
// wrote can become markup. The one exception is markdown.js, whose HTML is sanitised first.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const pageData = (id = "page-data") => JSON.parse(document.getElementById(id)?.textContent || "null");

// Screen readers hear this (an assertive live region in base.html): completed messages, errors, reconnects.
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => (region.textContent = text), 30);
}
