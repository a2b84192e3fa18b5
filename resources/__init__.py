"""Bundled data: the offline demo model and sample images."""
