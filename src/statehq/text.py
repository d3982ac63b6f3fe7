"""Text from outside made safe to key, store and print.

JSON may carry a lone surrogate (``"\\ud800"``, or the UTF-8 bytes ED A0 80 that Python's
``json`` reads the same way). No UTF-8 can encode it, so it fails wherever text becomes
bytes: a Redis call, a log line, a terminal. Keys refuse it; free text has it replaced.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def has_surrogate(text: str) -> bool:
    """True when ``text`` holds a lone surrogate: no UTF-8 encodes it."""
    return _SURROGATE.search(text) is not None


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (the replacement character)."""
    return _SURROGATE.sub("\ufffd", text) if has_surrogate(text) else text
