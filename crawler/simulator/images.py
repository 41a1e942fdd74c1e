"""Tiny, real thumbnail images for the simulator's image URLs.

Every image path (without its extension) maps to one deterministic picture: two
colour blocks derived from the path, so each title and episode has its own
bytes and a crawler's image store can tell them apart. Encoded once per
(path, format) and cached.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache

from PIL import Image

# Extension → (Pillow format, MIME type). A bare Kakao CDN URL is served as PNG.
FORMATS: dict[str, tuple[str, str]] = {
    ".jpg": ("JPEG", "image/jpeg"),
    ".jpeg": ("JPEG", "image/jpeg"),
    ".png": ("PNG", "image/png"),
    ".webp": ("WEBP", "image/webp"),
    "": ("PNG", "image/png"),
}

IMAGE_PREFIXES: tuple[str, ...] = ("/thumb/", "/kakao-img/", "/kakaopage/download/")

_SIZE = (12, 16)


def split_extension(path: str) -> tuple[str, str]:
    """``/a/b/thumb.jpg`` → (``/a/b/thumb``, ``.jpg``); unknown or no extension → ``""``."""
    last = path.rsplit("/", 1)[-1]
    if "." in last:
        ext = "." + last.rsplit(".", 1)[-1].lower()
        if ext in FORMATS:
            return path[: -len(ext)], ext
    return path, ""


@lru_cache(maxsize=8192)
def image_bytes(key: str, extension: str) -> bytes:
    """The encoded image for ``key`` in the format named by ``extension``."""
    fmt = FORMATS[extension][0]
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    top, bottom = tuple(digest[0:3]), tuple(digest[3:6])
    image = Image.new("RGB", _SIZE, top)
    image.paste(Image.new("RGB", (_SIZE[0], _SIZE[1] // 2), bottom), (0, _SIZE[1] // 2))
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, fmt, quality=60)
    elif fmt == "WEBP":
        image.save(out, fmt, quality=60, method=0)
    else:
        image.save(out, fmt, optimize=False)
    return out.getvalue()


def image_response(path: str) -> tuple[str, bytes] | None:
    """(content type, bytes) for an image path the simulator serves, else None."""
    if not path.startswith(IMAGE_PREFIXES):
        return None
    key, extension = split_extension(path)
    return FORMATS[extension][1], image_bytes(key, extension)
