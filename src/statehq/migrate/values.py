"""Reading a legacy value: JSON, plain text, or what Django's cache wrote (a pickle).

Django's Redis cache stores integers as digits and everything else pickled, so the
``cache-fields`` layout is mostly pickles. Unpickling foreign data runs whatever code
the data names; these pickles are read by an unpickler that refuses every class except
a few plain value types (datetime, date, time, timedelta, timezone, Decimal), so the
worst a hostile value can do is be refused. What comes out is made JSON: tuples and
sets become lists, datetimes ISO-8601 text, Decimals decimal text.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import pickle
from decimal import Decimal
from typing import Any

_PICKLE_START = b"\x80"
"""Protocol 2 and later (everything Django writes) start with the PROTO opcode."""

_SAFE_CLASSES = {
    ("datetime", "datetime"): dt.datetime,
    ("datetime", "date"): dt.date,
    ("datetime", "time"): dt.time,
    ("datetime", "timedelta"): dt.timedelta,
    ("datetime", "timezone"): dt.timezone,
    ("decimal", "Decimal"): Decimal,
}


class Unreadable(ValueError):
    """A legacy value that cannot be read as data; the message says why."""


class _PlainUnpickler(pickle.Unpickler):
    """An unpickler that builds plain values only: every other class is refused.

    Each way a pickle can call code (REDUCE, BUILD, NEWOBJ, INST) needs a class or
    function, and every one of those is obtained through :meth:`find_class`.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _SAFE_CLASSES.get((module, name))
        if allowed is None:
            raise Unreadable(f"a pickle of {module}.{name}, which is not plain data; not loaded")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise Unreadable("a pickle with persistent ids, which is not plain data; not loaded")


def from_pickle(raw: bytes) -> Any:
    """The JSON value of a pickle of plain data; :class:`Unreadable` for anything else."""
    try:
        value = _PlainUnpickler(io.BytesIO(raw)).load()
    except Unreadable:
        raise
    except Exception as broken:  # a truncated or garbled pickle fails in many ways
        raise Unreadable(f"a damaged pickle ({type(broken).__name__}: {broken})") from None
    return as_json(value)


def as_json(value: Any) -> Any:
    """``value`` with its Python-only types made JSON (see the module's docstring)."""
    if isinstance(value, dict):
        return {str(key): as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((as_json(item) for item in value), key=repr)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise Unreadable("binary data that is not text") from None
    if value is None or isinstance(value, str | int | float):
        return value
    raise Unreadable(f"a {type(value).__name__}, which is not JSON data")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise Unreadable(f"not UTF-8 text (byte {bad.start})") from None


def read_document(raw: bytes) -> dict[str, Any]:
    """A legacy JSON object (or pickled dict); :class:`Unreadable` saying what is wrong."""
    if raw.startswith(_PICKLE_START):
        value = from_pickle(raw)
    else:
        try:
            value = json.loads(_text(raw), parse_constant=_refuse_constant)
        except ValueError as bad:
            raise Unreadable(f"not valid JSON ({bad})") from None
    if not isinstance(value, dict):
        raise Unreadable(f"a JSON {type(value).__name__}, not an object")
    return value


def read_scalar(raw: bytes) -> Any:
    """A legacy single value: a pickle, JSON (``"MENU"``, ``5``), or else the plain text."""
    if raw.startswith(_PICKLE_START):
        return from_pickle(raw)
    text = _text(raw)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return text
