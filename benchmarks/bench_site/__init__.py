"""The demo site as the HTTP benchmark serves it (benchmarks/http_bench.py): see settings.py."""
