"""Pregeneration: planning, scheduling generations, finishing tracks, storing them, progress."""
