"""Pretrained encoders behind one ``encode()`` API."""

from shelfwise.encoders.text import TextEncoder, mean_pool

__all__ = ["TextEncoder", "mean_pool"]
