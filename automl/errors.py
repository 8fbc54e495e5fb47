"""Errors the user can act on.

Every `AutoMLError` carries a one-line message that says what is wrong and how to fix it. The CLI prints
that line alone (no traceback unless `debug=true` or `AUTOML_DEBUG=1`); the SDK raises it as is.
"""

from __future__ import annotations


class AutoMLError(Exception):
    """Base class: a problem the user can fix; the message is meant to be read, not parsed."""


class ConfigError(AutoMLError):
    """The run configuration is invalid (unknown key, wrong type, unknown name)."""


class DataError(AutoMLError):
    """The input data cannot be used as given (missing file, unknown target, empty table...)."""


class PluginError(AutoMLError):
    """A plugin broke the contract (import error, raising hook, duplicate name, wrong return type)."""


class UnknownNameError(ConfigError):
    """A registry lookup failed; the message lists what is available."""


class MissingPluginError(ConfigError):
    """A domain or component belongs to a plugin that is not installed."""


class Interrupted(KeyboardInterrupt):
    """A stop request (Ctrl-C, SIGTERM) reached a run: the trials it cut short are recorded as interrupted and
    queued to run again, and the files are written from the trials that finished. A `KeyboardInterrupt`, so
    that no `except Exception` of a trial can swallow it."""

    def __init__(self, reason: str = "Ctrl-C (SIGINT)", exit_code: int = 130) -> None:
        super().__init__(reason)
        self.reason, self.exit_code = reason, exit_code
