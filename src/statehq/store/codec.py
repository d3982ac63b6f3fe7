"""The stored form of a document: a Redis hash of path -> JSON leaf.

Why: Lua's cjson turns ``[]`` into ``{}`` and rounds integers past 2**53, so the server
must never decode JSON. Instead the document is flattened: objects become paths, and
everything else (strings, numbers, booleans, null, and whole lists) is a leaf encoded
by Python's ``json``. A merge patch then becomes a list of hash operations the server
applies without understanding JSON at all.

- A path is the object keys joined by ``.``; each key is JSON-escaped and a literal
  ``.`` inside a key is written ``\\u002e``, so the first ``.`` always separates.
- Every object (except the root) has a marker field whose value is ``{}``; that is how
  an empty object survives and how a write knows a subtree must go without scanning.
- Bytes are UTF-8 with ``surrogatepass`` so even lone surrogates round-trip.

Operations sent to the server are triples ``(op, path, value)``:

    S path leaf   set a leaf (dropping the subtree if path was an object)
    O path ""     make path an object (replacing a leaf) unless it already is one
    D path ""     delete path and its subtree
    P name ""     cleanup: keep this top-level name ...
    C "" ""       ... and delete every top-level field not kept
    E "" ""       refuse (ABSENT) when there is no document
    H "" ""       record the history's patch against the history's own copy of the current
                  version, not the hash (a replace: the hash may be damaged)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import CorruptState, InvalidPatch

OBJECT = b"{}"
VERSION_FIELD = "_version"
UPDATED_FIELD = "_last_updated"
STORE_FIELDS = frozenset({VERSION_FIELD, UPDATED_FIELD})
MAX_DEPTH = 64

Op = tuple[bytes, bytes, bytes]
REBASE: Op = (b"H", b"", b"")
_encode_leaf = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode_key(key: str) -> str:
    """One object key as a path segment."""
    return _encode_leaf(key)[1:-1].replace(".", "\\u002e")


def decode_key(segment: str) -> str:
    """Invert :func:`encode_key`."""
    if "\\" not in segment:
        return segment
    decoded: str = json.loads(f'"{segment}"')
    return decoded


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def encode_leaf(value: Any, path: str) -> bytes:
    """A non-object JSON value as stored bytes; refuse what JSON cannot hold."""
    _check_value(value, path, depth=0)
    try:
        return _bytes(_encode_leaf(value))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidPatch(str(exc), path=path or "/") from None


def _check_value(value: Any, path: str, depth: int) -> None:
    """Refuse values json would silently change (non-str keys, NaN, tuples are fine)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidPatch(f"{value} is not a JSON number", path=path)
    if isinstance(value, list | tuple):
        if depth > MAX_DEPTH * 4:
            raise InvalidPatch(f"nested deeper than {MAX_DEPTH * 4} levels", path=path)
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, dict):
        if depth > MAX_DEPTH * 4:
            raise InvalidPatch(f"nested deeper than {MAX_DEPTH * 4} levels", path=path)
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidPatch(f"object keys must be strings, got {key!r}", path=path)
            _check_value(item, f"{path}.{key}", depth + 1)
    elif not (value is None or isinstance(value, str | int | float)):
        raise InvalidPatch(f"{type(value).__name__} is not a JSON value", path=path)


def _child(prefix: str | None, key: object) -> str:
    # The root has no path (None); "" is the path of a top-level key that is itself "".
    if not isinstance(key, str):
        raise InvalidPatch(f"object keys must be strings, got {key!r}", path=prefix or "/")
    return encode_key(key) if prefix is None else f"{prefix}.{encode_key(key)}"


def flatten(doc: Mapping[str, Any]) -> dict[str, bytes]:
    """A document as ``{path: stored bytes}``, parents before children."""
    flat: dict[str, bytes] = {}
    _flatten_into(flat, doc, None, 0)
    return flat


def _flatten_into(
    flat: dict[str, bytes], obj: Mapping[str, Any], prefix: str | None, depth: int
) -> None:
    if depth > MAX_DEPTH:
        raise InvalidPatch(f"objects nested deeper than {MAX_DEPTH} levels", path=prefix)
    for key, value in obj.items():
        path = _child(prefix, key)
        if isinstance(value, dict):
            flat[path] = OBJECT
            _flatten_into(flat, value, path, depth + 1)
        else:
            flat[path] = encode_leaf(value, path)


def unflatten(fields: Mapping[bytes, bytes], member_id: str) -> dict[str, Any]:
    """Rebuild a document from its stored fields; raise :class:`CorruptState` if they lie."""
    return _rebuild(list(fields.items()), member_id)


def unflatten_flat(flat: Sequence[bytes], member_id: str) -> dict[str, Any]:
    """:func:`unflatten` for a hash as the server sends it: field, value, field, value, ..."""
    return _rebuild(list(zip(flat[0::2], flat[1::2], strict=True)), member_id)


def unflatten_text(pairs: list[tuple[str, str]], member_id: str) -> dict[str, Any]:
    """:func:`unflatten` for fields already decoded to text."""
    return _rebuild(pairs, member_id)


def _rebuild(pairs: list[tuple[Any, Any]], member_id: str) -> dict[str, Any]:
    # The hot read path (every get): one sort, one C-speed json.loads for all the leaves,
    # and one dict lookup per field. A parent path is a prefix of its children's, so
    # sorting puts every object's marker before its fields (the server's field order is
    # not guaranteed) and keeps siblings in the same order on every read. The pairs are
    # all text or all bytes (as the server sent them: no decoding pass over every field).
    if not pairs:
        return {}
    pairs.sort()
    text = isinstance(pairs[0][0], str)
    marker, dot = ("{}", ".") if text else (OBJECT, b".")
    leaves = [value for _, value in pairs if value != marker]
    root: dict[str, Any] = {}
    objects: dict[Any, dict[str, Any]] = {}
    try:
        # Every leaf is a JSON text, so joined with commas they form one JSON array.
        joined = "[" + ",".join(leaves) + "]" if text else b"[" + b",".join(leaves) + b"]"
        decoded = json.loads(joined)
        if len(decoded) != len(leaves):
            raise ValueError("a field holds more than one JSON value")
        values = iter(decoded)
        for path, value in pairs:
            parent, found, name = path.rpartition(dot)
            key = name if text else name.decode("utf-8", "surrogatepass")
            if "\\" in key:
                key = decode_key(key)
            # The path "" is the top-level key "" itself: the root is where there is no dot.
            container = objects.get(parent) if found else root
            if container is None:
                raise ValueError(f"field {_shown(path)!r} has no parent object")
            if value == marker:
                objects[path] = container[key] = {}
            else:
                container[key] = next(values)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptState(member_id, str(exc) or "fields do not form a document") from None
    return root


def _shown(path: str | bytes) -> str:
    return path if isinstance(path, str) else path.decode("utf-8", "replace")


def decode_encoded_doc(payload: bytes, member_id: str) -> dict[str, Any]:
    """Decode the server's JSON object of ``{path: leaf}`` (history entries and replies)."""
    try:
        fields = json.loads(_text(payload))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptState(member_id, f"stored version is not JSON: {exc}") from None
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise CorruptState(member_id, "stored version is not an object of JSON leaves")
    return unflatten_text(list(fields.items()), member_id)


def patch_ops(patch: object) -> list[Op]:
    """An RFC 7386 merge patch as server operations (null deletes)."""
    if not isinstance(patch, dict):
        raise InvalidPatch(f"a patch must be a JSON object, got {type(patch).__name__}")
    for key in sorted(STORE_FIELDS & patch.keys()):
        raise InvalidPatch(f"{key} is set by the store only", path=key)
    ops: list[Op] = []
    _patch_into(ops, patch, None, 0)
    return ops


def _patch_into(ops: list[Op], patch: Mapping[str, Any], prefix: str | None, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidPatch(f"objects nested deeper than {MAX_DEPTH} levels", path=prefix)
    for key, value in patch.items():
        path = _child(prefix, key)
        if value is None:
            ops.append((b"D", _bytes(path), b""))
        elif isinstance(value, dict):
            ops.append((b"O", _bytes(path), b""))
            _patch_into(ops, value, path, depth + 1)
        else:
            ops.append((b"S", _bytes(path), encode_leaf(value, path)))


def replace_ops(old: Mapping[str, Any], new: object) -> list[Op]:
    """Operations turning document ``old`` into ``new`` exactly (store fields excluded)."""
    if not isinstance(new, dict):
        raise InvalidPatch(f"a document must be a JSON object, got {type(new).__name__}")
    for key in STORE_FIELDS & new.keys():
        if new[key] != old.get(key):
            raise InvalidPatch(f"{key} is set by the store only", path=key)
    before = flatten({k: v for k, v in old.items() if k not in STORE_FIELDS})
    after = flatten({k: v for k, v in new.items() if k not in STORE_FIELDS})
    ops: list[Op] = [(b"D", _bytes(p), b"") for p in before if p not in after]
    for path, value in after.items():
        if before.get(path) != value:
            is_object = value == OBJECT
            ops.append((b"O" if is_object else b"S", _bytes(path), b"" if is_object else value))
    return ops


def cleanup_ops(preserve: tuple[str, ...] | list[str] | frozenset[str]) -> list[Op]:
    """Keep only the named top-level fields (plus the store's own)."""
    ops: list[Op] = []
    for name in preserve:
        if not isinstance(name, str):
            raise InvalidPatch(f"preserved field names must be strings, got {name!r}")
        ops.append((b"P", _bytes(encode_key(name)), b""))
    ops.append((b"C", b"", b""))
    return ops


def document_size(flat: Mapping[str, bytes]) -> int:
    """The bytes a flattened document occupies in the hash (paths plus values)."""
    return sum(len(_bytes(path)) + len(value) for path, value in flat.items())
