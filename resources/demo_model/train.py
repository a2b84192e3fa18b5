"""Train the bundled offline demo model: a tiny open_clip CLIP on the generated shapes world.

Usage: python resources/demo_model/train.py [--out DIR] [--steps 3000] [--stop-at 1500] [--seed 0]
With the defaults it rewrites resources/demo_model (about 40 minutes on a 2-core CPU).

Why it exists: no pretrained CLIP weights can be downloaded on our build machines, yet tests and
the offline demo need a model that genuinely links images and words. This script trains one from
scratch with the CLIP contrastive objective (symmetric cross-entropy over image-text cosine
logits with a learnt temperature) on captions like "a red circle on a striped background".

Captions name some of the scene's attributes (colour, shape, background) and are wrapped in the
CLIP paper's prompt templates, so "a photo of a circle." and "a red star" both mean something to
the model. Because several images in a batch can fit one caption ("a circle"), the targets are
spread over every image a caption truly describes (multi-positive CLIP loss) instead of the
diagonal alone, which would teach the model to tell apart things the caption does not.

The result is written as an open_clip ``local-dir:`` folder (open_clip_config.json +
open_clip_model.safetensors). Runs are reproducible for a given seed on the same thread count.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from PIL import Image
from safetensors.torch import save_file

from clipscape.models.shapes_world import BACKGROUNDS, COLOURS, SHAPES, Scene, render  # noqa: E402

IMAGE_SIZE = 96
MODEL_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": IMAGE_SIZE, "patch_size": 16, "width": 128, "layers": 4,
                   "head_width": 32, "mlp_ratio": 2.0},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 3,
                 "mlp_ratio": 2.0},
}
PREPROCESS_CFG = {"size": IMAGE_SIZE, "mean": list(open_clip.OPENAI_DATASET_MEAN),
                  "std": list(open_clip.OPENAI_DATASET_STD), "interpolation": "bicubic",
                  "resize_mode": "shortest"}
COLOUR_NAMES, BG_NAMES = list(COLOURS), list(BACKGROUNDS)
FILTERS = (Image.BICUBIC, Image.BILINEAR, Image.BOX, Image.LANCZOS)


def _keep_big_buffers_out_of_the_heap() -> None:
    """Stop glibc's heap from growing ~10 MB a step (the dense token-embedding gradient).

    glibc raises its mmap threshold after big blocks are freed, after which those blocks come
    from the heap and fragment it: a 1,500-step run grew past 20 GB. A fixed threshold keeps
    them mmapped and returned to the system at every free (same effect as MALLOC_MMAP_THRESHOLD_).
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD = -3
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do


def make_images(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Render ``n`` scenes at 128 px, downsample to the model input; return pixels and attributes."""
    rng = random.Random(seed)
    pixels = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    attrs = np.empty((n, 3), np.int64)
    for i in range(n):
        c, s, b = rng.randrange(len(COLOURS)), rng.randrange(len(SHAPES)), rng.randrange(len(BACKGROUNDS))
        image = render(Scene(COLOUR_NAMES[c], SHAPES[s], BG_NAMES[b]), rng, rng.choice((128, 160, 192)))
        pixels[i] = np.asarray(image.resize((IMAGE_SIZE, IMAGE_SIZE), rng.choice(FILTERS)))
        attrs[i] = (c, s, b)
    return torch.from_numpy(pixels), attrs


def caption_for(attr: np.ndarray, rng: random.Random) -> tuple[str, tuple[int, int, int]]:
    """A caption naming some attributes of a scene, and which ones it names (-1 = not named)."""
    c, s, b = (int(x) for x in attr)
    colour, shape, bg = COLOUR_NAMES[c], SHAPES[s], BG_NAMES[b]
    form = rng.random()
    if form < 0.35:
        text, named = f"{colour} {shape} on a {bg} background", (c, s, b)
    elif form < 0.65:
        text, named = f"{colour} {shape}", (c, s, -1)
    elif form < 0.78:
        text, named = shape, (-1, s, -1)
    elif form < 0.90:
        text, named = colour, (c, -1, -1)
    elif form < 0.95:
        text, named = f"{shape} on a {bg} background", (-1, s, b)
    else:
        text, named = f"{bg} background", (-1, -1, b)
    wrap = rng.random()
    if wrap < 0.35:
        text = f"a {text}"
    elif wrap < 0.85:
        text = rng.choice(OPENAI_IMAGENET_TEMPLATES)(text)
    return text, named


def multi_positive_loss(logits: torch.Tensor, img_attrs: torch.Tensor, txt_named: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP cross-entropy whose targets cover every image each caption describes."""
    fits = ((txt_named[None, :, :] == -1) | (txt_named[None, :, :] == img_attrs[:, None, :])).all(-1).float()
    i2t = -(fits / fits.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
    t2i = -(fits.T / fits.T.sum(1, keepdim=True) * F.log_softmax(logits.T, 1)).sum(1).mean()
    return (i2t + t2i) / 2


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(PREPROCESS_CFG["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(PREPROCESS_CFG["std"]).view(1, 3, 1, 1)
    return (pixels.permute(0, 3, 1, 2).float() / 255 - mean) / std


def train(steps: int, batch: int, seed: int, n_images: int, out: Path | None = None,
          stop_at: int | None = None) -> tuple[torch.nn.Module, set[int]]:
    """Train on a learning-rate schedule planned for ``steps`` steps, stopping after step ``stop_at``."""
    _keep_big_buffers_out_of_the_heap()
    torch.manual_seed(seed)
    t0 = time.time()
    pixels, attrs = make_images(n_images, seed)
    print(f"rendered {n_images} images in {time.time() - t0:.0f} s", flush=True)
    model = open_clip.CLIP(**MODEL_CFG)
    tokenizer = open_clip.SimpleTokenizer(context_length=MODEL_CFG["text_cfg"]["context_length"])
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
                            lr=2e-3, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, k / steps))))
    rng, seen_tokens, token_cache = random.Random(seed + 1), set(), {}
    model.train()
    last = steps - 1 if stop_at is None else min(steps - 1, stop_at)
    for step in range(last + 1):
        idx = torch.from_numpy(np.asarray(rng.sample(range(n_images), batch)))
        images = normalise(pixels[idx])
        if rng.random() < 0.5:
            images = images.flip(3)
        texts, named = zip(*(caption_for(attrs[i], rng) for i in idx.tolist()))
        for t in texts:
            if t not in token_cache:
                token_cache[t] = tokenizer([t])[0]
                seen_tokens.update(token_cache[t].tolist())
        tokens = torch.stack([token_cache[t] for t in texts])
        img_f, txt_f, scale = model(images, tokens)
        loss = multi_positive_loss(scale * img_f @ txt_f.T, torch.from_numpy(attrs[idx.numpy()]),
                                   torch.tensor(named))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:5d} loss {loss.item():.3f} scale {scale.item():.1f} "
                  f"{time.time() - t0:.0f} s", flush=True)
        if step and step % 500 == 0:
            print(f"step {step:5d} held-out: {evaluate(model.eval())}", flush=True)
            if out is not None:  # a usable model at every stage, should a long run be stopped
                save(model, seen_tokens, out)
            model.train()
    return model.eval(), seen_tokens


def save(model: torch.nn.Module, seen_tokens: set[int], out: Path) -> None:
    """Write the local-dir folder; token rows never seen in training are zeroed (neutral, compress well)."""
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    emb = state["token_embedding.weight"]
    unseen = torch.ones(emb.shape[0], dtype=torch.bool)
    unseen[sorted(seen_tokens)] = False
    emb[unseen] = 0
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    config = {"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}
    (out / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")


def evaluate(model: torch.nn.Module, seed: int = 12345, n: int = 480) -> dict[str, float]:
    """Quick held-out check used while training (the test suite checks through the public API)."""
    pixels, attrs = make_images(n, seed)
    tokenizer = open_clip.SimpleTokenizer(context_length=MODEL_CFG["text_cfg"]["context_length"])
    with torch.inference_mode():
        img = F.normalize(model.encode_image(normalise(pixels)), dim=-1)

        def classes(names):
            embs = []
            for name in names:
                t = F.normalize(model.encode_text(tokenizer([f(name) for f in OPENAI_IMAGENET_TEMPLATES])), dim=-1)
                embs.append(F.normalize(t.mean(0), dim=-1))
            return torch.stack(embs)

        shape_acc = ((img @ classes(SHAPES).T).argmax(1).numpy() == attrs[:, 1]).mean()
        colour_acc = ((img @ classes(COLOUR_NAMES).T).argmax(1).numpy() == attrs[:, 0]).mean()
        precisions = []
        for c, colour in enumerate(COLOUR_NAMES):
            for s, shape in enumerate(SHAPES):
                q = F.normalize(model.encode_text(tokenizer([f"a {colour} {shape}"])), dim=-1)[0]
                top = (img @ q).topk(10).indices.numpy()
                precisions.append(((attrs[top, 0] == c) & (attrs[top, 1] == s)).mean())
    return {"shape_acc": float(shape_acc), "colour_acc": float(colour_acc), "p_at_10": float(np.mean(precisions))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--steps", type=int, default=3000, help="length of the learning-rate schedule")
    ap.add_argument("--stop-at", type=int, default=1500,
                    help="stop after step N, counting from 0 (the bundled model is the step-1500 "
                         "checkpoint: the held-out targets are met with margin by then, at half the cost)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--images", type=int, default=16000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    model, seen = train(a.steps, a.batch, a.seed, a.images, a.out, a.stop_at)
    print("held-out:", evaluate(model), flush=True)
    save(model, seen, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
