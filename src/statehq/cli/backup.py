"""``statehq backup FILE`` and ``statehq restore FILE``: every session as JSON Lines, and back.

The file format, what is consistent and what restoring refuses are described in
:mod:`statehq.state.backup`; this module is the command line around it: arguments,
the progress bar, the summary, the exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TextIO

from ..errors import InvalidInput
from ..state.backup import BackupSummary, RestoreSummary, restore_backup, write_backup
from .common import MISSING, OK, USAGE, Context, SubParsers, fail, print_json
from .state import audited_reason

NAMES = frozenset({"backup", "restore"})

STDIO = "-"
SHOWN_PROBLEMS = 20
"""Problems listed on stderr at most; ``--json`` lists every one."""

BACKUP_HELP = """\
Write every live session to FILE as JSON Lines: a header line, then one line per session
with its document, version, time left, history and bound channels (and its audit trail
with --with-audit). Each session is read in one atomic call, so every line is consistent
while the bot keeps writing. The file is written beside FILE under a temporary name and
renamed when complete, readable by you only: it holds members' backend tokens."""

BACKUP_EPILOG = """\
examples:
  statehq backup sessions.jsonl
  statehq backup sessions.jsonl --with-audit --force    replace yesterday's
  statehq backup - | gzip > sessions.jsonl.gz

exit status: 0 when every session was written; 1 when FILE exists (without --force),
cannot be written, or some sessions could not be read (the rest are in the file);
2 for a bad argument."""

RESTORE_HELP = """\
Put the sessions of a backup FILE back: document, version, history, time left, bound
channels (and audit entries, if the backup has them). Safe to run twice: a session
already as in the backup is left alone. A session that is newer in the store than in
the backup (or different at the same version) is not touched unless --force, which
asks first on a terminal (--yes does not ask). A line that cannot be restored is
skipped and reported with its line number."""

RESTORE_EPILOG = """\
examples:
  statehq restore sessions.jsonl
  statehq restore sessions.jsonl --force --yes   the backup wins over newer sessions
  gunzip -c sessions.jsonl.gz | statehq restore -

exit status: 0 when every session is as in the backup; 1 when FILE is missing or not a
statehq backup, or when some session or line was not restored (the message says which
and why); 2 for a bad argument."""


def add_commands(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add ``backup`` and ``restore`` to the grammar."""
    backup = commands.add_parser(
        "backup",
        parents=[common],
        help="write every session to a JSON Lines file",
        description=BACKUP_HELP,
        epilog=BACKUP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backup.add_argument("file", type=_file, metavar="FILE", help="where to write; - for stdout")
    backup.add_argument(
        "--with-audit", action="store_true", help="include every session's audit trail"
    )
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    restore = commands.add_parser(
        "restore",
        parents=[common],
        help="put the sessions of a backup file back",
        description=RESTORE_HELP,
        epilog=RESTORE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restore.add_argument("file", type=_file, metavar="FILE", help="the backup; - for stdin")
    restore.add_argument(
        "--force", action="store_true", help="replace sessions that are newer in the store"
    )


def _file(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("FILE must not be empty (use - for stdin/stdout)")
    return text


def run(context: Context, args: argparse.Namespace) -> int:
    """Carry out ``backup`` or ``restore``; returns the exit status."""
    if args.command == "backup":
        return _backup(context, args)
    return _restore(context, args)


# -- backup ------------------------------------------------------------------------------


def _backup(context: Context, args: argparse.Namespace) -> int:
    if args.file == STDIO:
        if args.json:
            return fail(
                "--json prints the summary on stdout, where `backup -` writes the backup; "
                "name a FILE, or leave out --json",
                USAGE,
            )
        summary = _write(context, args, sys.stdout.buffer)
        return _report_backup(context, args, summary, sys.stderr)
    target = Path(args.file)
    if target.is_dir():
        return fail(
            f"{target} is a directory; name the file, e.g. {target / 'sessions.jsonl'}", USAGE
        )
    if target.exists() and not args.force:
        return fail(f"{target} exists; choose another name, or pass --force to replace it")
    if not target.parent.is_dir():
        return fail(f"cannot write {target}: the directory {target.parent} does not exist")
    try:
        with _replacing(target) as stream:
            summary = _write(context, args, stream)
    except OSError as exc:
        return fail(f"cannot write {target}: {exc.strerror or exc}")
    return _report_backup(context, args, summary, sys.stdout)


def _write(context: Context, args: argparse.Namespace, stream: IO[bytes]) -> BackupSummary:
    with ProgressBar("backing up") as bar:
        return write_backup(context.store, stream, with_audit=args.with_audit, progress=bar)


@contextlib.contextmanager
def _replacing(target: Path) -> Iterator[IO[bytes]]:
    """A file only its owner reads, beside ``target``, that becomes ``target`` once
    complete: a failed backup never leaves a truncated file under the real name."""
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".partial", dir=target.parent
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _report_backup(
    context: Context, args: argparse.Namespace, summary: BackupSummary, out: TextIO
) -> int:
    if args.json:
        print_json({"file": args.file, "store": context.where, **summary.as_dict()})
    else:
        bound = f"{summary.bindings:,} bound channel{_s(summary.bindings)}"
        audit = f", {summary.audit_entries:,} audit entries" if summary.with_audit else ""
        where = "stdout" if args.file == STDIO else args.file
        print(
            f"backed up {summary.sessions:,} session{_s(summary.sessions)} ({bound}{audit}) "
            f"from {context.where} to {where}",
            file=out,
        )
    if summary.unreadable:
        listed = ", ".join(summary.unreadable[:SHOWN_PROBLEMS])
        more = len(summary.unreadable) - SHOWN_PROBLEMS
        return fail(
            f"{len(summary.unreadable)} session(s) could not be read and are not in the "
            f"backup: {listed}{f' and {more} more' if more > 0 else ''} "
            f"(statehq state recover KEY repairs one)"
        )
    return OK


# -- restore -----------------------------------------------------------------------------


def _restore(context: Context, args: argparse.Namespace) -> int:
    if args.file != STDIO:
        source = Path(args.file)
        if not source.exists():
            return fail(f"{source}: no such file")
        if source.is_dir():
            return fail(f"{source} is a directory, not a statehq backup")
    if args.force and not _confirmed(args):
        return fail("nothing was restored", MISSING)
    try:
        with _opened(args.file) as stream, ProgressBar("restoring") as bar:
            summary = restore_backup(
                context.manager,
                stream,
                force=args.force,
                progress=bar,
                reason=audited_reason(f"statehq restore {Path(args.file).name[:100]}"),
            )
    except InvalidInput as bad:
        return fail(f"{'stdin' if args.file == STDIO else args.file} {bad}")
    except OSError as exc:
        return fail(f"cannot read {args.file}: {exc.strerror or exc}")
    return _report_restore(context, args, summary)


@contextlib.contextmanager
def _opened(name: str) -> Iterator[IO[bytes]]:
    if name == STDIO:
        yield sys.stdin.buffer
        return
    with open(name, "rb") as stream:
        yield stream


def _confirmed(args: argparse.Namespace) -> bool:
    """Ask on a terminal before --force replaces newer sessions, unless ``--yes``."""
    if args.yes or not sys.stdin.isatty() or args.file == STDIO:
        return True
    try:
        answer = input(
            f"Restore {args.file}, replacing sessions that are newer in the store? [y/N] "
        )
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _report_restore(context: Context, args: argparse.Namespace, summary: RestoreSummary) -> int:
    if args.json:
        print_json({"file": args.file, "store": context.where, **summary.as_dict()})
    else:
        counts = summary.counts
        refused = counts["newer"] + counts["different"] + counts["moved"]
        print(
            f"restored {counts['restored']:,} session{_s(counts['restored'])}, "
            f"{counts['unchanged']:,} unchanged, {refused:,} refused, "
            f"{len(summary.invalid):,} line{_s(len(summary.invalid))} skipped; "
            f"{summary.bindings_restored:,} channel{_s(summary.bindings_restored)} bound, "
            f"{summary.audit_added:,} audit entries added (into {context.where})"
        )
    problems = [*summary.invalid, *summary.refused, *summary.bindings_refused]
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"statehq: {problem}", file=sys.stderr)
    if len(problems) > SHOWN_PROBLEMS:
        more = len(problems) - SHOWN_PROBLEMS
        print(f"statehq: ... and {more} more (--json lists them all)", file=sys.stderr)
    if (summary.counts["newer"] or summary.counts["different"]) and not args.force:
        return fail(
            "some sessions are newer in the store than in the backup and were left alone; "
            "--force replaces them with the backup's"
        )
    return OK if summary.complete else MISSING


def _s(count: int) -> str:
    return "" if count == 1 else "s"


# -- progress ----------------------------------------------------------------------------


class ProgressBar:
    """``backing up  1,234/5,000 [#####...............]  24%  812/s`` on a terminal.

    Drawn only on a terminal (piped or captured stderr stays clean), and only on a long
    run: from the start when there are ``long_run`` sessions or more, else once
    ``after`` seconds have passed. Redrawn at most ten times a second, and once at the
    end; erased on exit so the summary line starts clean.
    """

    WIDTH = 24

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        *,
        long_run: int = 1000,
        after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.long_run = long_run
        self.after = after
        self.clock = clock
        self.started = clock()
        self.drawn = False
        self._drawn_at = float("-inf")

    def __call__(self, done: int, total: int | None) -> None:
        """Record progress: ``done`` sessions of ``total`` (None when unknown)."""
        if not self.enabled:
            return
        now = self.clock()
        elapsed = now - self.started
        long = (total or 0) >= self.long_run or elapsed >= self.after
        last = total is not None and done >= total
        if not long or (now - self._drawn_at < 0.1 and not last):
            return
        self.stream.write("\r" + self.line(done, total, elapsed) + "\x1b[K")
        self.stream.flush()
        self.drawn, self._drawn_at = True, now

    def line(self, done: int, total: int | None, elapsed: float) -> str:
        """The bar as text."""
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 else ""
        if not total:
            return f"{self.label}  {done:,} sessions  {rate}"
        share = min(done / total, 1.0)
        filled = round(share * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        return f"{self.label}  {done:,}/{total:,} [{bar}] {share:4.0%}  {rate}"

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
