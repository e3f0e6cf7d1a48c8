"""Upload checks and variants with Pillow, as the platform does when an upload is confirmed.

The declared content type must match what the bytes really are: the old AI worker labelled
JPEG bytes as PNG, and the platform should refuse that rather than serve broken images.
"""

from __future__ import annotations

import io
from pathlib import PurePosixPath

from PIL import Image, UnidentifiedImageError

from generia_pipelines.local.blobs import BlobStore
from generia_pipelines.local.stores import VariantRecord

_PIL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
#: Variant name -> longest side in pixels (never enlarged).
VARIANT_SIZES: dict[str, int] = {"medium": 256, "thumbnail": 96}


class ImageRejected(ValueError):
    """The stored object is not a decodable image of its declared content type."""


def variant_key(object_key: str, name: str) -> str:
    """``w/c/posts/abc.png`` -> ``w/c/posts/abc_medium.png``."""
    path = PurePosixPath(object_key)
    return str(path.with_name(f"{path.stem}_{name}{path.suffix}"))


def _decode(data: bytes, content_type: str) -> Image.Image:
    expected = _PIL_FORMATS.get(content_type)
    if expected is None:
        raise ImageRejected(f"unsupported content type {content_type!r}")
    try:
        image = Image.open(io.BytesIO(data))
        actual = image.format
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ImageRejected(f"object is not a decodable image: {exc}") from None
    if actual != expected:
        raise ImageRejected(f"object is {actual or 'unknown'} data, declared as {content_type}")
    return image


def _encode(image: Image.Image, content_type: str) -> bytes:
    fmt = _PIL_FORMATS[content_type]
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def make_variants(blobs: BlobStore, object_key: str, content_type: str) -> list[VariantRecord]:
    """Check the uploaded object and write its resized variants next to it (blocking)."""
    data = blobs.read(object_key)
    if data is None:
        raise ImageRejected("object was not uploaded")
    image = _decode(data, content_type)
    variants = [VariantRecord("original", object_key, image.width, image.height)]
    for name, side in VARIANT_SIZES.items():
        resized = image.copy()
        resized.thumbnail((side, side))
        key = variant_key(object_key, name)
        blobs.write(key, _encode(resized, content_type))
        variants.append(VariantRecord(name, key, resized.width, resized.height))
    return variants
