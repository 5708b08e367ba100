"""The pytest side: harness, scenarios, outcome, the shared backend, the runner's records."""
