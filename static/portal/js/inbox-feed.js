// The questions waiting for me, live, shared by everything on the page (the header's count, the inbox page):
// one event stream per page, GET /api/human-loop/events, whose events are only hints; the list,
// GET /api/human-loop/pending?scope=mine, is the truth. It is read when the stream opens (and reopens) and
// after hints, a burst of hints costing one read. The server sends a hint of its own whenever it may have
// missed one, so a lost hint only delays an update.
import { api } from "./api.js";

const STREAM = "/api/human-loop/events";
const LIST = "/api/human-loop/pending?scope=mine&page_size=100";
const DEBOUNCE_MS = 150;
const RETRY_MAX_MS = 60_000;

const subscribers = new Set();
let state = null; // {count, items, error}: the last list read (and the last read's error)
let source = null;
let timer = 0;
let reading = false;
let readAgain = false;
let retryMs = 1000;

// callback(state) now (if the list was read already) and after every read; returns the unsubscribe function.
export function subscribe(callback) {
  subscribers.add(callback);
  if (state) callback(state);
  if (!source) connect();
  return () => subscribers.delete(callback);
}

// Read the list again now (after this page changed it, e.g. answered a question).
export function refresh() {
  schedule(0);
}

function connect() {
  source = new EventSource(STREAM);
  source.addEventListener("open", () => {
    retryMs = 1000;
    schedule(0);
  });
  source.addEventListener("inbox.changed", () => schedule(DEBOUNCE_MS));
  source.addEventListener("error", () => {
    // A dropped connection is retried by the EventSource itself (and "open" reads the list again); an HTTP
    // error (too many streams, signed out elsewhere) ends it for good: try again later, less and less often.
    if (source.readyState !== EventSource.CLOSED) return;
    source = null;
    window.setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  });
}

function schedule(delay) {
  window.clearTimeout(timer);
  timer = window.setTimeout(read, delay);
}

async function read() {
  if (reading) {
    readAgain = true; // the read in flight may predate the change: read once more after it
    return;
  }
  reading = true;
  try {
    const page = await api(LIST);
    publish({ count: page.count, items: page.results, error: null });
  } catch (error) {
    publish({ ...(state ?? { count: 0, items: [] }), error });
  } finally {
    reading = false;
    if (readAgain) {
      readAgain = false;
      read();
    }
  }
}

function publish(next) {
  state = next;
  for (const callback of subscribers) callback(state);
}
