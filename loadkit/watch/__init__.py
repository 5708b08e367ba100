"""Samplers of the system under test that run beside a load run."""
