"""segue.core: the engine, score, rules, server and CLI of segue."""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("segue")

__all__ = ["__version__", "hookimpl"]
