"""Errors segue raises, grouped by what the user or the pipeline should do about them."""

from __future__ import annotations


def error_line(exc: BaseException) -> str:
    """``exc`` as ``TypeName: message`` on one line (a multi-line message's whitespace
    collapsed), for an error line that names what raised it."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


class SegueError(Exception):
    """Base of segue's errors; its message is one line fit for a user."""


class ScoreError(SegueError):
    """A score is invalid. ``errors`` holds every ``FILE:LINE: path: message`` line."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class PluginError(SegueError):
    """A plugin failed to load, or plugins conflict."""


class ConfigError(SegueError):
    """A generator, cache or storage configuration is unusable (bad input: exit 2)."""


class BudgetError(SegueError):
    """A plan could exceed the budget (bad input: exit 2)."""


class GenerationError(SegueError):
    """A generator failed. Subclasses tell the pipeline whether to retry."""


class TransientError(GenerationError):
    """Worth retrying with backoff: 5xx, transport errors, a failed run, corrupt output."""


class RateLimitedError(TransientError):
    """The provider asked us to slow down; retry after ``retry_after`` seconds if given."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(GenerationError):
    """Never retried: bad input, bad credentials, a request the provider refuses."""


class StorageError(PermanentError):
    """A generated (paid) file could not be stored: the disk is full or read-only, the
    sink refuses it. Never a reason to call the generator again: the file is kept and
    stored on the next attempt."""


class AudioError(GenerationError):
    """An audio file cannot be decoded or encoded; the message names the file."""
