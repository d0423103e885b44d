"""A segue plugin that cannot load: segue must report it by name and version, and skip it."""

raise RuntimeError("segue-broken cannot start: its configuration is missing")
