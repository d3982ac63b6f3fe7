"""The error tree drawn in ``statehq/errors.py`` is the tree the classes form."""

from __future__ import annotations

import inspect
import re

from statehq import errors


def _drawn() -> dict[str, str]:
    """Each class in the drawing -> its parent in the drawing."""
    block = errors.__doc__.split("```", 2)[1] if errors.__doc__ else ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in block.strip().splitlines():
        match = re.match(r"^([│ ├└─]*)(\w+)", line)
        assert match is not None, line
        depth, name = len(match.group(1)) // 4, match.group(2)
        stack = stack[:depth]
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_every_error_class_is_drawn_under_its_parent() -> None:
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, errors.StateError)
        and cls is not errors.StateError
    }
    drawn = _drawn()
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        assert drawn[name] == cls.__bases__[0].__name__, name
