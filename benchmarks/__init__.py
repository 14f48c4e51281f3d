"""Benchmarks: one command each, printing the machine and a last line of JSON figures."""
