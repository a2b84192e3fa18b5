"""The ingest pipeline on the CPU: worker counts, batches in flight, uint8 to the device, OOM back-off.

No test here needs a GPU: an accelerator is stood in for by an encoder that says
``device == "cuda"`` but computes on the CPU, which is all the pipeline looks at.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from clipscape.models import pipeline
from clipscape.models.images import load_rgb
from clipscape.models.pipeline import decode_workers, decoded_batches, encoded_batches
from clipscape.models.scan import ImageFile, iter_scan


@pytest.fixture(scope="module")
def files(shapes_folder) -> list[ImageFile]:
    folder, _ = shapes_folder
    return sorted((f for f in iter_scan([str(folder)]) if isinstance(f, ImageFile)), key=lambda f: f.path)


class Accelerator:
    """The demo encoder posing as one on a GPU, logging what the pipeline asks of it."""

    def __init__(self, encoder):
        self.inner, self.device, self.input_size, self.log = encoder, "cuda", encoder.input_size, []

    def prepare(self, image):
        return self.inner.prepare(image)

    def host_batch(self, tensors):
        return self.inner.host_batch(tensors)

    def launch(self, batch):
        self.log.append(("launch", len(self.log)))
        return self.inner.launch(batch)

    def collect(self, launched):
        self.log.append(("collect", len(self.log)))
        return self.inner.collect(launched)

    def encode_images(self, batch):
        self.log.append(("encode", len(self.log)))
        return self.inner.encode_images(batch)


def reference(encoder, files) -> np.ndarray:
    """What open_clip's own preprocess (PIL → float ToTensor → Normalize) and model give."""
    batch = torch.stack([encoder.preprocess(load_rgb(f.path, min_side=encoder.input_size)) for f in files])
    with torch.inference_mode():
        features = encoder.model.encode_image(batch).float()
    return (features / features.norm(dim=-1, keepdim=True)).numpy()


def run_all(batches) -> tuple[list[str], np.ndarray]:
    paths, rows = [], []
    for files, embeddings, problems in batches:
        assert not problems
        paths += [f.path for f in files]
        rows.append(embeddings)
    return paths, np.concatenate(rows)


def test_decode_workers_scale_with_the_cores_on_every_device(files, demo_encoder, monkeypatch):
    assert decode_workers(cores=16) == 16 and decode_workers(cores=2) == 2 and decode_workers(3, cores=16) == 3
    started = []
    real = pipeline.ThreadPoolExecutor
    monkeypatch.setattr(pipeline, "available_cores", lambda: 16)
    monkeypatch.setattr(pipeline, "ThreadPoolExecutor", lambda max_workers, **k: started.append(max_workers)
                        or real(max_workers=max_workers, **k))
    for encoder in (demo_encoder, Accelerator(demo_encoder)):
        for _ in decoded_batches(files[:4], encoder, 4):
            pass
    assert started == [16, 16]  # an accelerator used to get min(4, cores)


def test_on_an_accelerator_the_next_batch_is_launched_before_the_last_is_fetched(files, demo_encoder):
    fake = Accelerator(demo_encoder)
    paths, embeddings = run_all(encoded_batches(files, fake, 16))
    assert [step for step, _ in fake.log] == ["launch", "launch", "collect", "launch", "collect", "collect"]
    assert paths == [f.path for f in files]
    assert np.array_equal(embeddings, run_all(encoded_batches(files, demo_encoder, 16))[1])


def test_on_a_cpu_decoding_and_the_forward_pass_take_turns(files, demo_encoder):
    fake = Accelerator(demo_encoder)
    fake.device = "cpu"
    decoded = []
    original = fake.prepare
    fake.prepare = lambda image: decoded.append(1) or original(image)
    seen = []
    for batch_files, _, _ in encoded_batches(files, fake, 16):
        seen.append(len(decoded))   # decodes done when the batch reaches the caller
    assert [step for step, _ in fake.log] == ["encode"] * 3   # synchronous: nothing queued ahead
    assert seen == [16, 32, 48]                              # and nothing decoded ahead


def test_uint8_crosses_to_the_device_and_is_normalised_there_with_the_same_numbers(files, demo_encoder,
                                                                                   monkeypatch):
    crossing = []
    to_device = demo_encoder._to_device
    monkeypatch.setattr(demo_encoder, "_to_device", lambda batch: crossing.append(batch.dtype) or to_device(batch))
    _, embeddings = run_all(encoded_batches(files, demo_encoder, 16, depth=2))
    assert crossing == [torch.uint8] * 3
    expected = reference(demo_encoder, files)
    cosine = np.sum(embeddings * expected, axis=1)
    assert cosine.min() >= 0.999, cosine.min()
    # and exactly what the pre-issue-12 code computed: normalise on the host, then the model
    mean, std = (t.cpu() for t in demo_encoder._normalise)
    old = []
    for i in range(0, len(files), 16):
        batch = torch.stack([demo_encoder.prepare(load_rgb(f.path, min_side=demo_encoder.input_size))
                             for f in files[i:i + 16]])
        with torch.inference_mode():
            features = demo_encoder.model.encode_image(batch.float().div_(255).sub_(mean).div_(std)).float()
        old.append((features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)).numpy())
    assert np.array_equal(embeddings, np.concatenate(old))


def test_host_batches_are_pinned_only_for_cuda(demo_encoder, monkeypatch):
    asked = []
    empty = torch.empty

    def spy(*shape, pin_memory=False, **k):
        asked.append(pin_memory)
        return empty(*shape, **k)   # this machine may have no CUDA to pin with

    monkeypatch.setattr(torch, "empty", spy)
    images = [torch.zeros(3, 4, 4, dtype=torch.uint8), torch.ones(3, 4, 4, dtype=torch.uint8)]
    batch = demo_encoder.host_batch(images)
    monkeypatch.setattr(demo_encoder, "device", "cuda")
    demo_encoder.host_batch(images)
    assert asked == [False, True]
    assert batch.dtype == torch.uint8 and batch.shape == (2, 3, 4, 4) and batch[1].sum() == 48


def test_out_of_memory_back_off_works_with_batches_in_flight(files, demo_encoder, monkeypatch):
    expected = run_all(encoded_batches(files, demo_encoder, 16))[1]
    real = demo_encoder.model.encode_image
    sizes = []

    def picky(batch, *a, **k):
        sizes.append(len(batch))
        if len(batch) > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(batch, *a, **k)

    monkeypatch.setattr(demo_encoder.model, "encode_image", picky)
    monkeypatch.setattr(demo_encoder, "max_batch", None)
    paths, embeddings = run_all(encoded_batches(files, Accelerator(demo_encoder), 16))
    assert demo_encoder.max_batch == 4 and sizes[:3] == [16, 8, 4] and max(sizes[3:]) == 4
    assert paths == [f.path for f in files] and np.allclose(embeddings, expected, atol=1e-5)


def test_closing_mid_run_stops_the_decoders(files, demo_encoder):
    batches = encoded_batches(files, Accelerator(demo_encoder), 8)
    next(batches)
    batches.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("clipscape-decode")]
