"""``statehq scan`` and ``statehq stats``: find sessions, and see the whole store at a glance.

``scan`` lists live sessions - stage, flow and step, version, time left - filtered by
stage, flow or how soon they expire, a page at a time (``--limit``, then ``--cursor`` to
go on). ``stats`` counts the whole store: sessions by stage, flow and time left, leases
held, queued updates, dead letters, audit volume and bound channels.

Both walk the store with SCAN (every master of a Cluster), never KEYS, and read each
page of keys in one round trip: see :mod:`statehq.store.survey`.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..digits import is_digits
from ..errors import InvalidInput
from ..store import ScanPage, SessionSummary, StoreSurvey
from ..store.survey import NO_EXPIRY, TTL_BUCKETS, UNREADABLE, parse_cursor
from .common import MISSING, OK, USAGE, Context, SubParsers, fail, print_json

NAMES = frozenset({"scan", "stats"})

SCAN_HELP = """\
List live sessions, one line each: key, stage, flow/step, version, time left. Filters
combine; the scan stops once --limit sessions matched, and prints on stderr the
--cursor that continues it (with --json, "cursor" is "0" once the whole store was
scanned). SCAN, never KEYS: the server is never blocked."""

SCAN_EPILOG = """\
examples:
  statehq scan                                    the first 100 sessions
  statehq scan --stage MENU --limit 20
  statehq scan --flow offer --expiring-within 60  offers about to time out
  statehq scan --stage "(unreadable)"             documents recovery should look at
  statehq scan --json | jq -r '.sessions[].key'
  statehq scan --cursor 0:4096~d2hhdHNhcHA6MjYz   continue where a scan stopped

exit status: 0 when sessions were listed; 1 when none matched (with --json the empty
result is still printed); 2 for a bad argument, such as a stage the bot does not have."""

STATS_HELP = """\
Count the whole store: sessions by stage, by flow and by time left, leases held,
updates queued and from how many senders, dead letters, audit volume (every session's
stream and the global tail) and channels bound to a member. One pass of SCAN over
every key; a progress line on stderr when it takes a while."""

STATS_EPILOG = """\
examples:
  statehq stats
  statehq stats --json | jq .by_stage

exit status: 0 (an empty store is counted as zeros); 1 when the store cannot be read."""

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_commands(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add ``scan`` and ``stats`` to the grammar."""
    scan = commands.add_parser(
        "scan",
        parents=[common],
        help="list live sessions by stage, flow or time left (SCAN, never KEYS)",
        description=SCAN_HELP,
        epilog=SCAN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument("--stage", type=_name, help=f"only sessions in this stage (or {UNREADABLE})")
    scan.add_argument("--flow", type=_name, help="only sessions inside this flow (its id)")
    scan.add_argument(
        "--handle", type=_handle, help="only sessions whose current account has this @handle"
    )
    scan.add_argument(
        "--expiring-within",
        type=_duration,
        metavar="TIME",
        help="only sessions with at most this long to live: 90, 90s, 5m, 1h, 1d",
    )
    scan.add_argument(
        "--limit", type=_limit, default=100, help="stop after this many sessions (default 100)"
    )
    scan.add_argument(
        "--cursor", type=_cursor, default="0", help="continue a scan (the cursor it printed)"
    )
    commands.add_parser(
        "stats",
        parents=[common],
        help="count sessions, leases, queues, dead letters and audit over the whole store",
        description=STATS_HELP,
        epilog=STATS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def run(context: Context, args: argparse.Namespace) -> int:
    """Carry out ``scan`` or ``stats``; returns the exit status."""
    if args.command == "scan":
        return _scan(context, args)
    return _stats(context, args)


# -- arguments -------------------------------------------------------------------------


def _name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _limit(text: str) -> int:
    if not is_digits(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of sessions, 1 or more; got {text!r}"
        )
    return int(text)


def _duration(text: str) -> float:
    if text.startswith("-"):
        raise argparse.ArgumentTypeError(f"a time left cannot be negative; got {text!r}")
    matched = _DURATION.fullmatch(text.strip().lower())
    if matched is None:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (seconds, or a number with s, m, h or d: 90, 5m, 1h)"
        )
    number, unit = matched.groups()
    return float(number) * _UNIT_SECONDS[unit]


def _cursor(text: str) -> str:
    try:
        parse_cursor(text)
    except InvalidInput as bad:
        raise argparse.ArgumentTypeError(str(bad)) from None
    return text


def _undeclared(context: Context, args: argparse.Namespace) -> str | None:
    """Why ``--stage``/``--flow`` names nothing the bot declares (a typo would only ever
    find nothing), or None."""
    if args.stage is None and args.flow is None:
        return None
    stages = context.manager.stages
    if args.stage is not None and args.stage != UNREADABLE and args.stage not in stages:
        names = ", ".join(stages.names)
        return f"--stage {args.stage!r} is not a stage of the bot; its stages: {names}"
    if args.flow is not None and args.flow not in stages.flows:
        names = ", ".join(sorted(stages.flows)) or "none"
        return f"--flow {args.flow!r} is not a flow of the bot; its flows: {names}"
    return None


# -- scan ------------------------------------------------------------------------------


def _scan(context: Context, args: argparse.Namespace) -> int:
    refusal = _undeclared(context, args)
    if refusal:
        return fail(refusal, USAGE)
    page = context.store.scan_sessions(
        stage=args.stage,
        flow=args.flow,
        expiring_within=args.expiring_within,
        handle=args.handle,
        limit=args.limit,
        cursor=args.cursor,
    )
    if args.json:
        print_json(page.as_dict())
    else:
        for line in session_lines(page.sessions):
            print(line)
        _say_where_next(page, args)
    if not page.sessions:
        return fail(_nothing_found(page, args), MISSING)
    return OK


def _nothing_found(page: ScanPage, args: argparse.Namespace) -> str:
    filters = _filters(args, with_limit=False)
    later = " after that cursor" if args.cursor != "0" else ""
    if filters:
        return f"no session matches{filters}{later} ({page.examined:,} examined)"
    return f"no live sessions{later} in the store"


def session_lines(sessions: list[SessionSummary]) -> list[str]:
    """One aligned line per session: key, stage, flow/step, version, time left."""
    rows = [
        (
            s.key,
            s.stage,
            f"{s.flow}/{s.step or '?'}" if s.flow else "-",
            f"v{s.version}" if s.version is not None else "v?",
            time_left(s.ttl),
        )
        for s in sessions
    ]
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(4)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + f"  {row[4]}"
        for row in rows
    ]


def time_left(ttl: float | None) -> str:
    """A TTL as a person reads it: ``42s``, ``4m07s``, ``3h05m``, ``2d03h``, ``no expiry``."""
    if ttl is None:
        return "no expiry"
    seconds = round(ttl)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _handle(text: str) -> str:
    handle = text.removeprefix("@").lower()
    if not handle or any(c.isspace() for c in handle):
        raise argparse.ArgumentTypeError(f"a handle is @ and a name without spaces, got {text!r}")
    return handle


def _filters(args: argparse.Namespace, *, with_limit: bool = True) -> str:
    """The filters given, as command-line options (for messages and the next command)."""
    given = [
        f"--stage {shlex.quote(args.stage)}" if args.stage is not None else "",
        f"--flow {shlex.quote(args.flow)}" if args.flow is not None else "",
        f"--handle @{shlex.quote(args.handle)}" if args.handle is not None else "",
        f"--expiring-within {_seconds(args.expiring_within)}"
        if args.expiring_within is not None
        else "",
        f"--limit {args.limit}" if with_limit and args.limit != 100 else "",
    ]
    return "".join(f" {option}" for option in given if option)


def _seconds(value: float) -> str:
    """Seconds as ``--expiring-within`` reads them back (never ``1e+06``)."""
    return f"{value:.0f}" if value.is_integer() else str(value)


def _say_where_next(page: ScanPage, args: argparse.Namespace) -> None:
    if not page.sessions:
        return
    said = f"{len(page.sessions):,} session(s), {page.examined:,} examined"
    if page.complete:
        print(f"statehq: {said}; the scan is complete", file=sys.stderr)
    else:
        more = f"statehq scan{_filters(args)} --cursor {page.cursor}"
        print(f"statehq: {said}; more: {more}", file=sys.stderr)


# -- stats -----------------------------------------------------------------------------


class ProgressLine:
    """A "surveying..." line on stderr, redrawn in place, once a survey takes a while.

    Only on a terminal: piped or captured stderr gets nothing, so logs stay clean.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.clock = clock
        self.started = clock()
        self.after = after
        self.shown = False
        self._drawn_at = -1.0

    def __call__(self, keys: int, sessions: int) -> None:
        """Tell how far the survey got (redrawn at most five times a second)."""
        now = self.clock()
        if not self.enabled or now - self.started < self.after or now - self._drawn_at < 0.2:
            return
        self.stream.write(f"\rsurveying: {keys:,} keys, {sessions:,} sessions so far")
        self.stream.flush()
        self.shown, self._drawn_at = True, now

    def clear(self) -> None:
        """Erase the line, if one was drawn, before the results are printed."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def _stats(context: Context, args: argparse.Namespace) -> int:
    progress = ProgressLine()
    try:
        survey = context.store.survey(progress)
    finally:
        progress.clear()
    if args.json:
        print_json({"store": context.where, **survey.as_dict()})
    else:
        print(context.where)
        for line in stats_lines(survey):
            print(line)
    return OK


def stats_lines(survey: StoreSurvey) -> list[str]:
    """The human form of ``stats``."""
    in_flows = sum(survey.by_flow.values())
    flows = {**survey.by_flow, "(no flow)": survey.sessions - in_flows}
    buckets = [name for name, _ in TTL_BUCKETS] + [NO_EXPIRY]
    return [
        f"sessions        {survey.sessions:,}",
        f"  by stage      {_counts(survey.by_stage)}",
        f"  by flow       {_counts(flows) if survey.sessions else '-'}",
        f"  time left     {', '.join(f'{b} {survey.ttl[b]:,}' for b in buckets)}",
        f"leases held     {survey.leases:,}",
        f"queued          {survey.updates_queued:,} update(s) from {survey.senders_waiting:,} "
        f"sender(s)",
        f"dead letters    {survey.dead_letters:,} from {survey.dead_letter_senders:,} sender(s)",
        f"audit           {survey.audit_entries:,} entries in {survey.audit_streams:,} session "
        f"stream(s); {survey.audit_tail_entries:,} in the global tail",
        f"bound channels  {survey.routes:,}",
        f"({survey.keys_examined:,} keys examined)",
    ]


def _counts(counts: dict[str, int]) -> str:
    """``MENU 800, INIT 300``: largest first, or ``-`` when there is nothing."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {count:,}" for name, count in ordered if count) or "-"
