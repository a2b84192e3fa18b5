# Copied from ../shared/bench/make_photos.py (issue 12) so the benchmarks run where that folder is absent; keep in step.
"""Make a folder of realistic, camera-sized JPEG photos from real sample photos.

Usage: python make_photos.py OUT_DIR N [--size 4032x3024] [--seed 0]
Each output is a random crop / flip / colour jitter / rescale of a real photo
(scikit-learn's bundled china.jpg and flower.jpg), plus sensor-like noise so the
JPEG entropy is close to a phone photo's. The result has the decode cost of a
real 12-megapixel photo library, without any download.
"""
import argparse, os, random
import numpy as np
from PIL import Image, ImageEnhance
from sklearn.datasets import load_sample_images


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--size", default="4032x3024")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    rng = random.Random(a.seed)
    nrng = np.random.default_rng(a.seed)
    base = [Image.fromarray(x) for x in load_sample_images().images]
    os.makedirs(a.out, exist_ok=True)
    for i in range(a.n):
        src = rng.choice(base)
        cw, ch = src.size
        s = rng.uniform(0.5, 1.0)
        bw, bh = int(cw * s), int(ch * s)
        x0, y0 = rng.randint(0, cw - bw), rng.randint(0, ch - bh)
        im = src.crop((x0, y0, x0 + bw, y0 + bh))
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        im = ImageEnhance.Color(im).enhance(rng.uniform(0.6, 1.4))
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.7, 1.3))
        portrait = rng.random() < 0.3
        size = (h, w) if portrait else (w, h)
        im = im.resize(size, Image.BICUBIC)
        arr = np.asarray(im, dtype=np.int16)
        arr = arr + nrng.normal(0, 4, arr.shape).astype(np.int16)
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        sub = os.path.join(a.out, f"album{i % 7}")
        os.makedirs(sub, exist_ok=True)
        im.save(os.path.join(sub, f"IMG_{i:05d}.jpg"), quality=90)


if __name__ == "__main__":
    main()
