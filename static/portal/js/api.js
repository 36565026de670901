// The project's own API, as the portal calls it: the session cookie, the CSRF token on every write, and the
// one error shape ({"error": {"code", "message", "detail"}}) turned into an ApiError.
export const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.detail = error.detail ?? null;
  }
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// The message to show; for invalid input, with the first field's complaint.
export function errorText(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  const detail = error.detail;
  if (error.code === "invalid" && detail && typeof detail === "object" && !Array.isArray(detail)) {
    const first = Object.values(detail).flat()[0];
    if (typeof first === "string" && first !== error.message) return `${error.message} ${first}`;
  }
  return error.message;
}
