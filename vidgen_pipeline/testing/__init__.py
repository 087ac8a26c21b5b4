"""Tiny random-weight models, built offline from configs, for tests and the benchmark."""
