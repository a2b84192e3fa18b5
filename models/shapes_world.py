"""The generated "shapes world" that the offline demo model is trained on and tested with.

Every image is one coloured shape (circle, square, triangle, star) on a patterned, desaturated
background, with a caption such as "a red circle on a striped background". The world is small
enough to train a CLIP model on a laptop CPU in minutes, yet it needs real vision (shape under
rotation, scale and position) and real language (colour, shape and background words in any
order or template), so a model that does well on a fresh held-out draw has genuinely learned.
Everything is drawn from a seeded ``random.Random``, so a seed reproduces the same images.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 165, 55),
    "blue": (35, 75, 215),
    "yellow": (240, 215, 35),
    "purple": (135, 45, 185),
    "orange": (245, 135, 25),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
BACKGROUNDS: tuple[str, ...] = ("plain", "striped", "dotted", "checkered", "gradient", "noisy")


@dataclass(frozen=True)
class Scene:
    """What one image shows; its caption is the ground truth the model learns from."""

    colour: str
    shape: str
    background: str

    @property
    def caption(self) -> str:
        return f"a {self.colour} {self.shape} on a {self.background} background"

    @property
    def stem(self) -> str:
        """A file-name stem that says what the image shows (handy in the demo gallery)."""
        return f"{self.colour}_{self.shape}_on_{self.background}"


def random_scene(rng: random.Random) -> Scene:
    return Scene(rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.choice(BACKGROUNDS))


def render(scene: Scene, rng: random.Random, size: int = 128) -> Image.Image:
    """Draw ``scene`` as a ``size``×``size`` RGB image with random placement, scale and rotation."""
    image = _background(scene.background, rng, size)
    draw = ImageDraw.Draw(image)
    radius = size * rng.uniform(0.17, 0.32)
    margin = radius * 1.05
    cx, cy = rng.uniform(margin, size - margin), rng.uniform(margin, size - margin)
    fill = _jitter(COLOURS[scene.colour], rng, 18)
    angle = rng.uniform(0, 2 * math.pi)
    if scene.shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
    else:
        draw.polygon(_polygon(scene.shape, cx, cy, radius, angle), fill=fill)
    return image


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        radii, n = [r * 0.9], 4
    elif shape == "triangle":
        radii, n = [r * 1.05], 3
    elif shape == "star":
        radii, n = [r * 1.05, r * 0.45], 10
    else:
        raise ValueError(f"unknown shape {shape!r}")
    points = []
    for k in range(n):
        rad = radii[k % len(radii)]
        a = angle + 2 * math.pi * k / n
        points.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return points


def _jitter(rgb: tuple[int, int, int], rng: random.Random, amount: int) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)


def _muted(rng: random.Random) -> tuple[int, int, int]:
    """A desaturated background colour, so the foreground colour is never ambiguous."""
    grey = rng.randint(35, 225)
    return tuple(max(0, min(255, grey + rng.randint(-14, 14))) for _ in range(3))


def _pair(rng: random.Random) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    a = _muted(rng)
    shift = rng.choice((-1, 1)) * rng.randint(45, 90)
    if not 0 <= a[0] + shift <= 255:
        shift = -shift
    b = tuple(max(0, min(255, c + shift)) for c in a)
    return a, b


def _background(kind: str, rng: random.Random, size: int) -> Image.Image:
    a, b = _pair(rng)
    if kind == "plain":
        return Image.new("RGB", (size, size), a)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == "striped":
        period = rng.uniform(0.08, 0.16) * size
        theta = rng.choice((0.0, math.pi / 2, math.pi / 4, -math.pi / 4))
        u = xx * math.cos(theta) + yy * math.sin(theta)
        mask = (u // (period / 2)) % 2 == 0
    elif kind == "checkered":
        cell = rng.uniform(0.08, 0.16) * size
        mask = ((xx // cell) + (yy // cell)) % 2 == 0
    elif kind == "dotted":
        period = rng.uniform(0.09, 0.14) * size
        fx, fy = (xx % period) - period / 2, (yy % period) - period / 2
        mask = fx * fx + fy * fy < (period * 0.22) ** 2
    elif kind == "gradient":
        theta = rng.uniform(0, 2 * math.pi)
        u = (xx * math.cos(theta) + yy * math.sin(theta)) / size
        t = ((u - u.min()) / max(1e-6, float(u.max() - u.min())))[..., None]
        pixels = np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t
        return Image.fromarray(pixels.astype(np.uint8), "RGB")
    elif kind == "noisy":
        nrng = np.random.default_rng(rng.getrandbits(32))
        noise = nrng.normal(0, 38, (size, size, 1)).astype(np.float32)
        pixels = np.asarray(a, np.float32) + noise
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    else:
        raise ValueError(f"unknown background {kind!r}")
    pixels = np.where(mask[..., None], np.asarray(a, np.uint8), np.asarray(b, np.uint8))
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def write_folder(out: str | os.PathLike, n: int, seed: int, size: int = 256,
                 quality: int = 90) -> list[tuple[Path, Scene]]:
    """Write ``n`` JPEGs of random scenes into ``out``; return each file with its ground truth.

    Scenes cycle through every colour × shape pair so that each pair is equally represented.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    written = []
    for i in range(n):
        colour, shape = pairs[i % len(pairs)]
        scene = Scene(colour, shape, rng.choice(BACKGROUNDS))
        path = out / f"{i:04d}_{scene.stem}.jpg"
        render(scene, rng, size).save(path, quality=quality)
        written.append((path, scene))
    return written
