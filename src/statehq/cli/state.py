"""``statehq state ...``: one member's state, its past, and repairs.

    statehq state show ID              document, version, TTL, flow, channels, queues
    statehq state history ID           every version kept: stage, flow/step, what changed
    statehq state diff ID V1 V2        what changed between two versions
    statehq state update ID PATCH      a JSON merge patch (validated, versioned, audited)
    statehq state rollback ID V        restore version V as a new version
    statehq state recover ID           repair corrupt or invalid state from history
    statehq state reset ID             start over, keeping the member's identity
    statehq state audit ID             the member's trail (see :mod:`.audit`)

Repairs (rollback, recover, reset) show what they will do and ask on a terminal unless
``--yes``; each is audited with the operator's name (``STATEHQ_OPERATOR``, else the login
user and host) beside ``--reason``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
from typing import Any

from ..digits import is_digits
from ..errors import CorruptState, VersionNotFound
from ..redact import redact_text
from ..state import StateManager
from ..state.diffs import Change, changes, summarize
from ..state.inspect import SessionReport, inspect
from ..state.lookup import HandleResolver, Located
from ..store import HistoryEntry
from . import audit
from .common import MISSING, OK, SubParsers, fail, print_json, whole_number
from .located import ID_FORMS, run_on_member

STATE_EXAMPLES = f"""{ID_FORMS}

examples:
  statehq state show 263771234567
  statehq state history whatsapp:263771234567
  statehq state diff member:m-7 5 7
  statehq state rollback member:m-7 5 --reason "undo the bad amount" --yes
  statehq --json state show @tendai_moyo
"""


def add_state_actions(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    """The ``state`` actions (also what the shell accepts without the word ``state``)."""

    def action(name: str, help: str, *ids: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(
            name,
            parents=[common],
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=STATE_EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for arg in ids:
            parser.add_argument(arg, help="the member (see ID below)" if arg == "id" else None)
        return parser

    action("show", "print a member's document, version, TTL, flow, channels and queues", "id")
    action("history", "list the versions kept, with stage, flow/step and what changed", "id")
    diff = action("diff", "show what changed between two versions", "id")
    diff.add_argument("v1", type=_version_arg, help="the older version")
    diff.add_argument("v2", type=_version_arg, help="the newer version")
    upd = action("update", "apply a JSON merge patch (null deletes a field)", "id")
    upd.add_argument("patch", type=_json_arg, help='e.g. \'{"flow_data": {"step": "amount"}}\'')
    upd.add_argument("--expect", type=whole_number(0), default=None, help="only if at this version")
    rb = action("rollback", "restore a version from history as a new version", "id")
    rb.add_argument("version", type=_version_arg, help="the version to restore")
    rc = action("recover", "repair corrupt or invalid state from history", "id")
    rs = action("reset", "start the session over, keeping member id and channel", "id")
    for parser in (upd, rb, rc, rs):
        parser.add_argument("--reason", default="cli", help="recorded in the audit trail")
    au = action("audit", "a member's audit trail, oldest first", "id")
    audit.add_audit_options(au)


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None


def _version_arg(text: str) -> int:
    if not is_digits(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a version is a whole number from 1, got {text!r}")
    return int(text)


def operator_name() -> str:
    """Who is at the keyboard, for the audit trail: ``STATEHQ_OPERATOR`` or user@host."""
    named = os.environ.get("STATEHQ_OPERATOR", "").strip()
    if named:
        return named[:80]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def audited_reason(reason: str) -> str:
    """``--reason`` with the operator named, as recorded in the trail."""
    return f"{reason} (operator {operator_name()})"


# -- running --------------------------------------------------------------------------------


def run_state(
    manager: StateManager, args: argparse.Namespace, *, handles: HandleResolver | None = None
) -> int:
    """Carry out one ``state`` action; returns the exit status.

    ``handles`` resolves ``@handle`` IDs (the bot's ``member_for_handle``), if there is one.
    """
    action = audit.show_trail if args.action == "audit" else ACTIONS[args.action]
    return run_on_member(manager, args, action, handles=handles)


def _show(manager: StateManager, located: Located, args: argparse.Namespace) -> int:
    report = inspect(manager, located)
    broken = manager.validator.violations(report.raw) if report.raw is not None else []
    if args.json:
        print_json({**report.as_dict(), "violations": [str(v) for v in broken]})
    else:
        _print_report(report)
    if broken:
        rules = "; ".join(str(v) for v in broken[:3])
        print(
            f"statehq: this document breaks the state rules ({rules}); `statehq state "
            f"recover {located.asked}` repairs it from history",
            file=sys.stderr,
        )
    if report.document is None:
        return fail(f"no live session for {located.asked} ({report.status})", MISSING)
    return OK


def _print_report(report: SessionReport) -> None:
    located = report.located
    if located.asked == located.key:
        via = ""
    elif located.asked in located.via:
        via = f"  (found by {located.via})"
    else:
        via = f"  (found by {located.via}: {located.asked})"
    print(f"{located.key}{via}")
    if report.document is None:
        print(f"  no live session ({report.status})")
    else:
        ttl = f"expires in {_duration(report.ttl)}" if report.ttl else "no expiry"
        print(f"  version {report.version}, {ttl}")
        where = " / ".join(part for part in (report.flow, report.step) if part)
        print(f"  stage {report.stage or '-'}" + (f", flow {where}" if where else ", no flow"))
        if report.refused_input:
            error, attempts = report.refused_input
            print(f"  last answer refused ({attempts} attempts in this step): {redact_text(error)}")
    if report.bound_channels:
        print(f"  bound channels: {', '.join(report.bound_channels)}")
    for waiting in report.waiting:
        lease = f"held by {waiting.lease}" if waiting.lease else "free"
        print(
            f"  {waiting.channel}: {waiting.backlog} queued in the inbox, {waiting.pending} "
            f"replies pending, {waiting.dead} dead letters, lease {lease}"
        )
    if report.document is not None:
        print("document:")
        print(json.dumps(report.document, indent=2, ensure_ascii=False, sort_keys=True))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _versions(manager: StateManager, key: str) -> list[HistoryEntry]:
    """The live version and every version in history, newest first (a live document
    that cannot be read is left out: its history is what repairs it)."""
    try:
        snap = manager.store.get(key)
    except CorruptState:
        snap = None
    entries = list(manager.history(key)[1])
    if snap is not None and all(entry.version != snap.version for entry in entries):
        live = HistoryEntry(snap.version, snap.doc.get("_last_updated"), snap.doc)
        entries.insert(0, live)
    return sorted(entries, key=lambda entry: entry.version, reverse=True)


def _history(manager: StateManager, located: Located, args: argparse.Namespace) -> int:
    entries = _versions(manager, located.key)
    rows: list[dict[str, Any]] = []
    for newer, older in zip(entries, [*entries[1:], None], strict=False):
        changed = changes(older.doc, newer.doc) if older is not None else []
        flow = newer.doc.get("flow_data") if isinstance(newer.doc.get("flow_data"), dict) else {}
        rows.append(
            {
                "version": newer.version,
                "last_updated": newer.last_updated,
                "stage": newer.doc.get("stage"),
                "flow": (flow or {}).get("id"),
                "step": (flow or {}).get("step"),
                "changes": [c.as_dict() for c in changed] if older is not None else None,
            }
        )
    if args.json:
        print_json({"key": located.key, "versions": rows})
        return OK if rows else MISSING
    if not rows:
        status = manager.store.status(located.key).value
        return fail(f"no live session for {located.asked} ({status}); no versions kept", MISSING)
    print(f"{located.key}: {len(rows)} versions, newest first")
    for row in rows:
        where = "/".join(str(part) for part in (row["flow"], row["step"]) if part)
        what = _changed_paths(row["changes"])
        when, stage = row["last_updated"] or "-", row["stage"] or "-"
        print(f"  v{row['version']:<3} {when:<27}  {stage:<8} {where or '-':<18} {what}")
    return OK


def _changed_paths(changed: list[dict[str, Any]] | None) -> str:
    if changed is None:
        return "(oldest kept)"
    if not changed:
        return "(no change)"
    return "changed: " + ", ".join(summarize([c["path"] for c in changed]))


def _diff(manager: StateManager, located: Located, args: argparse.Namespace) -> int:
    entries = {entry.version: entry for entry in _versions(manager, located.key)}
    absent = [v for v in (args.v1, args.v2) if v not in entries]
    if absent:
        held = ", ".join(str(v) for v in sorted(entries)) or "none"
        missing = " and ".join(str(v) for v in absent)
        return fail(f"{located.key} has no version {missing} (held: {held})", MISSING)
    changed = changes(entries[args.v1].doc, entries[args.v2].doc)
    if args.json:
        print_json(
            {
                "key": located.key,
                "from": args.v1,
                "to": args.v2,
                "changes": [c.as_dict() for c in changed],
            }
        )
        return OK
    print(f"{located.key}: v{args.v1} -> v{args.v2}, {len(changed)} change(s)")
    for change in changed:
        print(redact_text(_describe(change)))
    return OK


def _describe(change: Change) -> str:
    sides = change.as_dict()  # redacted

    def shown(side: str) -> str:
        return json.dumps(sides[side], ensure_ascii=False, sort_keys=True)

    if change.kind == "added":
        return f"  + {change.path} = {shown('after')}"
    if change.kind == "removed":
        return f"  - {change.path} (was {shown('before')})"
    return f"  ~ {change.path}: {shown('before')} -> {shown('after')}"


def _update(manager: StateManager, located: Located, args: argparse.Namespace) -> int:
    key, snap = manager.update(
        located.named, args.patch, expect=args.expect, reason=audited_reason(args.reason)
    )
    return _said(args, f"{key} is now at version {snap.version}", key=key, version=snap.version)


def _rollback(manager: StateManager, located: Located, args: argparse.Namespace) -> int:
    key, snap = manager.show(located.named)
    target = next((e for e in _versions(manager, key) if e.version == args.version), None)
    if target is None:
        held = sorted(e.version for e in _versions(manager, key))
        raise VersionNotFound(key, args.version, held)
    changed = changes(snap.doc, target.doc)
    plan = f"roll {key} back from version {snap.version} to the content of version {args.version}"
    if not _confirmed(args, plan, changed):
        return fail("nothing was changed", MISSING)
    done = manager.rollback(located.named, args.version, reason=audited_reason(args.reason))
    said = f"restored version {args.version} of {key} as version {done.version}"
    return _said(args, said, key=key, restored=args.version, version=done.version)


def _recover(manager: StateManager, located: Located, args: argparse.Namespace) -> int:
    plan = f"check {located.key} and repair it from history if it is corrupt or invalid"
    if not _confirmed(args, plan, []):
        return fail("nothing was changed", MISSING)
    result = manager.recover(located.named, reason=audited_reason(args.reason))
    key = located.key
    if result.outcome == "healthy":
        said = f"{key} is healthy at version {result.version}; nothing to do"
    else:
        said = f"{key} {result.outcome} at version {result.version}: {redact_text(result.problem)}"
    return _said(
        args,
        said,
        key=key,
        outcome=result.outcome,
        version=result.version,
        restored_from=result.restored_from,
        problem=redact_text(result.problem),
    )


def _reset(manager: StateManager, located: Located, args: argparse.Namespace) -> int:
    snap = manager.store.get(located.key)
    where = f" (now at version {snap.version}, stage {snap.doc.get('stage')})" if snap else ""
    plan = f"reset {located.key}{where} to stage INIT, keeping member id and channel"
    if not _confirmed(args, plan, []):
        return fail("nothing was changed", MISSING)
    done = manager.reset(located.named, reason=audited_reason(args.reason))
    said = f"{located.key} reset to stage INIT at version {done.version} (identity kept)"
    return _said(args, said, key=located.key, version=done.version)


def _confirmed(args: argparse.Namespace, plan: str, changed: list[Change]) -> bool:
    """Ask on a terminal unless ``--yes``; scripts (no terminal) are not asked."""
    if args.yes or not sys.stdin.isatty():
        return True
    print(f"This will {plan}.")
    for change in changed[:20]:
        print(redact_text(_describe(change)))
    try:
        answer = input("Go ahead? [y/N] ")
    except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C: a no
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def _said(args: argparse.Namespace, text: str, **fields: Any) -> int:
    if args.json:
        print_json(fields)
    else:
        print(text)
    return OK


ACTIONS = {
    "show": _show,
    "history": _history,
    "diff": _diff,
    "update": _update,
    "rollback": _rollback,
    "recover": _recover,
    "reset": _reset,
}
