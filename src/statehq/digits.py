"""Whole numbers read from outside: ASCII digits only.

``str.isdigit`` also accepts superscripts and other scripts' digits ("²", "٣"), which
``int`` then refuses or reads as another number. Every number statehq takes from a
webhook, a header, a command line or an API passes :func:`is_digits` first, so a
strange one is refused with a clear message instead of crashing the request.
"""

from __future__ import annotations


def is_digits(text: str) -> bool:
    """True when ``text`` is one or more ASCII digits, and nothing else."""
    return text.isascii() and text.isdigit()
