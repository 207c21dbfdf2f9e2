"""Photos of reports: checked, turned upright, resized and re-encoded without any metadata.

Re-encoding from the decoded pixels is what guarantees that nothing of the upload's metadata
survives (EXIF with GPS position and camera serial, XMP, IPTC, comments, ICC profiles,
thumbnails): the stored JPEG is written from pixels alone."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
"""Accepted upload formats (by content, not by file name or declared type)."""

MAX_PIXELS = 50_000_000
"""Decompression-bomb guard: uploads with more pixels are refused before decoding."""


class PhotoError(ValueError):
    """An upload that is not an acceptable photo; `code` names the reason."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class CleanPhoto:
    """A photo ready to store and serve."""

    data: bytes
    content_type: str
    width: int
    height: int


def clean_photo(raw: bytes, *, max_bytes: int, max_side: int, quality: int = 85) -> CleanPhoto:
    """Validates an upload (size, real image format) and returns it upright, at most
    `max_side` pixels on its longer side, as a JPEG without any metadata."""
    if len(raw) > max_bytes:
        raise PhotoError("photo_too_large")
    if not raw:
        raise PhotoError("photo_invalid")
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            if probe.format not in ALLOWED_FORMATS:
                raise PhotoError("photo_type")
            if probe.width * probe.height > MAX_PIXELS:
                raise PhotoError("photo_too_large")
            probe.verify()
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    except PhotoError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise PhotoError("photo_invalid") from None
    if upright.mode not in ("RGB", "L"):
        background = Image.new("RGB", upright.size, (255, 255, 255))
        rgba = upright.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        upright = background
    upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    # pixels only: a fresh image carries no info dict (exif, icc_profile, xmp, comment)
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=quality, optimize=True)
    return CleanPhoto(out.getvalue(), "image/jpeg", clean.width, clean.height)
