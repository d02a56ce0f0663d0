"""Example data written by our own code, for the tutorials, tests and benchmarks."""
