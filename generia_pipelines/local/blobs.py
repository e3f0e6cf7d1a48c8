"""Objects of the local object store, as files under ``{data_dir}/objects/{key}``.

Keys come from the media service (``{world}/{character}/posts/{id}.png``) but are still
checked: a key that would escape the objects directory is refused, whatever its origin.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: Content types the platform accepts, with the extension their object keys get.
CONTENT_TYPE_EXTENSIONS: dict[str, str] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
}
_EXTENSION_TYPES = {ext: ct for ct, ext in CONTENT_TYPE_EXTENSIONS.items()} | {
    ".jpeg": "image/jpeg"
}


def content_type_for(key: str) -> str:
    """The content type served for an object key, from its extension."""
    return _EXTENSION_TYPES.get(Path(key).suffix.lower(), "application/octet-stream")


class BlobStore:
    """Atomic writes and guarded reads of object files."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file of ``key``; ValueError when the key is empty or leaves the root."""
        if not key or key.startswith("/") or "\\" in key:
            raise ValueError(f"invalid object key {key!r}")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"invalid object key {key!r}")
        return path

    def write(self, key: str, data: bytes) -> None:
        """Write through a temporary file and rename, so a reader never sees half an object."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except ValueError:
            return False
