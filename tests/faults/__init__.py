"""Fault injection for tests: a TCP proxy that closes or stalls the path to a real store."""
