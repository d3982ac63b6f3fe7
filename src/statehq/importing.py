"""Objects named by import path (``package.module:name``), as STATEHQ_BOT and
STATEHQ_CHANNELS name them, with errors that say which part was wrong.

The current directory is importable, as with uvicorn, so a user's module next to where
they run statehq is found.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .errors import ConfigError


def module_of(path: str, variable: str) -> ModuleType:
    """The module ``path`` names, imported; ConfigError (naming ``variable``) if it cannot be."""
    module_name = path.partition(":")[0]
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as missing:
        if missing.name is not None and module_name.startswith(missing.name):
            raise ConfigError(
                f"{variable}={path!r}: there is no module {missing.name!r} (is it installed, "
                f"or in the current directory {os.getcwd()}?)"
            ) from None
        raise ConfigError(
            f"{variable}={path!r}: importing {module_name} failed: {missing}"
        ) from None
    except Exception as broken:
        raise ConfigError(
            f"{variable}={path!r}: importing {module_name} failed: "
            f"{type(broken).__name__}: {broken}"
        ) from None


def factory_at(path: str, variable: str, makes: str) -> Callable[..., Any]:
    """The callable at ``path``; ConfigError when there is none there."""
    module_name, _, name = path.partition(":")
    factory = getattr(module_of(path, variable), name, None)
    if factory is None:
        raise ConfigError(f"{variable}={path!r}: module {module_name} has no {name!r}")
    if not callable(factory):
        raise ConfigError(
            f"{variable}={path!r}: {name} is a {type(factory).__name__}, not a factory "
            f"(a function taking the settings and returning {makes})"
        )
    found: Callable[..., Any] = factory
    return found
