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
