"""Load an open_clip model and turn images and texts into L2-normalised embeddings.

Three ways to name a model, as the command line and the model picker offer them:
- an open_clip architecture + pretrained tag (``ViT-B-32`` / ``laion2b_s34b_b79k``), downloaded
  once into open_clip's usual cache (see models.weights);
- ``local-dir:FOLDER`` holding open_clip_config.json + open_clip_model.safetensors;
- an architecture + a checkpoint file (``--pretrained model.safetensors`` or a .pt/.bin, which
  is loaded with ``torch.load(weights_only=True)``, never plain pickle);
and ``demo``, the tiny model trained on the shapes world that ships in resources/.

The model's identity (name, tag or weights hash, preprocessing) is part of the embedding cache key,
so embeddings from different models or preprocessing never mix.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from clipscape.models.file_hashes import cached_sha256, file_sha256  # noqa: F401 (file_sha256 re-exported)
from clipscape.models.weights import (
    KNOWN_HUB,
    ModelUnavailable,
    pretrained_config,
    resolve,
)
from clipscape.resources import DEMO_MODEL

log = logging.getLogger(__name__)

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
DEMO = "demo"
DEMO_DIR = DEMO_MODEL
LOCAL_DIR = "local-dir:"
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")  # a --pretrained ending so is a file


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for: a model name (or ``demo`` / ``local-dir:PATH``) and a tag or file."""

    name: str = DEFAULT_MODEL
    pretrained: str | None = DEFAULT_PRETRAINED

    @classmethod
    def parse(cls, model: str | None, pretrained: str | None = None) -> "ModelSpec":
        """Fill in defaults: no model means ViT-B-32/laion2b; a hub name with no tag gets its first tag."""
        model = (model or DEFAULT_MODEL).strip()
        if model == DEMO or model.startswith(LOCAL_DIR):
            return cls(model, None)
        if pretrained is None:
            pretrained = DEFAULT_PRETRAINED if model == DEFAULT_MODEL else _first_tag(model)
        return cls(model, pretrained)

    @property
    def label(self) -> str:
        return self.name if not self.pretrained else f"{self.name}/{self.pretrained}"


def _first_tag(model: str) -> str | None:
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(model)
    return tags[0] if tags else None


def pick_device(requested: str = "auto") -> str:
    """cuda, then Apple mps, then cpu for "auto"; an explicit device must exist."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("--device cuda was asked for, but torch sees no CUDA GPU")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelUnavailable("--device mps was asked for, but this torch build has no Apple MPS")
    if requested not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {requested!r} (auto, cpu, cuda or mps)")
    return requested


@dataclass(frozen=True)
class Launched:
    """A batch whose forward pass is queued on the device (Encoder.launch → Encoder.collect).

    ``source`` is the host batch, kept alive until the features are collected: a non-blocking
    copy may still be reading it (torch's pinned-memory allocator guards CUDA's own buffers,
    but nothing guards a plain host tensor an MPS copy reads from).
    """

    features: list  # unit-length B×D tensors on the device, one per chunk
    source: Any


class Encoder:
    """An open_clip model ready for inference, with the preprocessing its weights were trained with."""

    def __init__(self, model: Any, preprocess: Callable, tokenizer: Callable, device: str,
                 identity: dict[str, Any]):
        import torch

        self.model = model.eval()
        self.preprocess = preprocess
        pixels, self._normalise = _split_preprocess(preprocess)
        if self._normalise is not None:  # mean and std live where the batches are normalised
            self._normalise = tuple(t.to(device) for t in self._normalise)
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = torch.float16 if device == "cuda" else torch.float32
        self.identity = identity
        self.key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
        self.input_size = _input_size(identity["preprocess"]["size"])
        self.preparer = Preparer(pixels, self._normalise is not None, self.input_size)
        self.logit_scale = float(model.logit_scale.exp().item())
        self.max_batch: int | None = None  # lowered after a CUDA out-of-memory error
        with torch.inference_mode():
            probe = torch.zeros(1, 3, self.input_size, self.input_size, device=device, dtype=self.dtype)
            self.dim = int(model.encode_image(probe).shape[-1])

    def prepare(self, image: "PIL.Image.Image") -> "torch.Tensor":
        """One decoded image → the tensor encode_images takes (runs in the decode threads); see Preparer."""
        return self.preparer.prepare(image)

    def host_batch(self, tensors: list["torch.Tensor"]) -> "torch.Tensor":
        """Stack prepared images (from prepare()) into one batch on the host, pinned on CUDA.

        Page-locked memory is what lets launch() copy the batch to the GPU without blocking the
        thread, at full bus speed; torch's caching host allocator recycles the buffers, and
        does not hand one out again before the copy from it has finished.
        """
        import torch

        first = tensors[0]
        out = torch.empty((len(tensors), *first.shape), dtype=first.dtype, pin_memory=self.device == "cuda")
        return torch.stack(tensors, out=out)

    def encode_images(self, batch: "torch.Tensor") -> np.ndarray:
        """Image batch (B×3×H×W, from prepare()/host_batch() or the model's preprocess) → B×D float32 unit vectors.

        launch() then collect(): see there for the device copy and the out-of-memory back-off.
        """
        return self.collect(self.launch(batch))

    def launch(self, batch: "torch.Tensor") -> "Launched":
        """Queue the forward pass of a host batch on the device; return without waiting for it.

        A uint8 batch crosses to the device as uint8 (non-blocking from pinned memory) and is
        normalised there in float32, then cast to the model's dtype (fp16 on CUDA). On a CPU
        the device is the host, and the numbers are exactly those of normalising before.
        On CUDA out-of-memory the batch is split in halves (and later batches stay that small),
        so a too-large --batch-size slows the run down instead of ending it.
        """
        return Launched(self._launch(batch), batch)

    def _launch(self, batch: "torch.Tensor") -> list["torch.Tensor"]:
        import torch

        limit = self.max_batch or len(batch)
        if len(batch) > limit:
            return [f for i in range(0, len(batch), limit) for f in self._launch(batch[i:i + limit])]
        try:
            with torch.inference_mode():
                pixels = self._normalised(self._to_device(batch))
                return [_unit_on_device(self.model.encode_image(pixels))]
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise
            self.max_batch = max(1, len(batch) // 2)
            log.warning("out of GPU memory at batch %d; going on with %d", len(batch), self.max_batch)
            if self.device == "cuda":
                torch.cuda.empty_cache()
            return self._launch(batch)

    def collect(self, launched: "Launched") -> np.ndarray:
        """Wait for launched features and bring them to the host as one B×D float32 array."""
        import torch

        chunks = launched.features
        return (chunks[0] if len(chunks) == 1 else torch.cat(chunks)).cpu().numpy()

    def _to_device(self, batch: "torch.Tensor") -> "torch.Tensor":
        return batch.to(self.device, non_blocking=True)

    def _normalised(self, batch: "torch.Tensor") -> "torch.Tensor":
        """A uint8 batch on the device → the model's input; a float batch is only cast."""
        import torch

        if batch.dtype == torch.uint8:
            mean, std = self._normalise
            batch = batch.float().div_(255).sub_(mean).div_(std)
        return batch.to(self.dtype)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts → N×D float32 unit vectors (in chunks, so a long prompt ensemble stays small).

        A single caption on a CPU runs on one torch thread (_one_torch_thread): hundreds of tiny
        ops split between two threads wait on each other whenever the window's other threads hold
        a core, and a caption that takes 3-6 ms alone took 80-200 ms one time in five."""
        import torch

        out = []
        threads = _one_torch_thread() if self.device == "cpu" and len(texts) == 1 else nullcontext()
        with threads, torch.inference_mode():
            for i in range(0, len(texts), 256):
                tokens = self.tokenizer(list(texts[i:i + 256])).to(self.device)
                out.append(_unit(self.model.encode_text(tokens)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


@contextmanager
def _one_torch_thread():
    """torch's intra-op threads set to one for the block (this thread's setting), then put back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Preparer:
    """The per-image half of a model's preprocessing, apart from the model (picklable, no weights).

    When the model's transform ends in ToTensor + Normalize (every open_clip transform does),
    only the resize/crop steps run per image and the image stays uint8 (3×H×W); the Encoder
    then normalises the whole batch in one vectorised step on the device. That is the same
    arithmetic, but a third cheaper per image on a CPU than converting each image on its own,
    and on a GPU a quarter of the bytes to copy. The local decode threads and the Ray decode
    tasks (models/ray_encode.py) both call ``prepare``, so both feed the model the same pixels.
    """

    steps: Callable          # the PIL steps (resize, crop), or the whole transform when not uint8
    uint8: bool              # True: ``steps`` leave PIL pixels and the Encoder normalises batches
    input_size: int

    def prepare(self, image: "PIL.Image.Image") -> "torch.Tensor":
        import torch

        if not self.uint8:
            return self.steps(image)
        return torch.from_numpy(np.array(self.steps(image))).permute(2, 0, 1)


def _split_preprocess(preprocess: Callable) -> tuple[Callable, tuple | None]:
    """(the PIL steps, (mean, std) as 1×3×1×1 tensors) of a Compose ending in ToTensor, Normalize.

    Any other transform gives (preprocess, None) and is applied whole, per image.
    """
    import torch
    from torchvision.transforms import Compose, Normalize

    steps = list(getattr(preprocess, "transforms", []))
    if len(steps) < 2 or not isinstance(steps[-1], Normalize) or "ToTensor" not in type(steps[-2]).__name__:
        return preprocess, None
    norm = steps[-1]
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32).view(1, -1, 1, 1)
    return Compose(steps[:-2]), (mean, std)


def _unit(features: "torch.Tensor") -> np.ndarray:
    return _unit_on_device(features).cpu().numpy()


def _unit_on_device(features: "torch.Tensor") -> "torch.Tensor":
    features = features.float()
    return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _input_size(size: int | list[int] | tuple[int, ...]) -> int:
    return int(size) if isinstance(size, int) else int(min(size))


def load_encoder(spec: ModelSpec, device: str = "auto", cache_dir: str | None = None,
                 tqdm_class: Any = None) -> Encoder:
    """Build the Encoder for ``spec`` on ``device``; raises ModelUnavailable with a fix-it message.

    ``cache_dir`` is where hub weights are cached (None: open_clip's usual Hugging Face cache);
    ``tqdm_class`` receives download progress. The weights are found (or downloaded) before
    torch is imported, so a model that cannot be had fails in about a second, not after 4 s of
    imports.
    """
    return build_encoder(locate(spec, cache_dir, tqdm_class), device)


@dataclass(frozen=True)
class Located:
    """A model whose weights are on disk, found without importing torch or open_clip."""

    spec: ModelSpec
    name: str                    # open_clip's model name, or local-dir:FOLDER
    pretrained: str | None       # the weights file for create_model_and_transforms
    identity: dict[str, Any]     # the Encoder's identity less "preprocess", which the built model adds
    config: Path | None = None   # a local-dir model's open_clip_config.json
    hub_tag: str | None = None   # a hub model's tag: its preprocessing comes from open_clip's table


def build_encoder(located: Located, device: str = "auto") -> Encoder:
    """The Encoder for weights ``locate`` found (imports torch and open_clip; seconds)."""
    import open_clip

    extra = {} if located.hub_tag is None else _hub_preprocessing(located.name, located.hub_tag)
    dev = pick_device(device)
    precision = "fp16" if dev == "cuda" else "fp32"
    try:
        with _no_random_init():  # every weight is then loaded from the checkpoint (strict)
            model, _, preprocess = open_clip.create_model_and_transforms(
                located.name, pretrained=located.pretrained, device=dev, precision=precision, weights_only=True,
                **extra)
    except Exception as e:  # any failure to build the model (bad file, refused pickle, shape mismatch)
        raise ModelUnavailable(f"cannot load model {located.spec.label}: {_first_line(e)}") from e
    tokenizer = open_clip.get_tokenizer(located.name)
    identity = dict(located.identity, preprocess=_preprocess_identity(model))
    return Encoder(model, preprocess, tokenizer, dev, identity)


# torch.nn.init's random fills: building ViT-B-32 spends about 1-2 s of a 2-core CPU drawing 150 M
# random numbers that the checkpoint then overwrites.
_RANDOM_INITS = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
                 "xavier_uniform_", "xavier_normal_", "orthogonal_")


@contextmanager
def _no_random_init() -> Iterator[None]:
    """Skip the random initialisation of new modules while a model is built to load a checkpoint.

    Only safe because open_clip then loads the full checkpoint with strict=True: every parameter
    and persistent buffer is overwritten, and a missing one is an error, not a random weight.
    (transformers' ``no_init_weights`` does the same.) The functions are module-wide, so this
    must not overlap building another model in another thread; model loads are one at a time.
    """
    import torch.nn.init as init

    saved = {name: getattr(init, name) for name in _RANDOM_INITS}
    for name in _RANDOM_INITS:
        setattr(init, name, _keep)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(init, name, function)


def _keep(tensor: "torch.Tensor", *args: Any, **kwargs: Any) -> "torch.Tensor":
    """An init function that leaves the tensor as it is (torch.empty's memory until loaded)."""
    return tensor


def locate(spec: ModelSpec, cache_dir: str | None = None, tqdm_class: Any = None,
           hashes_dir: str | os.PathLike | None = None) -> Located:
    """Find (or download) the weights for ``spec``; a demo, local-dir or known hub model imports no torch.

    ``hashes_dir`` keeps the record of weights hashes (default: the embedding cache's folder).
    """
    if spec.name == DEMO or spec.name.startswith(LOCAL_DIR):
        folder = DEMO_DIR if spec.name == DEMO else Path(spec.name[len(LOCAL_DIR):]).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise ModelUnavailable(f"{folder} is not an open_clip model folder (no open_clip_config.json)")
        weights = _weights_in(folder)
        identity = {"source": "local-dir", "weights_sha256": cached_sha256(weights, hashes_dir)}
        return Located(spec, f"{LOCAL_DIR}{folder}", None, identity, config=folder / "open_clip_config.json")
    checkpoint = spec.pretrained is not None and (
        os.path.isfile(spec.pretrained) or os.sep in spec.pretrained or spec.pretrained.endswith(CHECKPOINT_SUFFIXES))
    hub = {"source": "hub", "name": spec.name, "tag": spec.pretrained}
    if not checkpoint and (spec.name, spec.pretrained) in KNOWN_HUB:
        # Cached, downloadable, or neither: decided before importing open_clip (and torch, 4 s).
        path = resolve(spec.name, spec.pretrained, cache_dir, tqdm_class)
        return Located(spec, spec.name, str(path), hub, hub_tag=spec.pretrained)
    import open_clip

    if spec.name not in open_clip.list_models():
        raise ModelUnavailable(f"unknown model {spec.name!r}; open_clip knows: {', '.join(open_clip.list_models())}")
    if spec.pretrained is None:
        raise ModelUnavailable(f"model {spec.name} has no downloadable weights; pass --pretrained FILE")
    if checkpoint:
        path = Path(spec.pretrained).expanduser()
        if not path.is_file():
            raise ModelUnavailable(f"checkpoint file not found: {path}")
        return Located(spec, spec.name, str(path),
                       {"source": "file", "name": spec.name, "weights_sha256": cached_sha256(path, hashes_dir)})
    pretrained_config(spec.name, spec.pretrained)  # an unknown tag fails here, naming the known ones
    path = resolve(spec.name, spec.pretrained, cache_dir=cache_dir, tqdm_class=tqdm_class)
    return Located(spec, spec.name, str(path), hub, hub_tag=spec.pretrained)


def demo_weights_sha256() -> str:
    """The SHA-256 of the bundled demo model's weights (how a dataset's record names the demo model)."""
    return cached_sha256(_weights_in(DEMO_DIR))


def _hub_preprocessing(name: str, tag: str) -> dict[str, Any]:
    """create_model_and_transforms arguments for the preprocessing a hub model's weights were trained with."""
    cfg = pretrained_config(name, tag)
    return {k: v for k, v in {
        "image_mean": cfg.get("mean"), "image_std": cfg.get("std"),
        "image_interpolation": cfg.get("interpolation"), "image_resize_mode": cfg.get("resize_mode"),
        "force_quick_gelu": cfg.get("quick_gelu") or None}.items() if v is not None}


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _weights_in(folder: Path) -> Path:
    for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "open_clip_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise ModelUnavailable(f"{folder} has open_clip_config.json but no open_clip_model.safetensors")


def _preprocess_identity(model: Any) -> dict[str, Any]:
    cfg = getattr(getattr(model, "visual", None), "preprocess_cfg", {}) or {}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(cfg.items())}
