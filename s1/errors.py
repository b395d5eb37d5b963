"""Errors shared by every layer. A leaf: imports nothing from s1, so any module may import it without a circle."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A bad config value: the message says which key, what value, and how to fix it."""

    def __init__(self, key: str, value: Any, fix: str):
        self.key, self.value, self.fix = key, value, fix
        super().__init__(f"config error: {key}={value!r}: {fix}")
