"""Attachments of posts and alerts: images and PDF files, stored in GridFS.

The type is taken from the content (magic bytes), never from the client's claim. Images are
decoded and encoded again without any metadata (EXIF with GPS position, camera serials, XMP,
comments), with the EXIF orientation applied first so the picture still stands upright; a
picture above `MAX_PIXELS` is refused (decompression bombs). Attachments are linked in the
push and e-mail texts of the published alert (see `service.alert_event`), never sent by SMS or
voice, and downloadable by citizens once — and only while — the alert is published."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000
KINDS: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}
_UNSAFE = re.compile(r"[^A-Za-z0-9ÄÖÜäöüß._ -]+")


class AttachmentError(ValueError):
    """An upload that cannot become an attachment; `code` names the reason."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Prepared:
    """An attachment ready to store: cleaned content, its type, a safe file name."""

    data: bytes
    content_type: str
    filename: str
    sha256: str


def sniff(data: bytes) -> str | None:
    """The content type by magic bytes, if it is one of the allowed kinds."""
    return next(
        (kind for kind, magics in KINDS.items() if any(data.startswith(m) for m in magics)), None
    )


def strip_image(data: bytes, content_type: str) -> bytes:
    """The image encoded again without metadata, upright (EXIF orientation applied)."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise AttachmentError("attachment_too_large")
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
        raise AttachmentError("attachment_unreadable") from None
    out = io.BytesIO()
    # nothing of `info` (EXIF, XMP, ICC, comments, text chunks) is handed to the encoder
    clean = image.convert("RGB") if content_type == "image/jpeg" else image.copy()
    clean.info = {}
    if content_type == "image/jpeg":
        clean.save(out, format="JPEG", quality=90, optimize=True)
    else:
        clean.save(out, format="PNG", optimize=True)
    return out.getvalue()


def safe_filename(name: str, content_type: str) -> str:
    """A file name without paths or odd characters, with the extension of its real type."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = _UNSAFE.sub("_", base.rsplit(".", 1)[0]).strip(" ._")[:80] or "anhang"
    return f"{stem}.{EXTENSIONS[content_type]}"


def prepare(data: bytes, filename: str, *, max_bytes: int) -> Prepared:
    """Checks size and type and strips image metadata; raises `AttachmentError`."""
    if not data:
        raise AttachmentError("attachment_empty")
    if len(data) > max_bytes:
        raise AttachmentError("attachment_too_large")
    content_type = sniff(data)
    if content_type is None:
        raise AttachmentError("attachment_type")
    if content_type.startswith("image/"):
        data = strip_image(data, content_type)
    return Prepared(
        data=data,
        content_type=content_type,
        filename=safe_filename(filename, content_type),
        sha256=hashlib.sha256(data).hexdigest(),
    )
