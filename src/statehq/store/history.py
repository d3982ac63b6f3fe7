"""The history ring as stored: the newest version in full, the older ones as reverse patches.

A Redis list under ``<prefix>:{<member>}:hist``, newest first. The head is the newest
version in full: the document's hash as one JSON object of path -> stored leaf (the form
:func:`statehq.store.codec.decode_encoded_doc` reads). Every other entry is a reverse
patch: what the version had where the version after it differs, so version *v* is the
nearest full entry newer than it, patched down entry by entry::

    {"stage":"\\"MENU\\"","flow_data":"{}", ... ,"_version":"12", ...}     12 in full
    -11<TAB>"2026-01-01T00:01:13.412Z"                                  11: version, stamp
    flow_data._validation.attempts<TAB>0                                a leaf 11 had
    <US>in_progress<TAB>false                                           ... beside the last one
    flow_data.data.recipient                                            11 had no recipient

A patch is ``-``, the older version's ``_version`` and ``_last_updated`` leaves separated
by a tab, then one line per changed path (sorted): ``path<TAB>leaf`` for the leaf the older
version had there, or the path alone where it had none (nor anything under it, so a
child of such a path is left out). A path whose parent is the previous line's is written
as ``\x1f`` (US) and its last segment. No path holds a tab, newline or US (the codec
escapes every control character) and no JSON leaf a raw newline; a patch with a leaf that
does anyway (written by hand) is written as ``-`` and a JSON object of path -> leaf,
``false`` for none, instead. ``update.lua`` keeps the ring this way: it turns the head
into the patch back from the version it writes and pushes that version in full;
:func:`write` does the same for a restore.

Why the newest entry is full, when the document hash holds the same version: recovery.
The hash is what a hand edit, a bad migration or a bug damages; the ring's own copy lets
:mod:`statehq.state.recovery` restore the newest version even then, and every older
version is patched down from that copy, never from the hash. The price is one copy of
the document (about 1 KB for a credex session) on top of small patches, instead of ten
copies; the alternative, patches from the hash with the oldest version kept in full,
would restore a version up to nine writes old after any damage to the hash.

Any number of full entries may appear (a ring written before patches existed holds only
full entries; a fresh session on a leftover ring starts a new chain on top of it); an
entry that cannot be read makes the older entries patched from it unreadable too, up to
the next full entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ..errors import CorruptState
from . import codec
from .models import HistoryEntry

PATCH_TEXT = "-"
"""The first character of a reverse-patch entry (a full entry starts with ``{``)."""
RELATIVE = "\x1f"
"""Starts a path written relative to the previous line's parent."""
VERSION, STAMP = codec.VERSION_FIELD, codec.UPDATED_FIELD
_SEPARATORS = re.compile("[\n\t\x1f]")

Fields = dict[str, str]
Patch = dict[str, str | None]
"""Path -> the leaf the older version has there, None where it has none."""


def read(entries: Sequence[bytes], member_id: str, *, skip_corrupt: bool) -> list[HistoryEntry]:
    """Every version the ring holds, newest first.

    A version that cannot be rebuilt or decoded raises :class:`CorruptState`, or with
    ``skip_corrupt`` is left out.
    """
    versions: list[HistoryEntry] = []
    fields: Fields | None = None
    for raw in entries:
        fields = _next(fields, raw)
        entry = None if fields is None else _entry(fields, member_id)
        if entry is not None:
            versions.append(entry)
        elif not skip_corrupt:
            raise CorruptState(member_id, "a history entry cannot be decoded")
    return versions


def write(versions: Sequence[dict[str, bytes]]) -> list[bytes]:
    """The ring entries, newest first, for flattened versions given newest first.

    The form :func:`read` reads and ``update.lua`` continues: the first in full, each
    next as the patch back from the one before it.
    """
    entries: list[bytes] = []
    newer: Fields | None = None
    for flat in versions:
        older = {path: _text(leaf) for path, leaf in flat.items()}
        if newer is None:
            entries.append(_bytes(_dump(older)))
        else:
            patch = patch_between(newer, older)
            header = older.get(VERSION), older.get(STAMP)
            entries.append(_bytes(patch_entry(patch, *header)))
        newer = older
    return entries


def patch_between(newer: Fields, older: Fields) -> Patch:
    """The reverse patch turning ``newer``'s fields into ``older``'s."""
    patch: Patch = {p: v for p, v in older.items() if newer.get(p) != v}
    patch.update((p, None) for p in newer if p not in older)
    return patch


def patch_entry(patch: Patch, was_version: str | None, was_stamp: str | None) -> str:
    """A patch as a ring entry, as ``update.lua`` writes it: the older version's
    ``_version`` and ``_last_updated`` leaves head it, and its other paths follow."""
    paths = sorted(p for p in patch if p not in (VERSION, STAMP))
    fits = was_version is not None and was_version.isascii() and was_version.isdigit()
    fits = fits and bool(was_stamp) and not _SEPARATORS.search(was_stamp or "")
    if not fits or any(_SEPARATORS.search(path) for path in paths):
        return _json_entry(patch, was_version, was_stamp)
    lines = [f"{PATCH_TEXT}{was_version}\t{was_stamp}"]
    last_parent: str | None = None
    for path in paths:
        value = patch[path]
        parent, _, name = path.rpartition(".") if "." in path else (None, "", path)
        if value is None and parent is not None and parent in patch and patch[parent] is None:
            continue  # implied: the older version has no parent, so nothing under it
        shown = f"{RELATIVE}{name}" if parent is not None and parent == last_parent else path
        last_parent = parent
        if value is not None and "\n" in value:
            return _json_entry(patch, was_version, was_stamp)
        lines.append(shown if value is None else f"{shown}\t{value}")
    return "\n".join(lines)


def _json_entry(patch: Patch, was_version: str | None, was_stamp: str | None) -> str:
    """The fallback form: ``-`` and a JSON object, ``false`` for none (as cjson writes it)."""
    whole = {**patch, VERSION: was_version, STAMP: was_stamp}
    return PATCH_TEXT + _dump({p: False if v is None else v for p, v in whole.items()})


def _next(newer: Fields | None, raw: bytes) -> Fields | None:
    """The fields of the version ``raw`` holds, given the version after it (None: unknown)."""
    try:
        text = _text(raw)
        if not text.startswith(PATCH_TEXT):
            return _full(json.loads(text))
        if newer is None:
            return None
        body = text[1:]
        if body.startswith("{"):
            return _patched(newer, _json_patch(json.loads(body)))
        return _patched(newer, _lines(body))
    except (ValueError, UnicodeDecodeError):
        return None


def _full(loaded: object) -> Fields | None:
    if isinstance(loaded, dict) and all(isinstance(v, str) for v in loaded.values()):
        return loaded
    return None


def _json_patch(loaded: object) -> Patch:
    if not isinstance(loaded, dict):
        raise ValueError("a patch entry is not a JSON object")
    patch: Patch = {}
    for path, value in loaded.items():
        if not (isinstance(value, str) or value is False):
            raise ValueError("a patch entry holds something other than leaves")
        patch[path] = None if value is False else value
    return patch


def _lines(body: str) -> Patch:
    header, *lines = body.split("\n")
    version, tab, stamp = header.partition("\t")
    if not tab:
        raise ValueError("a patch entry has no header")
    patch: Patch = {}
    if version:
        patch[VERSION] = version
    if stamp:
        patch[STAMP] = stamp
    parent: str | None = None
    for line in lines:
        shown, tab, leaf = line.partition("\t")
        if shown.startswith(RELATIVE):
            if parent is None:
                raise ValueError("a relative path with no parent")
            shown = f"{parent}.{shown[1:]}"
        parent = shown.rpartition(".")[0] if "." in shown else None
        patch[shown] = leaf if tab else None
    return patch


def _patched(newer: Fields, patch: Patch) -> Fields:
    """``newer`` with ``patch`` applied; a path the older version lacks goes with its subtree."""
    older = dict(newer)
    for path, value in patch.items():
        if value is None:
            below = f"{path}."
            for gone in [p for p in older if p == path or p.startswith(below)]:
                del older[gone]
    for path, value in patch.items():
        if value is not None:
            older[path] = value
    return older


def _entry(fields: Fields, member_id: str) -> HistoryEntry | None:
    try:
        doc = codec.unflatten_text(list(fields.items()), member_id)
        version = int(doc["_version"])
    except (CorruptState, KeyError, TypeError, ValueError):
        return None
    return HistoryEntry(version, doc.get("_last_updated"), doc)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
