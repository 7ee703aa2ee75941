"""Content-addressed files under the data folder: ``blobs/<ab>/<sha256><suffix>``.

A file's name is the SHA-256 of its bytes, so nothing a client sends (file name, path, MIME
type) ever becomes part of a path on disk, identical uploads share one file, and a file that
exists is complete (written to a temporary name, then renamed).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

#: Bytes read at a time when copying an upload.
CHUNK = 1 << 20


class TooLarge(Exception):
    """An upload longer than the limit."""


class BlobStore:
    """Files named by their content under ``root / "blobs"``; paths in the database are relative to ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        for folder in (root / "blobs", self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.iterdir():  # uploads of a killed server
            leftover.unlink(missing_ok=True)

    def relative_path(self, digest: str, suffix: str = "") -> str:
        """``blobs/ab/abcdef...<suffix>`` for a SHA-256 hex digest."""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("not a SHA-256 hex digest")
        return f"blobs/{digest[:2]}/{digest}{suffix}"

    def path(self, relative: str) -> Path:
        """The absolute path of a stored relative path (only paths under ``blobs/`` resolve)."""
        if not relative.startswith("blobs/") or ".." in relative:
            raise ValueError(f"not a blob path: {relative!r}")
        return self.root / relative

    def put_bytes(self, data: bytes, suffix: str = "") -> str:
        """Store ``data``; returns its relative path."""
        relative = self.relative_path(hashlib.sha256(data).hexdigest(), suffix)
        target = self.root / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.tmp)
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(temporary, target)
        return relative

    def receive(self, stream: BinaryIO, max_bytes: int) -> tuple[Path, str]:
        """Copy an upload to a temporary file of a random name; returns (file, SHA-256 hex).

        Raises ``TooLarge`` (and removes the file) past ``max_bytes``.
        """
        temporary = self.tmp / f"upload-{secrets.token_hex(16)}"
        digest = hashlib.sha256()
        size = 0
        try:
            with temporary.open("wb") as out:
                for chunk in iter(lambda: stream.read(CHUNK), b""):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(f"file is larger than the limit of {max_bytes / 1e6:g} MB")
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return temporary, digest.hexdigest()

    def adopt(self, temporary: Path, digest: str) -> str:
        """Move a received file to its content address; returns the relative path."""
        relative = self.relative_path(digest)
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, target)
        return relative

    def remove(self, relatives: Iterable[str]) -> None:
        """Delete stored files (callers pass only paths no image refers to any more)."""
        for relative in relatives:
            self.path(relative).unlink(missing_ok=True)
