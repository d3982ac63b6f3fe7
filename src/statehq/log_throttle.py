"""Warnings logged at most once per cause per interval, with a count of those left out.

A wrong access token fails every reply: logging each failure would bury the one line
that says what to fix under thousands that say the same. :class:`LogThrottle` logs the
first warning of a cause, counts the repeats within the interval, and says how many it
left out when the cause is next logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

DEFAULT_INTERVAL = 60.0  # seconds


class LogThrottle:
    """Logs a warning per ``cause`` at most once every ``interval`` seconds.

    Safe from several threads (the workers of an embedded service share one). ``clock``
    is injectable so the interval can be tested without waiting.
    """

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._causes: dict[Hashable, tuple[float, int]] = {}  # cause -> (logged at, left out)

    def warning(self, logger: logging.Logger, cause: Hashable, message: str, *args: object) -> bool:
        """Log ``message % args`` at warning unless ``cause`` was logged within the
        interval; True when it was logged."""
        now = self._clock()
        with self._lock:
            logged_at, left_out = self._causes.get(cause, (None, 0))
            if logged_at is not None and now - logged_at < self.interval:
                self._causes[cause] = (logged_at, left_out + 1)
                return False
            self._causes[cause] = (now, 0)
        if left_out:
            message += " (%d more like this since the last one were not logged)"
            args = (*args, left_out)
        logger.warning(message, *args)
        return True

    def clear(self) -> None:
        """Forget every cause: the next warning of each is logged."""
        with self._lock:
            self._causes.clear()
