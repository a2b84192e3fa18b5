"""Clipscape core: scanning, decoding, encoding, caching, search, zero-shot, projection, export. Never imports Qt."""
