"""Side-by-side benchmarks of aiokafka_c and its peers (``python -m
benchmarks``; see benchmarks/README.md)."""
