"""Settings read from environment variables, parsed strictly.

A typo in a variable must fail setup, naming the variable, rather than silently mean the
default. Shared by every resource and client that reads the environment.
"""

from __future__ import annotations

from typing import Final

from generia_pipelines.errors import ConfigError

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


def parse_flag(variable: str, text: str) -> bool:
    """``text``, the value of ``variable``, as a boolean; an unknown spelling is a ConfigError."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{variable}={text!r} is not a boolean (use true/false, 1/0, yes/no)")
