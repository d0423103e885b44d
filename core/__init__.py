"""segue.core: everything of segue but its built-in plugins (those are ``segue.plugins``).

At the top, what plugin authors and clients import: ``hookimpl`` (here) and the hooks
(``hookspecs``); ``track``, ``request``, ``errors``; the interfaces a plugin implements
(``generator``, ``cache``, ``storage``) and the ``registry`` and ``plugins`` manager that
find them; ``audio``, ``seams``, ``analysis``, ``carving`` and ``prompts`` for plugins'
work; ``locks`` and ``files``; the score (``score``, checked by ``score_check``, read by
``yamlsource``) and its ``conditions``; the wire ``protocol``, ``messages``, ``cue`` and
the Python SDK (``client``); the command line (``cli``, one module per command in
``commands/``). Three wings hold the rest:

- ``engine/``: the rules engine as pure code (director, rules, transitions, state,
  variants, intensity, the musical clock);
- ``pregen/``: pregeneration (planning, scheduling, finishing a track, sinks, progress);
- ``server/``: the aiohttp app, HTTP API, sessions, the WebSocket fast path, wire
  encoders, rate limits, metrics, rooms through Redis, and the web client's static files.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("segue")

__all__ = ["__version__", "hookimpl"]
