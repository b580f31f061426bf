"""Unit tests: one file per library module (tests/unit/test_MODULE.py)."""
