// Talking to cloture's coordinator: JSON over HTTP/1.1 on loopback, with Node's global `fetch`, whose
// connections are kept alive between requests.
//
// The coordinator's URL comes from CLOTURE_COORDINATOR (set by `cloture explore` for the test command and the
// runner); only loopback URLs are used, as the services do. The execution's id comes from CLOTURE_EXECUTION
// (set by cloture for a test command, and by the runner before each execution). Both are read at every
// request, so a runner that changes CLOTURE_EXECUTION changes what the oracles answer for.

export const COORDINATOR_ENV = "CLOTURE_COORDINATOR";
export const EXECUTION_ENV = "CLOTURE_EXECUTION";

// How long a request waits for its answer, unless told otherwise.
const TIMEOUT_MS = 10_000;
const LOOPBACK = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}$/i;

/** The coordinator could not be reached, or refused a request (its `error` message is in the text). */
export class CoordinatorError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "CoordinatorError";
  }
}

/** `http://127.0.0.1:PORT` from the environment, or `null` outside an exploration. */
export function coordinatorUrl() {
  const url = (process.env[COORDINATOR_ENV] ?? "").trim().replace(/\/+$/, "");
  return url === "" ? null : url;
}

/** The id of the execution this test runs in, or `null` outside an exploration. */
export function executionId() {
  const execution = (process.env[EXECUTION_ENV] ?? "").trim();
  return execution === "" ? null : execution;
}

/** Why `url` is not a coordinator's URL (`null` when it is one). */
export function badUrl(url) {
  if (LOOPBACK.test(url)) {
    return null;
  }
  return `${COORDINATOR_ENV} must be a loopback URL such as http://127.0.0.1:PORT, not ${JSON.stringify(url)}`;
}

// The network error under fetch's "fetch failed", in words: "connect ECONNREFUSED 127.0.0.1:9".
function networkError(error) {
  const cause = error?.cause;
  return cause?.message || cause?.code || error?.message || String(error);
}

/**
 * One request to the coordinator at `url`: its status and its JSON body (`null` when empty). A request whose
 * connection failed is sent once more on a new one (a kept connection the coordinator closed as idle); then
 * it is a `CoordinatorError`.
 */
export async function request(url, method, path, { body, timeoutMs = TIMEOUT_MS } = {}) {
  const refused = badUrl(url);
  if (refused !== null) {
    throw new CoordinatorError(refused);
  }
  const init = { method };
  if (body !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  let failure;
  for (let attempt = 1; attempt <= 2; attempt++) {
    let response;
    let text;
    try {
      response = await fetch(url + path, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      text = await response.text();
    } catch (error) {
      if (error?.name === "TimeoutError") {
        throw new CoordinatorError(`the coordinator at ${url} did not answer ${method} ${path} in ${timeoutMs} ms`);
      }
      failure = error;
      continue;
    }
    return { status: response.status, body: parse(text, url) };
  }
  throw new CoordinatorError(`the coordinator at ${url} cannot be reached: ${networkError(failure)}`, {
    cause: failure,
  });
}

function parse(text, url) {
  if (text === "") {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CoordinatorError(`the coordinator at ${url} answered something that is not JSON: ${text.slice(0, 200)}`);
  }
}

/** One request to the coordinator of the environment. */
export async function ask(method, path, body) {
  const url = coordinatorUrl();
  if (url === null) {
    throw new CoordinatorError(`not in an exploration: ${COORDINATOR_ENV} is not set`);
  }
  return request(url, method, path, { body });
}

/** The coordinator's error message of a refused request. */
export function refusal(status, body) {
  return typeof body?.error === "string" ? `${status}: ${body.error}` : String(status);
}
