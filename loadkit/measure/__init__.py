"""Turning requests into numbers: HTTP client, engine, recorder, histogram, trace."""
