"""Benchmarks: the API server measured over real HTTPS from separate processes.

Not tests: nothing here asserts a speed. ``python -m benchmarks.run`` prints the table that goes
into the README; see benchmarks/README.md for what each row measures.
"""
