"""Datasets: readers for file formats and public benchmarks, the demo shop, sequences and splits."""
