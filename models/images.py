"""Decode any image file to a correct, loaded RGB ``PIL.Image`` - fast, and safely.

``load_rgb`` is what the decode pool calls for every image before it goes to the encoder.  It
has to be fast (JPEG ``draft`` decoding at reduced size), faithful (EXIF orientation, 16-bit and
float data scaled rather than clipped, transparency over white, CMYK, palettes), and safe on
whatever a user's folder holds: every failure becomes an ``ImageLoadError`` whose message a
person can read, and a decompression bomb is refused from its header before any pixel is
decoded.

Thread safety: ``load_rgb`` keeps no state between calls; the only global changes are the
Pillow configuration done once at import below.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

MAX_PIXELS: int = 178_956_970
"""Largest width*height we decode (Pillow's own default limit, ~179 MP, ~0.5 GB as RGB)."""

_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageLoadError(Exception):
    """An image file could not be turned into RGB pixels; ``str(e)`` is the human reason."""


def _configure_pillow() -> tuple[str, ...]:
    """Set up Pillow once at import; return the formats ``load_rgb`` lets Pillow try.

    * HEIC/HEIF support comes from the optional ``pillow_heif`` plug-in, registered if present.
    * Pillow's own bomb limit is pinned to ``MAX_PIXELS`` and stays as a backstop for sizes it
      checks that we cannot see from the header (TIFF tiles, GIF frames, crops).  Its warning
      only fires for images we refuse ourselves anyway, so it is silenced; its error (sizes
      over twice the limit, raised inside ``Image.open``) is turned into ``ImageLoadError``.
    * Only photo formats are tried.  A file named ``.jpg`` can hold anything, and Pillow would
      happily hand e.g. an EPS file to Ghostscript; an allow-list keeps decoding to the
      well-trodden codecs (and makes identification quicker).
    """
    try:
        from pillow_heif import register_heif_opener
    except (ImportError, OSError):
        pass
    else:
        register_heif_opener()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    Image.init()
    # MPO (phone multi-picture JPEG) needs no entry: Pillow's JPEG opener returns it.
    wanted = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "HEIF", "AVIF")
    return tuple(name for name in wanted if name in Image.OPEN)


_FORMATS = _configure_pillow()


def load_rgb(path: str | bytes, min_side: int | None = None) -> Image.Image:
    """Decode the image at ``path`` (or the file's bytes) into a loaded, upright, mode ``"RGB"`` image.

    Bytes are what the Ray encoder reads from a remote file system (models/ray_encode.py): the
    same checks and conversions then apply as to a local file.

    ``min_side`` is the model's input size.  For JPEG it lets libjpeg decode at 1/2, 1/4 or
    1/8 scale while the shorter side stays >= ``min_side`` - about 5x faster on a 12 MP photo,
    and the encoder resizes down to ``min_side`` anyway.  ``None`` decodes at full size.
    Animated images give their first frame.

    Raises ``ImageLoadError`` (and nothing else) with a readable reason on any failure.
    """
    try:
        with (io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else open(path, "rb")) as fp:
            image = _open_checked(fp)
            _decode(image, min_side)
        return _to_rgb(_upright(image))
    except ImageLoadError:
        raise
    except MemoryError as exc:
        raise ImageLoadError("not enough memory to decode the image") from exc
    except OSError as exc:
        raise ImageLoadError(_file_error_reason(exc)) from exc
    except Exception as exc:  # a plug-in may raise anything on hostile data; never let it out
        raise ImageLoadError(f"cannot decode image: {_detail(exc)}") from exc


def _open_checked(fp: BinaryIO) -> Image.Image:
    """Read just the header of the open file ``fp`` and refuse sizes over ``MAX_PIXELS``.

    The check runs before any pixel is decoded, so a tiny file claiming 30000×30000 pixels
    costs nothing.  We open the file ourselves (not by name) so that closing it does not
    destroy the decoded image, and so file-system errors arrive as plain ``OSError``.
    """
    try:
        image = Image.open(fp, formats=_FORMATS)
    except UnidentifiedImageError as exc:
        if _size(fp) == 0:
            raise ImageLoadError("empty file (0 bytes)") from exc
        raise ImageLoadError("not an image Pillow can read (cannot identify image file)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(_pillow_bomb_reason(exc)) from exc
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageLoadError(
            f"image is {width}×{height} pixels, over the {_megapixels(MAX_PIXELS)} megapixel limit"
        )
    return image


def _size(fp: BinaryIO) -> int:
    """Bytes in the open file ``fp`` (a real file or an in-memory one)."""
    if isinstance(fp, io.BytesIO):
        return fp.getbuffer().nbytes
    return os.fstat(fp.fileno()).st_size


def _decode(image: Image.Image, min_side: int | None) -> None:
    """Decode the pixels (first frame), at reduced JPEG scale when ``min_side`` allows it.

    ``draft`` must come before ``load``: it tells libjpeg to scale in the DCT domain, and
    Pillow guarantees both sides stay >= the requested size.  MPO (multi-picture JPEG from
    phones) is a JPEG subclass and benefits too.
    """
    if min_side and isinstance(image, JpegImagePlugin.JpegImageFile):
        image.draft("RGB", (min_side, min_side))
    try:
        image.load()
    except (OSError, SyntaxError, EOFError, ValueError) as exc:
        raise ImageLoadError(f"truncated or corrupt image data: {_detail(exc)}") from exc


def _upright(image: Image.Image) -> Image.Image:
    """Rotate/flip ``image`` as its EXIF Orientation tag says, in place (no copy).

    EXIF from the wild is often malformed.  Pixels matter more than metadata here, so if
    reading or rewriting the EXIF fails we keep the image as it is - a photo on its side
    still embeds better than no photo.  (Pillow rotates the pixels before it rewrites the
    metadata, so a failure in the rewrite keeps the correctly rotated pixels.)
    """
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:
        pass
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB with the colours a person would see.

    Plain ``convert("RGB")`` clips 16-bit and float data at 255 (a mid-grey 16-bit image
    turns white) and drops alpha onto black; those cases are handled first.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES:
        return _rgb_from_grey(_scale_sixteen_bit(np.asarray(image)))
    if mode in ("I", "F"):
        return _rgb_from_grey(_scale_unknown_depth(np.asarray(image)))
    if mode in _ALPHA_MODES or "transparency" in image.info:
        return _composite_on_white(image)
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageLoadError(f"cannot convert colour mode {mode} to RGB") from exc


def _scale_sixteen_bit(values: np.ndarray) -> np.ndarray:
    """Map 0..65535 to 0..255 by value/257, rounded (65535 -> 255, 32896 -> 128)."""
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _scale_unknown_depth(values: np.ndarray) -> np.ndarray:
    """Map 32-bit int ("I") or float ("F") grey values to 0..255, guessing the range.

    These modes do not record the original bit depth, so take the narrowest usual range that
    holds every value: 0..1 (floats only), 0..255, 0..65535; otherwise stretch min..max
    (a constant image outside those ranges is clipped).
    """
    is_float = values.dtype.kind == "f"
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 1 and is_float:
        scaled = values * 255
    elif low >= 0 and high <= 255:
        scaled = values
    elif low >= 0 and high <= 65535:
        scaled = values / 257
    elif high > low:
        scaled = (values - low) * (255 / (high - low))
    else:  # one value outside every usual range: nothing to stretch
        scaled = values
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _rgb_from_grey(values: np.ndarray) -> Image.Image:
    """Build an RGB image from a 2-D uint8 array of grey levels."""
    return Image.fromarray(values).convert("RGB")


def _composite_on_white(image: Image.Image) -> Image.Image:
    """Blend an image with alpha (or a transparent palette/colour key) onto white.

    White, not black: transparent logos and cut-outs are drawn for light backgrounds, and
    this is what a viewer shows.  Premultiplied modes (RGBa, La) are un-premultiplied by the
    conversion to straight alpha first.
    """
    if image.mode == "La":
        image = image.convert("LA")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _file_error_reason(exc: OSError) -> str:
    """Say why the file itself could not be read (as opposed to its contents)."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not an image file"
    if isinstance(exc, PermissionError):
        return "cannot read file: permission denied"
    if exc.errno is not None:
        return f"cannot read file: {(exc.strerror or str(exc)).lower()}"
    return f"truncated or corrupt image data: {_detail(exc)}"


def _pillow_bomb_reason(exc: Image.DecompressionBombError) -> str:
    """Phrase Pillow's bomb error (which has no width/height) like our own check."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" ({_megapixels(int(match.group(1)))} megapixels)" if match else ""
    return f"image is too large{size}, over the {_megapixels(MAX_PIXELS)} megapixel limit"


def _megapixels(pixels: int) -> int:
    """Round a pixel count to whole megapixels for messages."""
    return round(pixels / 1_000_000)


def _detail(exc: BaseException) -> str:
    """A short description of an exception for the end of a reason."""
    return str(exc) or type(exc).__name__
