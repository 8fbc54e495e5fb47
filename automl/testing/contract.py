"""Contract check for plugins (placeholder until the full check lands)."""

from __future__ import annotations


def check_plugins(host) -> dict[str, list[str]]:  # noqa: ANN001
    return {}
