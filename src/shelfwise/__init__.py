"""shelfwise: search and recommendations for online shops, built on pretrained models."""

__version__ = "0.1.0"
