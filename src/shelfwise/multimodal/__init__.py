"""Multimodal items and queries: photos aligned with product names (a CLIP-style space trained on
the shop's own (photo, name) pairs), fusion of text, photo and attributes into one item vector,
and voice queries."""
