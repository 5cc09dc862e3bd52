"""One error hierarchy for the whole product.

Messages render the resource they concern first, so a log line or a terminal message says what
broke and where: ``config/monitor.yaml:4:3: unknown key 'intervall'`` or
``feed 'antara': HTTP 503: Service Unavailable``.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error news-monitor raises on purpose."""


class ConfigError(MonitorError):
    """The configuration or a watchlist is invalid. The CLI exits 78 (EX_CONFIG) on it.

    ``file``, ``line`` and ``col`` (1-based) locate the problem when it is known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col or 1}: {self.message}"


class ConfigErrors(ConfigError):
    """Several config errors found in one pass, so a user fixes them all at once."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class StateLockedError(MonitorError):
    """Another news-monitor process holds the state file."""


class StoreError(MonitorError):
    """The state database cannot be opened or migrated."""
