"""What the run service and the claims raise (mapped to HTTP codes by the gateway)."""

from __future__ import annotations


class RunNotFound(LookupError):
    """No run has that id."""


class RunStateError(ValueError):
    """The run is not in a state that allows this (HTTP 409)."""


class RunTaken(RunStateError):
    """A report for a claim that no longer owns the run (it was recovered elsewhere, or has ended)."""


class SeqGap(ValueError):
    """A report whose first event would not follow the stored ones (HTTP 422)."""
