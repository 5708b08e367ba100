"""Watching the system under test beside a run: server, pool, canary, the target itself."""
