"""Clipscape desktop GUI (PySide6 + pyqtgraph). All numerics live in models/."""
