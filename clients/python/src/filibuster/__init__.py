"""Filibuster's test-facing module names, answered by cloture (see ``filibuster.assertions``).

Only what functional tests import is here; Filibuster's server and instrumentation are not: cloture
injects faults in its own client, server loop and proxies.
"""
