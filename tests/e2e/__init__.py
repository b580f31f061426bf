"""End-to-end tests: the whole pipeline, trained or fitted once and used many times."""
