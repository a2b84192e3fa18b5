"""Tests for models.images.load_rgb: every awkward image kind, made on the spot with Pillow."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipscape.models import images
from clipscape.models.images import MAX_PIXELS, ImageLoadError, load_rgb

WHITE = (255, 255, 255)
RED = (255, 0, 0)
BLUE = (0, 0, 255)
COLOUR = (200, 30, 60)
REPO = Path(__file__).resolve().parents[1]


def near(pixel, expected, tolerance=6):
    """Whether an RGB pixel is within ``tolerance`` per channel (lossy codecs shift a little)."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected))


def assert_rgb(image, size, colour, tolerance=6):
    """The result is a loaded RGB image of ``size`` whose centre pixel is ``colour``."""
    assert image.mode == "RGB"
    assert image.size == size
    centre = image.getpixel((size[0] // 2, size[1] // 2))
    assert near(centre, colour, tolerance), centre


def save(image, path, **params):
    """Save ``image`` to ``path`` and return the path as str (what callers pass)."""
    image.save(path, **params)
    return str(path)


# --- ordinary formats -------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "bmp", "tif", "gif"])
def test_plain_rgb_formats_keep_size_and_colour(tmp_path, ext):
    path = save(Image.new("RGB", (40, 30), COLOUR), tmp_path / f"plain.{ext}")
    assert_rgb(load_rgb(path), (40, 30), COLOUR, tolerance=8)


def test_heic_loads_when_pillow_heif_is_installed(tmp_path):
    pytest.importorskip("pillow_heif")
    try:
        path = save(Image.new("RGB", (64, 48), COLOUR), tmp_path / "phone.heic")
    except (KeyError, OSError, ValueError) as exc:  # a build without an HEVC encoder
        pytest.skip(f"cannot write HEIC here: {exc}")
    assert_rgb(load_rgb(path), (64, 48), COLOUR, tolerance=10)


def test_uppercase_extension_and_wrong_extension_still_decode(tmp_path):
    upper = save(Image.new("RGB", (10, 10), COLOUR), tmp_path / "UPPER.JPG")
    png_named_jpg = save(Image.new("RGB", (10, 10), COLOUR), tmp_path / "really_png.jpg", format="PNG")
    assert_rgb(load_rgb(upper), (10, 10), COLOUR)
    assert_rgb(load_rgb(png_named_jpg), (10, 10), COLOUR, tolerance=0)


# --- JPEG draft decoding ---------------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    """A 3000×2000 JPEG: left half red, right half blue."""
    image = Image.new("RGB", (3000, 2000), RED)
    image.paste(BLUE, (1500, 0, 3000, 2000))
    return save(image, tmp_path_factory.mktemp("big") / "big.jpg", quality=90)


def test_min_side_decodes_jpeg_at_reduced_scale(big_jpeg):
    image = load_rgb(big_jpeg, min_side=224)
    assert image.size == (375, 250)  # 1/8 scale: the largest whose shorter side is >= 224
    assert near(image.getpixel((50, 125)), RED)
    assert near(image.getpixel((325, 125)), BLUE)


@pytest.mark.parametrize(
    ("min_side", "expected"),
    [(224, (375, 250)), (300, (750, 500)), (600, (1500, 1000)), (1000, (1500, 1000)), (1999, (3000, 2000))],
)
def test_draft_picks_the_smallest_scale_not_below_min_side(big_jpeg, min_side, expected):
    image = load_rgb(big_jpeg, min_side=min_side)
    assert image.size == expected
    assert min(image.size) >= min_side
    assert near(image.getpixel((10, 10)), RED)


def test_phone_mpo_gives_first_picture_with_draft(tmp_path):
    path = tmp_path / "phone.jpg"
    first, preview = Image.new("RGB", (800, 600), COLOUR), Image.new("RGB", (80, 60), BLUE)
    first.save(path, format="MPO", save_all=True, append_images=[preview])
    assert Image.open(path).format == "MPO"
    assert_rgb(load_rgb(str(path), min_side=224), (400, 300), COLOUR)


def test_no_min_side_decodes_full_size(big_jpeg):
    assert load_rgb(big_jpeg).size == (3000, 2000)


def test_min_side_is_ignored_for_non_jpeg(tmp_path):
    path = save(Image.new("RGB", (800, 600), COLOUR), tmp_path / "big.png")
    assert load_rgb(path, min_side=224).size == (800, 600)


# --- EXIF orientation ------------------------------------------------------------------


def red_left_blue_right(size=(40, 20)):
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image


def test_exif_orientation_6_rotates_the_pixels(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    path = save(red_left_blue_right(), tmp_path / "sideways.jpg", exif=exif.tobytes(), quality=95)
    image = load_rgb(path)
    assert image.size == (20, 40)
    assert near(image.getpixel((10, 5)), RED)  # the left edge is now at the top
    assert near(image.getpixel((10, 35)), BLUE)


def test_garbage_exif_block_still_loads(tmp_path):
    path = save(red_left_blue_right(), tmp_path / "garbage.jpg", exif=b"Exif\x00\x00garbage")
    image = load_rgb(path)
    assert image.size == (40, 20)
    assert near(image.getpixel((5, 10)), RED)


def test_corrupted_exif_orientation_block_still_loads(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(red_left_blue_right(), tmp_path / "corrupt.jpg", exif=exif.tobytes())
    data = bytearray(Path(path).read_bytes())
    tiff_header = data.find(b"Exif\x00\x00") + 6
    data[tiff_header + 4 : tiff_header + 8] = b"\xff\xff\xff\x00"  # IFD0 offset far past the end
    Path(path).write_bytes(bytes(data))
    image = load_rgb(path)
    assert image.size == (40, 20)  # orientation unreadable: pixels kept as stored
    assert near(image.getpixel((5, 10)), RED)


# --- modes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "value", "ext"),
    [
        ("I;16", 32896, "png"),
        ("I;16", 32896, "tif"),
        ("I;16B", 32896, "tif"),
        ("I", 32896, "tif"),
        ("F", 0.5, "tif"),
    ],
)
def test_deep_grey_is_scaled_not_clipped(tmp_path, mode, value, ext):
    path = save(Image.new(mode, (8, 6), value), tmp_path / f"deep.{ext}")
    assert_rgb(load_rgb(path), (8, 6), (128, 128, 128), tolerance=1)


def test_sixteen_bit_png_keeps_its_range(tmp_path):
    ramp = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(ramp), tmp_path / "ramp16.png")
    image = load_rgb(path)
    assert [image.getpixel((x, 0)) for x in range(4)] == [(0,) * 3, (1,) * 3, (128,) * 3, (255,) * 3]


def test_rgba_composites_onto_white(tmp_path):
    image = Image.new("RGBA", (30, 10), (255, 0, 0, 0))  # fully transparent red
    image.paste((0, 0, 255, 255), (10, 0, 20, 10))  # opaque blue
    image.paste((0, 0, 0, 128), (20, 0, 30, 10))  # half-transparent black
    result = load_rgb(save(image, tmp_path / "alpha.png"))
    assert result.mode == "RGB"
    assert result.getpixel((5, 5)) == WHITE
    assert result.getpixel((15, 5)) == BLUE
    assert near(result.getpixel((25, 5)), (127, 127, 127), tolerance=1)


def test_la_composites_onto_white(tmp_path):
    image = Image.new("LA", (20, 10), (0, 0))
    image.paste((50, 255), (10, 0, 20, 10))
    result = load_rgb(save(image, tmp_path / "grey_alpha.png"))
    assert result.getpixel((5, 5)) == WHITE
    assert result.getpixel((15, 5)) == (50, 50, 50)


def test_palette_gif_with_transparent_index_is_white(tmp_path):
    image = Image.new("P", (20, 10), 0)
    image.putpalette([0, 255, 0] + [255, 0, 0] + [0, 0, 0] * 254)
    image.paste(1, (10, 0, 20, 10))
    result = load_rgb(save(image, tmp_path / "transparent.gif", transparency=0))
    assert result.getpixel((5, 5)) == WHITE  # index 0 is green but transparent
    assert result.getpixel((15, 5)) == RED


def test_palette_png_without_transparency(tmp_path):
    image = Image.new("RGB", (20, 10), COLOUR).quantize(4)
    result = load_rgb(save(image, tmp_path / "palette.png"))
    assert_rgb(result, (20, 10), COLOUR, tolerance=2)


def test_cmyk_jpeg_is_converted(tmp_path):
    path = save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    assert_rgb(load_rgb(path), (16, 16), RED)


def test_cmyk_tiff_is_converted(tmp_path):
    path = save(Image.new("CMYK", (16, 16), (255, 0, 255, 0)), tmp_path / "cmyk.tif")
    assert_rgb(load_rgb(path), (16, 16), (0, 255, 0), tolerance=0)


def test_one_bit_png(tmp_path):
    image = Image.new("1", (16, 8), 0)
    image.paste(1, (8, 0, 16, 8))
    result = load_rgb(save(image, tmp_path / "bits.png"))
    assert result.getpixel((2, 2)) == (0, 0, 0)
    assert result.getpixel((12, 2)) == WHITE


def test_greyscale_jpeg_with_draft(tmp_path):
    path = save(Image.new("L", (16, 16), 90), tmp_path / "grey.jpg")
    assert_rgb(load_rgb(path, min_side=8), (8, 8), (90, 90, 90), tolerance=2)


@pytest.mark.parametrize("ext", ["gif", "webp"])
def test_animation_gives_first_frame(tmp_path, ext):
    frames = [Image.new("RGB", (12, 12), colour) for colour in (RED, (0, 255, 0), BLUE)]
    path = tmp_path / f"anim.{ext}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    assert Image.open(path).n_frames == 3
    assert_rgb(load_rgb(str(path)), (12, 12), RED, tolerance=0)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("RGBa", (100, 0, 0, 128), (227, 127, 127)),  # premultiplied: straight colour is 200,0,0
        ("La", (60, 128), (187, 187, 187)),  # straight grey 119 at half alpha over white
        ("PA", (0, 0), WHITE),
        ("HSV", (0, 255, 255), RED),
        ("YCbCr", (76, 85, 255), RED),
        ("F", 70000.0, (255, 255, 255)),  # constant out of range: clipped
        ("I", 200, (200, 200, 200)),
    ],
)
def test_in_memory_modes_convert_correctly(mode, value, expected):
    """Modes no common file format writes, checked through the conversion step itself."""
    image = Image.new(mode, (4, 4), value)
    if mode == "PA":
        image.putpalette([10, 20, 30] * 256)
    assert near(images._to_rgb(image).getpixel((1, 1)), expected, tolerance=2)


def test_float_out_of_range_is_stretched():
    image = Image.fromarray(np.array([[-1.0, 0.0, 3.0]], dtype=np.float32))
    result = images._to_rgb(image)
    assert [result.getpixel((x, 0))[0] for x in range(3)] == [0, 64, 255]


# --- failures --------------------------------------------------------------------------


def reason_for(path, **kwargs):
    """Call load_rgb expecting ImageLoadError (and nothing else); return the reason."""
    with pytest.raises(ImageLoadError) as info:
        load_rgb(str(path), **kwargs)
    assert type(info.value) is ImageLoadError
    return str(info.value)


def test_truncated_jpeg(tmp_path, big_jpeg):
    path = tmp_path / "truncated.jpg"
    path.write_bytes(Path(big_jpeg).read_bytes()[:5000])
    assert reason_for(path).startswith("truncated or corrupt image data")
    assert reason_for(path, min_side=224).startswith("truncated or corrupt image data")


def test_truncated_png(tmp_path):
    data = Path(save(Image.effect_noise((200, 200), 50), tmp_path / "full.png")).read_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    assert reason_for(path).startswith("truncated or corrupt image data")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert reason_for(path) == "empty file (0 bytes)"


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n")
    assert reason_for(path) == "not an image Pillow can read (cannot identify image file)"


def test_eps_named_jpg_is_not_handed_to_ghostscript(tmp_path):
    path = tmp_path / "drawing.jpg"
    path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    assert reason_for(path) == "not an image Pillow can read (cannot identify image file)"


def test_directory(tmp_path):
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    assert reason_for(folder) == "is a folder, not an image file"


def test_missing_file(tmp_path):
    assert reason_for(tmp_path / "gone.jpg") == "file not found"


def test_permission_denied(tmp_path, monkeypatch):
    path = save(Image.new("RGB", (4, 4)), tmp_path / "secret.png")

    def refuse(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", file)

    monkeypatch.setattr(images, "open", refuse, raising=False)  # works as root too
    assert reason_for(path) == "cannot read file: permission denied"


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_permission_denied_for_real(tmp_path):
    import subprocess
    import sys

    from conftest import run_unprivileged

    path = save(Image.new("RGB", (4, 4)), tmp_path / "secret.png")
    os.chmod(path, 0)
    code = ("import sys; from clipscape.models.images import ImageLoadError, load_rgb\n"
            "try:\n    load_rgb(sys.argv[1])\nexcept ImageLoadError as e:\n    print(e)")
    proc = run_unprivileged([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)  # as root (CI), without the power to ignore permissions
    assert proc.returncode == 0 and proc.stdout.strip() == "cannot read file: permission denied", proc.stderr


# --- decompression bombs ---------------------------------------------------------------


def write_bomb_png(path, width, height):
    """A valid 1-bit grey PNG of ``width``×``height``, all zero: tiny on disk, huge decoded.

    Written chunk by chunk so the test itself never holds the pixels in memory.
    """
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    rows_per_chunk = max(1, (1 << 20) // len(row))
    chunk = row * rows_per_chunk
    parts = [compressor.compress(chunk) for _ in range(height // rows_per_chunk)]
    parts.append(compressor.compress(row * (height % rows_per_chunk)))
    parts.append(compressor.flush())

    def png_chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )
    return str(path)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    return {
        # Over our limit but under Pillow's own hard limit (2×): caught by our header check.
        "ours": write_bomb_png(folder / "bomb_ours.png", 15000, 13000),
        # Over twice the limit: Pillow's backstop raises inside Image.open.
        "pillows": write_bomb_png(folder / "bomb_pillows.png", 30000, 30000),
    }


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bomb_file_is_small_and_valid(bombs):
    assert os.path.getsize(bombs["pillows"]) < 1_000_000
    with Image.open(bombs["ours"]) as header_only:
        assert header_only.size == (15000, 13000)
    assert 15000 * 13000 > MAX_PIXELS


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # pytest resets ours
def test_bomb_refused_from_header_with_dimensions(bombs):
    start = time.perf_counter()
    reason = reason_for(bombs["ours"], min_side=224)
    assert time.perf_counter() - start < 1.0
    assert reason == "image is 15000×13000 pixels, over the 179 megapixel limit"


def test_bomb_over_pillows_own_limit_is_an_image_load_error(bombs):
    start = time.perf_counter()
    reason = reason_for(bombs["pillows"])
    assert time.perf_counter() - start < 1.0
    assert reason == "image is too large (900 megapixels), over the 179 megapixel limit"


MEMORY_PROBE = """
import resource, sys
from clipscape.models.images import ImageLoadError, load_rgb
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_rgb(sys.argv[1])
except ImageLoadError as exc:
    print("refused:", exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * (1 if sys.platform == "darwin" else 1024))
"""


@pytest.mark.parametrize("which", ["ours", "pillows"])
def test_bomb_memory_stays_flat_and_quiet(bombs, which):
    """Run in a fresh process: ru_maxrss is a peak, so only a clean baseline means anything.

    The fresh process also shows that the import-time filter keeps Pillow's
    DecompressionBombWarning quiet (pytest resets warning filters for each test).
    """
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, bombs[which]],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )
    refused, grown = done.stdout.strip().splitlines()
    assert refused.startswith("refused: image is")
    assert int(grown) < 50 * 1024 * 1024
    assert "DecompressionBombWarning" not in done.stderr


def test_images_just_under_the_limit_are_not_refused_by_the_header_check(tmp_path):
    path = write_bomb_png(tmp_path / "wide.png", 20000, 10)
    assert load_rgb(path).size == (20000, 10)


# --- names and threads -----------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes")
def test_non_utf8_file_name(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    descriptor = os.open(raw, os.O_WRONLY | os.O_CREAT, 0o644)
    with os.fdopen(descriptor, "wb") as stream:
        Image.new("RGB", (6, 4), COLOUR).save(stream, format="PNG")
    assert_rgb(load_rgb(os.fsdecode(raw)), (6, 4), COLOUR, tolerance=0)


def test_parallel_loads_match_serial(tmp_path, big_jpeg):
    paths = [big_jpeg]
    for index, colour in enumerate([RED, BLUE, COLOUR, (0, 255, 0)]):
        paths.append(save(Image.new("RGB", (300, 200), colour), tmp_path / f"{index}.png"))
    paths.append(str(tmp_path / "missing.png"))

    def fingerprint(path):
        try:
            image = load_rgb(path, min_side=224)
        except ImageLoadError as exc:
            return str(exc)
        return image.size, image.getpixel((10, 10)), image.getpixel((image.width - 10, 10))

    serial = [fingerprint(path) for path in paths * 3]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(fingerprint, paths * 3)) == serial
