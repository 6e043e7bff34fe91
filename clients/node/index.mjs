// Functional tests for cloture's fault exploration, in Node.js (no dependencies: Node's global `fetch`).
//
// cloture runs a functional test once per execution, each with other faults injected into the calls between
// services. The test tells a correct answer from a wrong one; these functions tell it what cloture did. They
// are async: each asks cloture's coordinator (docs/coordinator.md).
//
// - faultInjected(), faultInjectedOn(service), faultInjectedOnMethod(method): whether a fault was injected so
//   far in this execution (anywhere, into calls to `service`, into calls of a method: HTTP, or gRPC as
//   `package.Service/Method`). Ask after the system answered: services report before they answer.
// - matchesReference(name, value): whether `value` is what the same test saw without faults. In a fault-free
//   execution (the reference runs) it saves `value` under `name` and is true; under faults it compares with
//   what was saved. isReferenceRun(), saveReference(), reference() are the parts.
// - inExploration(), execution(): whether the test runs under cloture, and the execution's id.
//
// Outside an exploration (no CLOTURE_COORDINATOR) no fault is ever injected: the oracles are false, every run
// is fault-free, and matchesReference is true. A coordinator that cannot be reached during an exploration
// rejects with CoordinatorError: the test fails, and cloture says so. The persistent runner is runner.mjs
// (`cloture-runner`).

import { isDeepStrictEqual } from "node:util";

import { CoordinatorError, ask, coordinatorUrl, executionId, refusal } from "./coordinator.mjs";

export { CoordinatorError };

/** No fault-free execution saved a value under this name, or two saved different values. */
export class NoReference extends Error {
  constructor(message) {
    super(message);
    this.name = "NoReference";
  }
}

/** Whether this test runs inside one of cloture's executions. */
export function inExploration() {
  return coordinatorUrl() !== null && executionId() !== null;
}

/** The id of the execution this test runs in (`null` outside an exploration). */
export function execution() {
  return inExploration() ? executionId() : null;
}

async function injected(query) {
  if (!inExploration()) {
    return false;
  }
  const { status, body } = await ask("GET", `/v1/executions/${executionId()}/injected${query}`);
  if (status !== 200) {
    throw new CoordinatorError(`cannot ask whether a fault was injected: ${refusal(status, body)}`);
  }
  return Boolean(body.injected);
}

/** Whether a fault was injected anywhere in this execution so far. */
export function faultInjected() {
  return injected("");
}

/** Whether a fault was injected into a call to `service` (its name in the services file) so far. */
export function faultInjectedOn(service) {
  return injected(`?service=${encodeURIComponent(service)}`);
}

/** Whether a fault was injected into a call with HTTP method `method` (any case), to `service` when given. */
export function faultInjectedOnMethod(method, service) {
  let query = `?method=${encodeURIComponent(method)}`;
  if (service !== undefined && service !== null) {
    query += `&service=${encodeURIComponent(service)}`;
  }
  return injected(query);
}

/**
 * Whether this execution has no fault planned: a reference run (or a fault-free run outside an exploration),
 * whose answers are the ones to compare with.
 */
export async function isReferenceRun() {
  if (!inExploration()) {
    return true;
  }
  const { status, body } = await ask("GET", `/v1/executions/${executionId()}`);
  if (status !== 200) {
    throw new CoordinatorError(`cannot ask about the execution: ${refusal(status, body)}`);
  }
  return Boolean(body.fault_free);
}

// `value` as it reads back from JSON: what is saved and compared.
function asJson(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`a reference value must be JSON: ${error.message}`);
  }
  if (text === undefined) {
    throw new TypeError(`a reference value must be JSON (objects, arrays, strings, numbers, booleans, null)`);
  }
  return JSON.parse(text);
}

// A reference name for the path: its valid characters as they are, anything else encoded (and refused).
function referencePath(name) {
  return `/v1/executions/${executionId()}/references/${encodeURIComponent(name).replace(/%3A/gi, ":")}`;
}

/**
 * Saves `value` (JSON) under `name` in a fault-free execution; the first value saved stays. Name: 1 to 128
 * letters, digits, `-`, `_`, `.` or `:`. Outside an exploration it does nothing.
 */
export async function saveReference(name, value) {
  const json = asJson(value);
  if (!inExploration()) {
    return;
  }
  const { status, body } = await ask("PUT", referencePath(name), json);
  if (status !== 204) {
    throw new CoordinatorError(`cannot save reference value ${JSON.stringify(name)}: ${refusal(status, body)}`);
  }
}

/**
 * The value a fault-free execution saved under `name`; rejects with NoReference when none did, or when two
 * fault-free executions saved different values (the system is not deterministic there).
 */
export async function reference(name) {
  if (!inExploration()) {
    throw new NoReference(`no reference value ${JSON.stringify(name)}: not in an exploration`);
  }
  const { status, body } = await ask("GET", referencePath(name));
  if (status === 200) {
    return body.value;
  }
  if (status === 404 || status === 409) {
    throw new NoReference(refusal(status, body));
  }
  throw new CoordinatorError(`cannot read reference value ${JSON.stringify(name)}: ${refusal(status, body)}`);
}

/**
 * In a fault-free execution: saves `value` under `name` and is true. Under faults: whether `value` equals
 * what was saved (as JSON, whatever the order of keys). NoReference when nothing comparable was saved.
 */
export async function matchesReference(name, value) {
  if (await isReferenceRun()) {
    await saveReference(name, value);
    return true;
  }
  return isDeepStrictEqual(asJson(value), await reference(name));
}
