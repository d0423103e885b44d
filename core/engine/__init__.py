"""The rules engine: rules, transitions, dwell, debounce, variants, the clock, the director."""
