"""Photo cleaning without servers: GPS EXIF and every other metadata gone, upright, resized,
refused when too large, not an image, or of another type."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from sirene.issues.photos import PhotoError, clean_photo

GPS_IFD = 0x8825


def jpeg_with_gps(width: int = 3000, height: int = 2000, orientation: int = 1) -> bytes:
    """A JPEG carrying GPS position, camera make and an orientation tag."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "ExampleCam"  # Make
    exif[0x0112] = orientation
    exif[GPS_IFD] = {1: "N", 2: (51.0, 20.0, 24.0), 3: "E", 4: (12.0, 22.0, 12.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, comment=b"secret comment")
    return out.getvalue()


def test_the_upload_really_carries_gps() -> None:
    with Image.open(io.BytesIO(jpeg_with_gps())) as image:
        assert image.getexif().get_ifd(GPS_IFD)[2] == (51.0, 20.0, 24.0)


def test_gps_exif_is_stripped_and_the_photo_resized() -> None:
    clean = clean_photo(jpeg_with_gps(), max_bytes=10 * 2**20, max_side=1600)
    assert clean.content_type == "image/jpeg"
    assert (clean.width, clean.height) == (1600, 1067)
    assert b"Exif" not in clean.data
    assert b"ExampleCam" not in clean.data
    assert b"secret comment" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as image:
        assert len(image.getexif()) == 0
        assert "exif" not in image.info
        assert "comment" not in image.info


def test_orientation_is_applied_before_the_tag_is_dropped() -> None:
    clean = clean_photo(jpeg_with_gps(400, 200, orientation=6), max_bytes=2**20, max_side=1600)
    assert (clean.width, clean.height) == (200, 400)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not an image at all", "photo_invalid"),
        (b"", "photo_invalid"),
        (b"GIF89a" + bytes(100), "photo_invalid"),
    ],
)
def test_bad_uploads_are_refused(raw: bytes, code: str) -> None:
    with pytest.raises(PhotoError) as refused:
        clean_photo(raw, max_bytes=2**20, max_side=100)
    assert refused.value.code == code


def test_other_types_and_oversize_are_refused() -> None:
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, format="GIF")
    with pytest.raises(PhotoError) as refused:
        clean_photo(gif.getvalue(), max_bytes=2**20, max_side=100)
    assert refused.value.code == "photo_type"
    with pytest.raises(PhotoError) as too_big:
        clean_photo(jpeg_with_gps(), max_bytes=1000, max_side=100)
    assert too_big.value.code == "photo_too_large"
    png = io.BytesIO()
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(png, format="PNG")
    assert clean_photo(png.getvalue(), max_bytes=2**20, max_side=100).content_type == "image/jpeg"
