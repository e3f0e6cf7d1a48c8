"""Deterministic content: the images and the "enhanced" prompts the stand-in answers with.

The same prompt and seed always give the same bytes, so tests can compare them; different
prompts give visibly different pictures.
"""

from __future__ import annotations

import hashlib
import io
import random
from typing import Final

from PIL import Image, ImageDraw

from generia_pipelines.local.runware_standin.protocol import FORMATS

_ENHANCE_STYLES: Final = (
    "cinematic lighting, highly detailed, sharp focus",
    "soft natural light, rich colours, intricate details",
    "golden hour, shallow depth of field, award-winning photograph",
    "dramatic composition, volumetric light, ultra detailed",
    "studio lighting, crisp textures, vibrant palette",
    "painterly style, atmospheric perspective, fine details",
)


def render_image(prompt: str, seed: int, width: int, height: int, output_format: str) -> bytes:
    """A deterministic picture: palette and layout from the prompt's hash, details from seed."""
    digest = hashlib.sha256(prompt.encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big") ^ seed)
    first, second = tuple(digest[0:3]), tuple(digest[3:6])
    mask = Image.linear_gradient("L")
    mask = mask.transpose(
        (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)[
            digest[6] % 3
        ]
    )
    mask = mask.resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), first), Image.new("RGB", (width, height), second), mask
    )
    draw = ImageDraw.Draw(image)
    for index in range(3 + digest[7] % 5):
        colour = (
            digest[(8 + 3 * index) % 32],
            digest[(9 + 3 * index) % 32],
            rng.randrange(256),
        )
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = min(width, x0 + rng.randrange(width // 8, width // 2))
        y1 = min(height, y0 + rng.randrange(height // 8, height // 2))
        shape = (digest[20 + index % 12] + index) % 3
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
    buffer = io.BytesIO()
    pillow_format = FORMATS[output_format][0]
    if pillow_format == "PNG":
        image.save(buffer, "PNG", compress_level=1)
    elif pillow_format == "JPEG":
        image.save(buffer, "JPEG", quality=90)
    else:
        image.save(buffer, "WEBP", quality=80, method=0)
    return buffer.getvalue()


def enhance_texts(prompt: str, versions: int, max_length: int) -> list[str]:
    """Deterministic 'enhanced' prompts: the prompt plus styles picked from its hash."""
    digest = hashlib.sha256(prompt.encode()).digest()
    texts = []
    for version in range(versions):
        style = _ENHANCE_STYLES[(digest[0] + version) % len(_ENHANCE_STYLES)]
        texts.append(f"{prompt.strip()}, {style}"[:max_length])
    return texts
