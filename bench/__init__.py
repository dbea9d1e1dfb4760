"""`make bench`: figures measured against a fresh embedded stack (CONTRACT.md, Benchmarks).

Each benchmark is a module here with `ORDER: int` and `run(ctx: BenchContext) -> None`; run.py
finds them, runs them in ORDER against one stack, and writes bench/results/latest.json.
"""
