"""Command-line tests: the commands, scripts, benchmarks and their one-line errors."""
