"""Turning requests into numbers: histogram, recorder, HTTP client, engine, live metrics."""
