"""Plain-Python core of vidgen_pipeline: no Dagster imports, testable alone."""
