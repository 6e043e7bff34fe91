// The Node runner's verdicts, one kind per execution (run against a scripted coordinator in
// tests/node_client.rs): execution 1 passes, 2 returns false, 3 throws a string, 4 rejects a promise outside
// the test's own chain, 5 fails an assertion on the oracle's answer for its own execution, 6 fetches from a
// closed port (the error is Node's own, its cause says why), 7 throws an Error of two lines.

import assert from "node:assert/strict";
import { createServer } from "node:net";

import { execution, faultInjected } from "../../../clients/node/index.mjs";

export default async function verdicts() {
  switch (execution()) {
    case "1":
      return undefined;
    case "2":
      return false;
    case "3":
      throw "a string, not an Error";
    case "4":
      setTimeout(() => Promise.reject(new RangeError("rejected in a timer")), 1);
      return new Promise((resolve) => setTimeout(resolve, 2000));
    case "5":
      assert.equal(await faultInjected(), false, "a fault was injected");
      return undefined;
    case "6":
      await fetch(`http://127.0.0.1:${await closedPort()}/`);
      return undefined;
    default:
      throw new Error(`line one\nline two of execution ${execution()}`);
  }
}

/** A port nothing listens on any more. */
async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
