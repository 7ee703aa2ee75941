"""The package version (a module of its own, at the bottom of the import layers)."""

__version__ = "0.1.0"
