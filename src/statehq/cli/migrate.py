"""``statehq migrate --from URL``: import the sessions the seed project left in Redis.

The legacy database is read with SCAN, never KEYS, and never changed unless
``--delete-source``; each legacy session becomes one statehq session with its remaining
TTL, and every legacy field that could not be carried over is listed with the reason.
The layouts, the mapping and the import live in :mod:`statehq.migrate`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from ..errors import ConfigError, StoreUnavailable
from ..flows import bot_stages, open_bot
from ..migrate.importer import KeyReport, Migration, Outcome
from ..migrate.pieces import BotOutline
from ..migrate.source import LegacySource, check_url
from ..redact import redact_text
from ..store.connection import redact_url
from .common import MISSING, OK, USAGE, Context, SubParsers, fail, print_json

NAMES = frozenset({"migrate"})

HELP = """\
Import the sessions the seed project left in Redis, in any of its older layouts:
  channel:<wa_id>             one JSON document per user (channel, auth.token, dashboard,
                              active_account_id, component_data)
  <mobile>, <mobile>_stage,   per-field cache keys, also behind Django's cache prefix
  _option, _direction,        (":1:263771234567_stage"); pickled values are read as plain
  _jwt_token                  data only, never as code
  user_state:<id>             one JSON document (stage, option, jwt_token, profile,
                              current_account, flow_data)
Each legacy session becomes one statehq session keeping its remaining TTL: member:<id>
with the number bound to it when the data names a signed-in member, else
whatsapp:<number>. One line per legacy session says what happened, then one line per
field that could not be mapped and why. The source is read with SCAN, never KEYS, and
changed only by --delete-source. Safe to run twice: the second run writes nothing, and a
statehq session that has moved on since is never replaced."""

EPILOG = """\
examples:
  statehq migrate --from redis://old-host:6379/0 --dry-run
  statehq migrate --from redis://old-host:6379/0
  statehq migrate --from redis://old-host:6379/0 --match ':1:*' --delete-source
  statehq migrate --from redis://old-host:6379/0 --json | jq .summary

exit status: 0 when every legacy session was migrated or already had been (in a dry
run: would be); 1 when any was skipped (the line says why) or the legacy server cannot
be reached; 2 for a bad argument, such as a --from that is not a Redis URL."""


def add_commands(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add ``migrate`` to the grammar."""
    migrate = commands.add_parser(
        "migrate",
        parents=[common],
        help="import sessions left in the seed project's older Redis layouts",
        description=HELP,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate.add_argument(
        "--from",
        dest="source",
        metavar="URL",
        required=True,
        type=_source_url,
        help="the legacy Redis/Valkey: redis://host:port/db, unix://, redis+cluster://, "
        "redis+sentinel://",
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="read and map everything, write nothing"
    )
    migrate.add_argument(
        "--delete-source",
        action="store_true",
        help="delete each legacy key once its session is in statehq and reads back the same",
    )
    migrate.add_argument(
        "--match",
        type=_pattern,
        default="*",
        metavar="GLOB",
        help="only legacy keys matching this SCAN pattern (default '*'), e.g. ':1:*'",
    )


def _source_url(text: str) -> str:
    try:
        check_url(text)
    except ConfigError as bad:  # argparse names the option itself
        raise argparse.ArgumentTypeError(str(bad).removeprefix("--from").lstrip(": ")) from None
    return text


def _pattern(text: str) -> str:
    if not text or text != text.strip():
        raise argparse.ArgumentTypeError("a SCAN pattern such as ':1:*', without spaces around")
    return text


def run(context: Context, args: argparse.Namespace) -> int:
    """Carry out ``migrate``; returns the exit status."""
    if args.dry_run and args.delete_source:
        return fail("--dry-run writes and deletes nothing; leave out --delete-source", USAGE)
    with open_bot(context.settings) as bot:
        steps = {flow.id: tuple(step.name for step in flow.steps) for flow in bot.flows}
        outline = BotOutline(bot_stages(bot), steps)
    try:
        with LegacySource(args.source) as source:
            migration = Migration(
                source,
                context.store,
                outline,
                dry_run=args.dry_run,
                delete_source=args.delete_source,
                progress=_progress if sys.stderr.isatty() else None,
            )
            if sys.stderr.isatty():
                print("reading the legacy keys...", end="\r", file=sys.stderr, flush=True)
            reports = migration.run(args.match)
    except StoreUnavailable as unreachable:
        return fail(redact_text(str(unreachable)), MISSING)
    summary = _summary(reports, args.dry_run)
    if args.json:
        print_json({"keys": [report.as_dict() for report in reports], "summary": summary})
    else:
        _print_human(context, args, reports, summary)
    return MISSING if summary["skipped"] else OK


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else "\r"
    print(f"migrating {done:,}/{total:,} legacy sessions", end=end, file=sys.stderr, flush=True)


def _summary(reports: list[KeyReport], dry_run: bool) -> dict[str, Any]:
    counts = Counter(report.outcome for report in reports)
    return {
        "sessions": len(reports),
        "migrated": counts[Outcome.MIGRATED],
        "unchanged": counts[Outcome.UNCHANGED],
        "would_migrate": counts[Outcome.WOULD_MIGRATE],
        "skipped": counts[Outcome.SKIPPED],
        "unmapped_fields": sum(len(report.unmapped) for report in reports),
        "deleted_keys": sum(len(report.deleted) for report in reports),
        "dry_run": dry_run,
    }


def _print_human(
    context: Context, args: argparse.Namespace, reports: list[KeyReport], summary: dict[str, Any]
) -> None:
    dry = " (dry run: nothing is written)" if args.dry_run else ""
    print(f"from {redact_url(args.source)} into the {context.where}{dry}")
    for report in reports:
        for line in report_lines(report):
            print(redact_text(line))
    print(summary_line(summary))


def report_lines(report: KeyReport) -> list[str]:
    """One line for the legacy session, then one per field that was not mapped."""
    if report.outcome is Outcome.SKIPPED:
        line = f"{report.source}: skipped: {report.reason}"
    else:
        left = "no expiry" if report.ttl is None else f"{report.ttl:.0f} s left"
        bound = f", bound {', '.join(report.bindings)}" if report.bindings else ""
        line = f"{report.source}: {report.outcome.value} -> {report.session} ({left}{bound})"
    lines = [line]
    lines += [f"  not mapped: {item.field}: {item.why}" for item in report.unmapped]
    if report.deleted:
        lines.append(f"  deleted {', '.join(report.deleted)}")
    return lines


def summary_line(summary: dict[str, Any]) -> str:
    """The closing line: how many legacy sessions ended how."""
    done = [
        f"{summary[name]} {label}"
        for name, label in (
            ("migrated", "migrated"),
            ("unchanged", "unchanged"),
            ("would_migrate", "would migrate"),
            ("skipped", "skipped"),
        )
        if summary[name]
    ]
    if not summary["sessions"]:
        return "no legacy sessions found"
    return (
        f"{summary['sessions']} legacy sessions: {', '.join(done)}; "
        f"{summary['unmapped_fields']} fields not mapped; "
        f"{summary['deleted_keys']} legacy keys deleted"
    )
