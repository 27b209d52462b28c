"""Benchmarks: slow, run by hand or `make bench`, never part of the test suite."""
