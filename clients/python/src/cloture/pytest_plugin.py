"""cloture's persistent runner for pytest tests: ``pytest --cloture-runner TESTS``, for ``cloture explore --runner``.

pytest collects the tests once; then, instead of running them once, the plugin takes executions from cloture's
coordinator and runs every collected test in each, posting one verdict per execution (protocol:
docs/runner.md), until cloture says the exploration is over. Each execution sets its tests up and tears them
down completely — fixtures of every scope, from function to session — so no execution sees another's state;
what is saved is starting Python, importing the tests and collecting them. Inside each execution
``CLOTURE_EXECUTION`` is set to its id, so ``cloture.fault_injected()`` and ``filibuster.assertions`` answer
for it.

An execution passes when no test failed: passed, skipped and expected failures (``xfail``) all pass; a failed
assertion, an exception (``sys.exit`` included, as in any pytest run), or an error in a fixture's setup or
teardown fails it. The message is the first failure's, as the plain runner (``cloture.runner``) words it:
``NODE ID: TYPE: TEXT (at FILE:LINE: CODE)``; pytest's report of each failure goes to the runner's log.

Installed with the package (entry point ``pytest11``), the plugin does nothing unless ``--cloture-runner`` is
given; without installing, ``pytest -p cloture.pytest_plugin --cloture-runner …`` with the package on
``PYTHONPATH``. pytest exits 0 when the exploration is over, 2 when collection failed or collected nothing, 4
outside an exploration (no ``CLOTURE_COORDINATOR``), and 1 when the coordinator goes away.

Only this module of the package imports pytest.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

import _pytest
import pluggy
import pytest
from _pytest.runner import runtestprotocol

from . import runner
from ._coordinator import Connection, CoordinatorError, coordinator_url, execution_id

PROG = "cloture.pytest_plugin"
# Frames here are pytest's, not the test's: a failure is located in the test's code.
HIDDEN = (os.path.dirname(_pytest.__file__), os.path.dirname(pluggy.__file__), os.path.dirname(pytest.__file__))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cloture", "cloture's fault exploration")
    group.addoption(
        "--cloture-runner",
        action="store_true",
        dest="cloture_runner",
        default=False,
        help="run the collected tests once per execution of a cloture exploration (cloture explore --runner)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("cloture_runner", False):
        return
    url = coordinator_url()
    if url is None:
        said = "CLOTURE_COORDINATOR is not set: start it with `cloture explore --runner`"
        raise pytest.UsageError(f"--cloture-runner: {said}")
    config.pluginmanager.register(Runner(url), "cloture-runner")


class Runner:
    """The run loop of ``--cloture-runner``: registered only with the option."""

    def __init__(self, url: str):
        self.url = url
        # The exception of each phase (setup, call, teardown) of the test running now.
        self.errors: Dict[str, BaseException] = {}
        self.executions = 0
        self.failed = 0

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Optional[bool]:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            count = session.testsfailed
            raise session.Interrupted(f"{count} error{'s' if count != 1 else ''} during collection")
        if session.config.option.collectonly:
            return None  # pytest's own loop lists the tests
        if not session.items:
            raise session.Interrupted(f"{PROG}: no test was collected")
        try:
            runner.serve(lambda: self.run(session.items), Connection(self.url), PROG)
        except CoordinatorError as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            raise session.Failed(f"{PROG}: {error}") from error
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> None:
        if call.excinfo is not None:
            self.errors[call.when] = call.excinfo.value

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_line(f"{PROG}: {self.executions} executions, {self.failed} failed")

    def run(self, items: List[pytest.Item]) -> runner.Verdict:
        """Runs every test once, from setting up its fixtures to tearing them down: the execution's verdict."""
        failures = []
        for index, item in enumerate(items):
            # The last test tears down everything (nothing comes next), so the next execution starts afresh.
            following = items[index + 1] if index + 1 < len(items) else None
            self.errors = {}
            for report in runtestprotocol(item, log=False, nextitem=following):
                if report.failed:
                    failures.append(self.message(item, report))
                    log(report)
        self.executions += 1
        self.failed += bool(failures)
        print(f"{PROG}: execution {execution_id()}: {len(items) - len(failures)} of {len(items)} passed")
        if not failures:
            return True, ""
        more = f" ({len(failures) - 1} more failed)" if len(failures) > 1 else ""
        return False, failures[0] + more

    def message(self, item: pytest.Item, report: pytest.TestReport) -> str:
        name = item.nodeid if report.when == "call" else f"{item.nodeid} ({report.when})"
        error = self.errors.get(report.when)
        if error is not None:
            # The first line, as pytest's short summary: pytest's explanation of an assert is in the log.
            return runner.describe(name, error, HIDDEN, lines=1)
        # A failure without an exception (a strict xfail that passed): pytest's own words.
        lines = [line for line in report.longreprtext.splitlines() if line.strip()]
        return f"{name}: {lines[-1].strip() if lines else 'failed'}"


def log(report: pytest.TestReport) -> None:
    """pytest's report of a failure, with what the test printed, in the runner's log."""
    print(f"___ {report.nodeid} ({report.when}) ___", file=sys.stderr)
    print(report.longreprtext, file=sys.stderr)
    for title, content in report.sections:
        print(f"--- {title} ---\n{content}", file=sys.stderr)
