"""Tests of the reference backend, driven over real sockets."""
