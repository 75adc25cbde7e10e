"""Benchmark jobs from the fleet: a signed job → the artifact fetched, verified and timed from a scratch
folder (never a model slot, never what the agent serves) → a `bench_result` → the scratch removed.

    bench_worker.py    the job's thread: guard, fetch, verify, measure (edgeml.benchmark), answer (BenchWorker)
"""
