"""Functional tests for cloture's fault exploration, in Python (standard library only).

cloture runs a functional test once per execution, each with other faults injected into the calls between
services. The test tells a correct answer from a wrong one; these functions tell it what cloture did:

- ``fault_injected()``, ``fault_injected_on(service)``, ``fault_injected_on_method(method)``: whether a
  fault was injected so far in this execution (anywhere, into calls to ``service``, into calls of an HTTP
  method). Ask after the system answered: services report before they answer.
- ``matches_reference(name, value)``: whether ``value`` is what the same test saw without faults. In a
  fault-free execution (the reference runs) it saves ``value`` under ``name`` and is ``True``; under
  faults it compares with what was saved. ``is_reference_run()``, ``save_reference``, ``reference`` are
  the parts.
- ``in_exploration()``, ``execution()``: whether the test runs under cloture, and the execution's id.

Outside an exploration (no ``CLOTURE_COORDINATOR``) no fault is ever injected: the oracles are ``False``,
every run is fault-free, and ``matches_reference`` is ``True``. A coordinator that cannot be reached
during an exploration raises ``CoordinatorError``: the test fails, and cloture says so.

The persistent runner is ``python -m cloture.runner`` (see ``cloture.runner``); Filibuster's assertions
are ``filibuster.assertions``.
"""
from __future__ import annotations

import json
from typing import Any, Optional
from urllib.parse import quote

from ._coordinator import CoordinatorError, ask, coordinator_url, execution_id, refusal, segment

__all__ = [
    "CoordinatorError",
    "NoReference",
    "execution",
    "fault_injected",
    "fault_injected_on",
    "fault_injected_on_method",
    "in_exploration",
    "is_reference_run",
    "matches_reference",
    "reference",
    "save_reference",
]


class NoReference(LookupError):
    """No fault-free execution saved a value under this name, or two saved different values."""


def in_exploration() -> bool:
    """Whether this test runs inside one of cloture's executions."""
    return coordinator_url() is not None and execution_id() is not None


def execution() -> Optional[str]:
    """The id of the execution this test runs in (``None`` outside an exploration)."""
    return execution_id() if in_exploration() else None


def _injected(query: str) -> bool:
    if not in_exploration():
        return False
    status, body = ask("GET", f"/v1/executions/{execution_id()}/injected{query}")
    if status != 200:
        raise CoordinatorError(f"cannot ask whether a fault was injected: {refusal(status, body)}")
    return bool(body["injected"])


def fault_injected() -> bool:
    """Whether a fault was injected anywhere in this execution so far."""
    return _injected("")


def fault_injected_on(service: str) -> bool:
    """Whether a fault was injected into a call to ``service`` (its name in the services file) so far."""
    return _injected(f"?service={segment(service)}")


def fault_injected_on_method(method: str, service: Optional[str] = None) -> bool:
    """Whether a fault was injected into a call of ``method``, to ``service`` when given, so far: an HTTP
    method in any case (``requests.get`` counts as ``GET``), or a gRPC method (``package.Service/Method`` or
    ``Service/Method``)."""
    query = f"?method={segment(method)}"
    if service is not None:
        query += f"&service={segment(service)}"
    return _injected(query)


def is_reference_run() -> bool:
    """Whether this execution has no fault planned: a reference run (or a fault-free run outside an
    exploration), whose answers are the ones to compare with."""
    if not in_exploration():
        return True
    status, body = ask("GET", f"/v1/executions/{execution_id()}")
    if status != 200:
        raise CoordinatorError(f"cannot ask about the execution: {refusal(status, body)}")
    return bool(body["fault_free"])


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists): what is saved and compared."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise TypeError(f"a reference value must be JSON (dicts, lists, strings, numbers, booleans, None): {error}")


def _name(name: str) -> str:
    """A reference name for the path: its valid characters as they are, anything else encoded (and refused)."""
    return quote(name, safe=":")


def save_reference(name: str, value: Any) -> None:
    """Saves ``value`` (JSON) under ``name`` in a fault-free execution; the first value saved stays. Name: 1 to
    128 letters, digits, ``-``, ``_``, ``.`` or ``:``. Outside an exploration it does nothing."""
    value = _as_json(value)
    if not in_exploration():
        return
    status, body = ask("PUT", f"/v1/executions/{execution_id()}/references/{_name(name)}", value)
    if status != 204:
        raise CoordinatorError(f"cannot save reference value {name!r}: {refusal(status, body)}")


def reference(name: str) -> Any:
    """The value a fault-free execution saved under ``name``; ``NoReference`` when none did, or when two
    fault-free executions saved different values (the system is not deterministic there)."""
    if not in_exploration():
        raise NoReference(f"no reference value {name!r}: not in an exploration")
    status, body = ask("GET", f"/v1/executions/{execution_id()}/references/{_name(name)}")
    if status == 200:
        return body["value"]
    if status in (404, 409):
        raise NoReference(refusal(status, body))
    raise CoordinatorError(f"cannot read reference value {name!r}: {refusal(status, body)}")


def matches_reference(name: str, value: Any) -> bool:
    """In a fault-free execution: saves ``value`` under ``name`` and answers ``True``. Under faults: whether
    ``value`` equals what was saved (as JSON). ``NoReference`` when nothing comparable was saved."""
    if is_reference_run():
        save_reference(name, value)
        return True
    return _as_json(value) == reference(name)
