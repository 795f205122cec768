"""Surviving a database connection cut mid-transaction: one retry, when that cannot apply a change twice."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from ganlab.errors import DatabaseUnreachable

if TYPE_CHECKING:
    from ganlab.store.storage import Store

T = TypeVar("T")
S = TypeVar("S", bound="Store")
P = ParamSpec("P")


def reconnects(*, idempotent: bool = False) -> Callable[[Callable[Concatenate[S, P], T]], Callable[Concatenate[S, P], T]]:
    """Run a one-transaction method once more when the server cut its connection mid-transaction.

    A long-lived worker's pooled connection can be cut while it is in use (a
    server restart, a failover, pg_terminate_backend); the pool's pre-ping only
    catches connections that died while idle. A transaction cut before its
    commit (or one that only read) left nothing behind, so one retry on a fresh
    connection makes the drop invisible. A write cut during its commit may or
    may not have landed: it is retried only if ``idempotent`` (applying it twice
    is the same as once), else raised for the caller's own recovery.
    """

    def decorate(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
        @functools.wraps(method)
        def retrying(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return method(self, *args, **kwargs)
            except DatabaseUnreachable as exc:
                if not (exc.nothing_applied or (idempotent and exc.connection_dropped)):
                    raise
            return method(self, *args, **kwargs)

        return retrying

    return decorate
