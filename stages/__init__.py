"""Thin DVC stage entry points: parse argv, call the library, exit non-zero on failure."""
