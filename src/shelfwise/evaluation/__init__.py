"""Metrics and protocols (full ranking over all items), and HTML reports with plots."""
