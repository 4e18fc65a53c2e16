"""Results: scores with bootstrap intervals, the report's markdown, the figures."""
