#!/usr/bin/env node
// The persistent test runner: `node runner.mjs TEST [TEST ...]` (`cloture-runner` once installed), for
// `cloture explore --runner`.
//
// The test process starts once; for each execution cloture offers, the runner runs the test functions and posts
// their verdict (protocol: docs/runner.md). That saves starting Node and importing the test per execution.
// TEST is `FILE.mjs:FUNCTION` (an exported function, async or not); without `:FUNCTION`, the default export
// when it is a function, else every exported function whose name starts with `test`, in the order of their
// names. The file is imported once.
//
// A test passes when it returns (anything but `false`) or its promise resolves; it fails when it throws, its
// promise rejects, or it returns `false`. An error thrown or a promise rejected outside the test's own chain
// (in a timer, an event handler) while the test runs fails it too. Inside each execution CLOTURE_EXECUTION is
// set to its id, so the oracles of `index.mjs` answer for it.
//
// The runner exits 0 when cloture says the exploration is over, 2 when it cannot start (no CLOTURE_COORDINATOR,
// a test that cannot be loaded), and 1 when the coordinator goes away.

import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { inspect } from "node:util";

import { CoordinatorError, EXECUTION_ENV, badUrl, coordinatorUrl, refusal, request } from "./coordinator.mjs";

const PROG = "cloture-runner";
const USAGE = `usage: ${PROG} TEST [TEST ...]   (TEST: FILE.mjs[:EXPORTED_FUNCTION]; started by cloture explore --runner)`;
// The coordinator answers a poll within 20 s; a read waits longer than that.
const POLL_TIMEOUT_MS = 60_000;
// A failure message is cut to this many characters (cloture keeps 1 KiB); the error's text to fewer, so that
// where it was thrown stays in.
const MESSAGE_LENGTH = 1000;
const TEXT_LENGTH = 700;
const CODE_LENGTH = 160;
// This package's folder: its frames are not the test's.
const HERE = dirname(fileURLToPath(import.meta.url));

/** A path as the user reads it: relative to the working folder when under it. */
function shown(path) {
  const near = relative(process.cwd(), path);
  return near !== "" && !near.startsWith("..") && !isAbsolute(near) ? near : path;
}

/** A test that cannot be loaded, for a reason the runner says in words (no stack to show). */
class LoadError extends Error {}

/** The test functions `spec` (`FILE[:FUNCTION]`) names: `[{name, run}]`. */
async function load(spec) {
  const colon = spec.lastIndexOf(":");
  const named = colon > 0 && /^[A-Za-z_$][\w$]*$/.test(spec.slice(colon + 1));
  const [file, function_] = named ? [spec.slice(0, colon), spec.slice(colon + 1)] : [spec, ""];
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new LoadError(`no test file ${file}`);
  }
  const module = await import(pathToFileURL(path).href);
  const name = (key) => `${shown(path)}:${key}`;
  if (function_ !== "") {
    if (typeof module[function_] !== "function") {
      throw new LoadError(`${file} exports no function ${function_}`);
    }
    return [{ name: name(function_), run: module[function_] }];
  }
  if (typeof module.default === "function") {
    return [{ name: name("default"), run: module.default }];
  }
  const tests = Object.keys(module)
    .filter((key) => key.startsWith("test") && typeof module[key] === "function")
    .map((key) => ({ name: name(key), run: module[key] }));
  if (tests.length === 0) {
    throw new LoadError(`${file} exports no default function and no function whose name starts with \`test\``);
  }
  return tests;
}

const sources = new Map();

/** Line `line` (from 1) of file `path`, trimmed; empty when it cannot be read. */
function sourceLine(path, line) {
  if (!sources.has(path)) {
    let lines = [];
    try {
      lines = readFileSync(path, "utf8").split("\n");
    } catch {
      // A frame of code that is not a file: no line to show.
    }
    sources.set(path, lines);
  }
  const code = (sources.get(path)[line - 1] ?? "").trim();
  return code.length > CODE_LENGTH ? `${code.slice(0, CODE_LENGTH)}…` : code;
}

/**
 * ` (at FILE:LINE: CODE)` of the innermost frame of the test's own code in `error`'s stack, when there is one:
 * frames of Node itself and of this package are not the test's.
 */
function where(error) {
  const stack = typeof error?.stack === "string" ? error.stack : "";
  for (const line of stack.split("\n")) {
    const frame = /^\s*at (?:.*? \()?((?:file:\/\/)?\/[^()]*?):(\d+):\d+\)?$/.exec(line);
    if (frame === null) {
      continue;
    }
    const path = frame[1].startsWith("file://") ? fileURLToPath(frame[1]) : frame[1];
    if (path.startsWith(HERE + sep)) {
      continue;
    }
    const number = Number(frame[2]);
    const code = sourceLine(path, number);
    return ` (at ${shown(path)}:${number}${code ? `: ${code}` : ""})`;
  }
  return "";
}

/** What `error` says, on one line: `TYPE: TEXT (cause: TEXT)`, its lines joined. */
function said(error) {
  let text;
  if (error instanceof Error) {
    // fetch's "fetch failed" says why in its cause: "connect ECONNREFUSED 127.0.0.1:7000".
    const cause = error.cause instanceof Error ? ` (cause: ${error.cause.message})` : "";
    const lines = `${error.name}: ${error.message}${cause}`
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "");
    text = lines.reduce((joined, line) => (joined.endsWith(":") ? `${joined} ${line}` : `${joined}; ${line}`));
  } else {
    text = `threw ${inspect(error, { breakLength: Infinity, depth: 2 })}`;
  }
  return text.length > TEXT_LENGTH ? `${text.slice(0, TEXT_LENGTH)}…` : text;
}

/** The failure message of test `name` that threw `error`: `NAME: TYPE: TEXT (at FILE:LINE: CODE)`. */
function describe(name, error) {
  return `${name}: ${said(error)}${where(error)}`;
}

// While a test runs: fails it with an error thrown or a promise rejected outside its own chain.
let strayError = null;
// The name of the test running, for a process that exits under it.
let running = null;

function stray(error) {
  if (strayError !== null) {
    strayError(error);
  } else {
    console.error(error);
    console.error(`${PROG}: the error above was thrown outside any test`);
  }
}

/** Runs the tests in order, up to the first that fails: `{passed, message}` (message empty when passed). */
async function run(tests) {
  for (const test of tests) {
    const strayed = new Promise((_, reject) => {
      strayError = reject;
    });
    running = test.name;
    try {
      const result = await Promise.race([(async () => test.run())(), strayed]);
      if (result === false) {
        return { passed: false, message: `${test.name} returned false` };
      }
    } catch (error) {
      console.error(error);
      return { passed: false, message: describe(test.name, error) };
    } finally {
      strayError = null;
      running = null;
    }
  }
  return { passed: true, message: "" };
}

/**
 * Takes executions from the coordinator at `url` until the exploration is over (then 0), running the tests
 * in each with CLOTURE_EXECUTION set to its id and posting their verdict. CoordinatorError when the
 * coordinator goes away or refuses to offer.
 */
async function serve(url, tests) {
  for (;;) {
    const next = await request(url, "GET", "/v1/runner/next", { timeoutMs: POLL_TIMEOUT_MS });
    if (next.status === 204) {
      continue;
    }
    if (next.status === 410) {
      return 0;
    }
    const execution = next.body?.execution;
    if (next.status !== 200 || typeof execution !== "string" || !/^\d+$/.test(execution)) {
      throw new CoordinatorError(`cannot take the next execution: ${refusal(next.status, next.body)}`);
    }
    process.env[EXECUTION_ENV] = execution;
    const { passed, message } = await run(tests);
    const verdict = { passed, message: message.slice(0, MESSAGE_LENGTH) };
    const taken = await request(url, "POST", `/v1/runner/${execution}/verdict`, { body: verdict });
    if (taken.status !== 204) {
      // Abandoned meanwhile (its deadline passed): the next execution is what matters.
      console.error(`${PROG}: verdict on ${execution} not taken: ${refusal(taken.status, taken.body)}`);
    }
  }
}

/** The runner's exit status for the command-line arguments `args`. */
async function main(args) {
  if (args.length === 0 || args.includes("--help") || args.includes("-h")) {
    console.error(USAGE);
    return args.length === 0 ? 2 : 0;
  }
  const url = coordinatorUrl();
  if (url === null) {
    console.error(`${PROG}: CLOTURE_COORDINATOR is not set: start it with \`cloture explore --runner\``);
    return 2;
  }
  if (badUrl(url) !== null) {
    console.error(`${PROG}: ${badUrl(url)}`);
    return 2;
  }
  let tests;
  try {
    tests = (await Promise.all(args.map(load))).flat();
  } catch (error) {
    if (!(error instanceof LoadError)) {
      console.error(error);
    }
    console.error(`${PROG}: cannot load the tests: ${error?.message ?? error}`);
    return 2;
  }
  process.on("uncaughtException", stray);
  process.on("unhandledRejection", stray);
  process.on("exit", (code) => {
    if (running !== null) {
      console.error(`${PROG}: exiting while ${running} runs (process.exit, or a promise that never settles)`);
      process.exitCode = code === 0 ? 1 : code;
    }
  });
  try {
    return await serve(url, tests);
  } catch (error) {
    if (!(error instanceof CoordinatorError)) {
      throw error;
    }
    console.error(`${PROG}: ${error.message}; exiting (is the exploration over?)`);
    return 1;
  }
}

// Exits once the exploration is over, even when the tests left timers or connections open.
process.exit(await main(process.argv.slice(2)));
