"""Ally: adversarial protection of photos and text, run locally."""
__version__ = "0.1.0"
