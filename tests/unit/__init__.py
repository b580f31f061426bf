"""Unit tests: one file per library module, laid out as the package is: aecluster/MODULE.py is
tested in tests/unit/test_MODULE.py, aecluster/PACKAGE/MODULE.py in tests/unit/PACKAGE/test_MODULE.py
(a package's own __init__.py in tests/unit/PACKAGE/test_init.py)."""
