"""Filibuster's test assertions, answered by cloture: tests written for Filibuster run unchanged.

A Filibuster functional test asks whether a fault was injected to accept a degraded answer::

    from filibuster.assertions import was_fault_injected, was_fault_injected_on

These functions have Filibuster's names and meaning, and ask cloture's coordinator (``CLOTURE_COORDINATOR``,
``CLOTURE_EXECUTION``) instead of Filibuster's server. Outside an exploration they answer ``False`` (no fault
is injected); a coordinator that cannot be reached raises, as Filibuster's do when its server cannot.
"""
from __future__ import annotations

import cloture

__all__ = [
    "was_fault_injected",
    "was_fault_injected_on",
    "was_fault_injected_on_method",
    "was_fault_injected_on_service",
]


def was_fault_injected() -> bool:
    """Whether a fault was injected anywhere in the current test execution."""
    return cloture.fault_injected()


def was_fault_injected_on(service_name: str) -> bool:
    """Whether a fault was injected into a call to ``service_name`` in the current test execution."""
    return cloture.fault_injected_on(service_name)


def was_fault_injected_on_service(service_name: str) -> bool:
    """The same as ``was_fault_injected_on`` (the name later Filibuster versions use)."""
    return cloture.fault_injected_on(service_name)


def was_fault_injected_on_method(method_name: str) -> bool:
    """Whether a fault was injected into a call of ``method_name``: an HTTP method in any case (``get``,
    ``POST``, or as the client library names it, ``requests.get``), or a gRPC method
    (``package.Service/Method`` or ``Service/Method``)."""
    return cloture.fault_injected_on_method(method_name)
