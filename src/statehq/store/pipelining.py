"""What the sync and async drivers share to run a :class:`~statehq.store.requests.Pipeline`.

The drivers differ only in how they send a group of requests (blocking or awaited);
which requests may travel together, what a pipeline's raw replies mean, and what to
send again after NOSCRIPT are decided here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.crc import key_slot
from redis.exceptions import NoScriptError

from ..errors import StateError, StoreUnavailable
from . import requests as ops
from .connection import ScriptBook, StoreFailure, member_in, translate

Piece = ops.Script | ops.Command


def command_of(request: Piece, scripts: ScriptBook) -> tuple[Any, ...]:
    """The Redis command a request sends: ``EVALSHA`` for a script."""
    if isinstance(request, ops.Script):
        sha = scripts.shas[request.name]
        return ("EVALSHA", sha, len(request.keys), *request.keys, *request.args)
    return request.args


def slot_of(request: Piece) -> int | None:
    """The Cluster hash slot of a request's first key (None: it names no key)."""
    keys = ops.keys_of(request)
    return key_slot(keys[0].encode(errors="surrogatepass")) if keys else None


def groups(requests: Sequence[Piece], cluster: bool) -> list[list[Piece]]:
    """The pipelines to send, one after another, so the server runs ``requests`` in order.

    One server runs one pipeline in order. A Cluster runs the pieces of a pipeline that
    go to different nodes side by side, so there consecutive requests in one slot go
    together and each group waits for the one before it.
    """
    if not cluster:
        return [list(requests)]
    out: list[list[Piece]] = []
    last: object = object()
    for request in requests:
        slot = slot_of(request)
        if out and slot == last and slot is not None:
            out[-1].append(request)
        else:
            out.append([request])
        last = slot
    return out


def first_forgotten(replies: Sequence[Any]) -> int | None:
    """The index of the first reply that is NOSCRIPT (the server forgot a script), or None."""
    for index, reply in enumerate(replies):
        if isinstance(reply, NoScriptError):
            return index
    return None


def outcomes(requests: Sequence[Piece], replies: Sequence[Any], where: str) -> list[Any]:
    """Raw pipeline replies as :class:`~statehq.store.requests.Pipeline` hands them back:
    each error reply turned into the statehq error the request alone would have raised."""
    out: list[Any] = []
    for request, reply in zip(requests, replies, strict=True):
        if isinstance(reply, StoreFailure):
            out.append(translate(reply, where, member_in(ops.keys_of(request))))
        elif isinstance(reply, Exception):  # not the server's: keep it, but as ours
            out.append(StateError(f"{where}: {type(reply).__name__}: {reply}"))
        else:
            out.append(reply)
    return out


def in_place(error: StateError) -> list[Any]:
    """A pipeline of one request is sent as a plain call (cheaper than a pipeline): the
    error the server answered it with goes in its reply's place. A store that could not
    be reached (exactly :class:`StoreUnavailable`) still raises, as for a whole pipeline."""
    if type(error) is StoreUnavailable:
        raise error
    return [error]
