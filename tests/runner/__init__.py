"""Tests of run_load_tests.sh, the report renderer, the run comparison and the CI workflow."""
