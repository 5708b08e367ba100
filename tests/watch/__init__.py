"""Tests of the samplers that watch the system under test."""
