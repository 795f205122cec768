"""The project's own exception types.

Core code raises these; only the CLI turns them into one-line messages.
Every message names the bad value and says what to do about it.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name when it has none.

    Driver and plugin errors can span many lines (SQL, tracebacks of their own);
    a one-line report keeps the line that says what happened.
    """
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def summary_line(exc: BaseException) -> str:
    """``Type: first line`` of ``exc``, or just ``Type`` when it has no message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class GanlabError(Exception):
    """Base class for every error a user can cause and fix."""


class PluginError(GanlabError):
    """A plugin could not be loaded, registered or found."""


class PluginValidationError(PluginError):
    """A plugin registered something that breaks the hook contract."""


class PluginRefused(PluginError):
    """A worker child refuses to run an experiment's local plugin files (changed, moved or not allowed here).

    Retrying cannot help until someone acts, so the ending is ``refused`` (its exit
    status in ``ganlab.training.report.EXIT_CODES``) and the worker marks the
    experiment failed, not requeued.
    """

    ending = "refused"


class ConfigError(GanlabError):
    """An experiment configuration is invalid (bad name, value or combination)."""


class DatasetUnavailable(GanlabError):
    """A dataset cannot be loaded on this machine (missing file, no network)."""


class StoreError(GanlabError):
    """The experiment database is missing, unreadable or refused a change."""


class NotFound(StoreError):
    """No experiment (or worker) with the given id."""


class IllegalTransition(StoreError):
    """A status change the experiment lifecycle does not allow."""


class SchemaMismatch(StoreError):
    """The database was written by another schema version; the message names the fix."""


class LeaseLost(StoreError):
    """A worker's claim no longer holds: its fencing token was superseded or the run ended."""


class DatabaseMissing(StoreError):
    """No experiment database at the given place yet (read commands never create one)."""


class DatabaseUnreachable(StoreError):
    """The database server cannot be reached right now (network, restart); worth retrying."""

    #: The server cut the connection in use (rather than refusing a new one).
    connection_dropped: bool = False
    #: The connection was cut before the transaction's commit (or the transaction
    #: only read), so nothing of it was applied: running it again cannot apply it twice.
    nothing_applied: bool = False


class RunDirBusy(GanlabError):
    """Another live trainer holds the run directory; retry once it has exited.

    The ending is ``busy`` (its exit status in ``ganlab.training.report.EXIT_CODES``);
    the worker requeues the experiment (the holder is most likely an orphan still stopping).
    """

    ending = "busy"
