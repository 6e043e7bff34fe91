// A functional test for the Node runner (clients/node), the counterpart of tests/python/filibuster_total.py.
//
// GET /total through front is 200 {"total": 6}; when a fault was injected on back, front may answer 503
// instead. testTotalOrZero compares GET /total-or-zero with the fault-free answer: front's 200 {"total": 0}
// under a fault is a fallback that hides back's failure. front's URL is FRONT_URL. The client is imported by
// its path here; a project that installed it (`npm install ./clients/node`) imports "cloture-client".

import assert from "node:assert/strict";

import { faultInjected, faultInjectedOn, matchesReference } from "../../../clients/node/index.mjs";

const FRONT = process.env.FRONT_URL ?? "http://127.0.0.1:7000";

async function get(path) {
  const response = await fetch(FRONT + path, { signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

export async function testTotal() {
  const { status, body } = await get("/total");
  if (await faultInjectedOn("back")) {
    assert.ok(status === 200 || status === 503, `unexpected answer under a fault on back: ${status} ${JSON.stringify(body)}`);
  } else {
    assert.ok(!(await faultInjected()), "a fault was injected, but not on back");
    assert.deepEqual({ status, body }, { status: 200, body: { total: 6 } }, `unexpected answer: ${status} ${JSON.stringify(body)}`);
  }
}

export async function testTotalOrZero() {
  const { status, body } = await get("/total-or-zero");
  if (status === 200) {
    assert.ok(await matchesReference("front:total", body), `200 ${JSON.stringify(body)}, not the fault-free answer`);
  } else {
    assert.ok(status === 503 && (await faultInjected()), `unexpected answer: ${status} ${JSON.stringify(body)}`);
  }
}
