"""The persistent test runner: ``python -m cloture.runner TEST [TEST ...]``, for ``cloture explore --runner``.

The test process starts once; for each execution cloture offers, the runner runs the test functions and
posts their verdict (protocol: docs/runner.md). That saves starting Python and importing the test per
execution. ``TEST`` is ``FILE.py:FUNCTION`` or ``MODULE:FUNCTION`` (``tests/test_x.py:test_bookings``,
``mypkg.tests:test_bookings``); without ``:FUNCTION`` every function of the file or module whose name starts
with ``test`` runs, in the order they are defined. A file's folder is put first on ``sys.path``, as
``python FILE.py`` does; its ``if __name__ == "__main__":`` block does not run.

A test passes when it returns (anything but ``False``) or calls ``sys.exit()`` / ``sys.exit(0)``; it fails
on an exception (an ``assert``), ``sys.exit(N)`` with ``N`` not 0, or ``sys.exit("message")``. Tests written
as scripts for ``--functional-test`` run unchanged when their checks are in a function. Inside each
execution ``CLOTURE_EXECUTION`` is set to its id, so ``cloture.fault_injected()`` and
``filibuster.assertions`` answer for it.

The runner exits 0 when cloture says the exploration is over, 2 when a test cannot be loaded, and 1 when
the coordinator goes away. The loop (``serve``) and the failure message (``describe``) are also the pytest
plugin's (``cloture.pytest_plugin``: ``pytest --cloture-runner``).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from ._coordinator import EXECUTION_ENV, Connection, CoordinatorError, coordinator_url, refusal

Test = Tuple[str, Callable[[], object]]
# Whether an execution passed, and why not (empty when it passed).
Verdict = Tuple[bool, str]

# The coordinator answers a poll within 20 s; a read waits longer than that.
POLL_TIMEOUT = 60.0
# A failure message is cut to this many characters (cloture keeps 1 KiB).
MESSAGE_LENGTH = 1000


def _load_module(target: str):
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target).resolve()
        if not path.is_file():
            raise ImportError(f"no test file {target}")
        sys.path.insert(0, str(path.parent))
        name = path.stem
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"{target} cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    sys.path.insert(0, os.getcwd())
    return importlib.import_module(target)


def load(spec: str) -> List[Test]:
    """The test functions ``spec`` names (``TARGET[:FUNCTION]``)."""
    target, _, function = spec.rpartition(":") if ":" in spec else (spec, "", "")
    module = _load_module(target)
    if function:
        test = getattr(module, function, None)
        if not callable(test):
            raise ImportError(f"{target} has no function {function!r}")
        return [(f"{target}:{function}", test)]
    tests = [
        (f"{target}:{name}", value)
        for name, value in vars(module).items()
        if name.startswith("test") and callable(value) and getattr(value, "__module__", None) == module.__name__
    ]
    if not tests:
        raise ImportError(f"{target} has no function whose name starts with `test`")
    return tests


# Where Python's own library and installed packages live: not the test's code.
_LIBRARY_KEYS = ("stdlib", "platstdlib", "purelib", "platlib")
_LIBRARIES = tuple(sorted({os.path.join(path, "") for key, path in sysconfig.get_paths().items() if key in _LIBRARY_KEYS}))


def _where(error: BaseException, hidden: Sequence[str]) -> str:
    """`` (at FILE:LINE: CODE)`` of the innermost frame of the test's own code, when there is one: frames in
    this package, in Python's own library, in installed packages (``requests``, say) or in the folders
    ``hidden`` are not the test's."""
    frames = traceback.extract_tb(error.__traceback__)
    outside = (os.path.dirname(__file__), *_LIBRARIES, *hidden)
    own = [frame for frame in frames if not frame.filename.startswith(outside)]
    if not own:
        return ""
    frame = own[-1]
    code = f": {frame.line}" if frame.line else ""
    return f" (at {os.path.relpath(frame.filename)}:{frame.lineno}{code})"


def describe(name: str, error: BaseException, hidden: Sequence[str] = (), lines: Optional[int] = None) -> str:
    """The failure message of test ``name`` that raised ``error``, on one line: ``NAME: TYPE: TEXT (at
    FILE:LINE: CODE)``, with the first ``lines`` lines of the text (all when ``None``)."""
    said = "".join(traceback.format_exception_only(type(error), error)).strip()
    text = [line.strip() for line in said.splitlines() if line.strip()][:lines]
    return f"{name}: {'; '.join(text)}{_where(error, hidden)}"


def run(tests: List[Test]) -> Verdict:
    """Runs the tests in order, up to the first that fails: whether they passed, and why not."""
    for name, test in tests:
        try:
            if test() is False:
                return False, f"{name} returned False"
        except SystemExit as exit:
            if exit.code is None or exit.code == 0:
                continue
            if isinstance(exit.code, int):
                return False, f"{name} exited with status {exit.code}"
            return False, str(exit.code)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # the verdict is the test's, whatever it raised
            traceback.print_exc()
            return False, describe(name, error)
    return True, ""


def serve(run_execution: Callable[[], Verdict], connection: Connection, prog: str = "cloture.runner") -> int:
    """Takes executions from the coordinator until the exploration is over (then 0), calling
    ``run_execution`` in each with ``CLOTURE_EXECUTION`` set to its id, and posting the verdict it returns.
    ``CoordinatorError`` when the coordinator goes away or refuses to offer; ``prog`` names the runner in
    what it prints."""
    while True:
        status, body = connection.request("GET", "/v1/runner/next", timeout=POLL_TIMEOUT)
        if status == 204:
            continue
        if status == 410:
            return 0
        if status != 200:
            raise CoordinatorError(f"cannot take the next execution: {refusal(status, body)}")
        execution = body["execution"]
        os.environ[EXECUTION_ENV] = execution
        try:
            passed, message = run_execution()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        verdict = {"passed": passed, "message": message[-MESSAGE_LENGTH:]}
        status, body = connection.request("POST", f"/v1/runner/{execution}/verdict", verdict)
        if status != 204:
            # Abandoned meanwhile (its deadline passed): the next execution is what matters.
            print(f"{prog}: verdict on {execution} not taken: {refusal(status, body)}", file=sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cloture.runner",
        description="Run functional tests once per execution of a cloture exploration (cloture explore --runner).",
    )
    parser.add_argument("tests", nargs="+", metavar="TEST", help="FILE.py[:FUNCTION] or MODULE[:FUNCTION]")
    arguments = parser.parse_args(argv)
    url = coordinator_url()
    if url is None:
        print("cloture.runner: CLOTURE_COORDINATOR is not set: start it with `cloture explore --runner`", file=sys.stderr)
        return 2
    try:
        tests = [test for spec in arguments.tests for test in load(spec)]
    except Exception as error:  # a test that cannot be loaded: say why, once
        traceback.print_exc()
        print(f"cloture.runner: cannot load the tests: {error}", file=sys.stderr)
        return 2
    try:
        return serve(lambda: run(tests), Connection(url))
    except CoordinatorError as error:
        print(f"cloture.runner: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
