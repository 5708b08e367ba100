"""The pytest side: harness, scenarios (load, baseline, probes), outcome, shared backend."""
