"""The exception for datasets whose files do not match the expected layout."""


class DatasetError(Exception):
    """A dataset folder, label file or row that cannot be loaded; the message says which and why."""
