"""Zero-shot classification: class names become text embeddings, each image gets the nearest class.

As in the CLIP paper (Radford et al. 2021, §3.1.4), each class name is put into 80 prompt
templates ("a bad photo of a {}.", "a sculpture of a {}.", …); the template embeddings are
averaged and renormalised, which is more accurate than any single prompt. The templates are the
ones open_clip ships for ImageNet. Probabilities are a softmax over the cosine similarities scaled
by the model's learnt logit scale, the same scaling the model was trained with.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from clipscape.models.encoder import Encoder

if TYPE_CHECKING:
    from clipscape.models.store import EmbeddingStore

UNKNOWN = "unknown"
SINGLE_TEMPLATE = "a photo of a {}."


def ensemble_templates() -> tuple[Callable[[str], str], ...]:
    """The CLIP paper's 80 ImageNet prompt templates (from open_clip)."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return OPENAI_IMAGENET_TEMPLATES


def parse_classes(text: str) -> list[str]:
    """"cat, dog,,car" → ["cat", "dog", "car"]; commas or new lines separate; duplicates dropped."""
    names = [part.strip() for line in text.splitlines() for part in line.split(",")]
    return list(dict.fromkeys(n for n in names if n))


def class_prompts(name: str, ensemble: bool = True) -> list[str]:
    """The prompts whose embeddings are averaged into class ``name``'s vector."""
    templates = ensemble_templates() if ensemble else (SINGLE_TEMPLATE.format,)
    return [t(name) for t in templates]


PROMPT_CHUNK = 16  # prompts per text-tower call: a check() between calls can cancel a long ensemble


def class_embeddings(encoder: Encoder, classes: Sequence[str], ensemble: bool = True,
                     check: Callable[[], None] | None = None,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """C×D unit vectors, one per class: the mean of its prompt embeddings (or the single prompt).

    The 80-template ensemble costs 80 text-tower passes per class (about 6 s a class for ViT-B-32
    on a 2-core CPU); ``check`` is called between chunks of PROMPT_CHUNK prompts and may raise
    to stop, and ``progress(prompts done, prompts in all)`` after each chunk (500 classes are
    40,000 prompts: minutes without a sign of life otherwise).
    """
    if not classes:
        raise ValueError("no class names given")
    prompts = [p for name in classes for p in class_prompts(name, ensemble)]
    chunks = []
    for start in range(0, len(prompts), PROMPT_CHUNK):
        if check is not None:
            check()
        chunks.append(encoder.encode_texts(prompts[start:start + PROMPT_CHUNK]))
        if progress is not None:
            progress(min(start + PROMPT_CHUNK, len(prompts)), len(prompts))
    per_prompt = np.concatenate(chunks).reshape(len(classes), len(prompts) // len(classes), -1)
    mean = per_prompt.mean(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True).clip(1e-12)


class CachedTextEncoder:
    """An encoder whose ``encode_texts`` remembers every prompt's embedding in the EmbeddingStore.

    The 80-prompt ensemble for a handful of classes is hundreds of text-tower passes (about 18 s
    for four classes with ViT-B-32 on a 2-core CPU); with the store as a memo that is paid once
    per model and class name, not once per session. Vectors come back bit-identical.
    """

    def __init__(self, encoder: Encoder, store: "EmbeddingStore") -> None:
        self.encoder, self.store = encoder, store
        self.model_id = store.model_id(encoder.key, encoder.identity, encoder.dim)

    @property
    def logit_scale(self) -> float:
        return self.encoder.logit_scale  # (asked only when classifying: a lazy encoder is built then)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        known = self.store.text_vectors(self.model_id, texts)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            vectors = self.encoder.encode_texts(missing)
            self.store.add_texts(self.model_id, missing, vectors)
            known.update(zip(missing, np.asarray(vectors, np.float32)))
        return np.stack([known[t] for t in texts])


def unknown_label(classes: Sequence[str]) -> str:
    """The label of images below the threshold: "unknown", or "(unknown)" if a class has that name.

    A class the user called "unknown" keeps its own name and count; the two never merge.
    """
    label = UNKNOWN
    while label in classes:
        label = f"({label})"
    return label


@dataclass(frozen=True)
class Classification:
    classes: list[str]
    probabilities: np.ndarray  # N×C softmax over classes
    best: np.ndarray           # N ints: index into classes, or -1 when below the threshold

    @cached_property
    def unknown_label(self) -> str:
        return unknown_label(self.classes)

    def label(self, i: int) -> str:
        return self.classes[self.best[i]] if self.best[i] >= 0 else self.unknown_label

    @cached_property
    def labels(self) -> list[str]:
        """Every image's label; computed once (the window reads it on every gallery refresh)."""
        names = np.array([*self.classes, self.unknown_label], dtype=object)  # best == -1 picks the last
        return names[self.best].tolist()

    @property
    def confidence(self) -> np.ndarray:
        """Probability of each image's top class (also when it fell below the threshold)."""
        return self.probabilities.max(axis=1) if len(self.classes) else np.zeros(len(self.best))

    def counts(self) -> dict[str, int]:
        """Images per class, the unknown label last, for legends."""
        counts = {name: int((self.best == i).sum()) for i, name in enumerate(self.classes)}
        counts[self.unknown_label] = int((self.best < 0).sum())
        return counts


def classify(embeddings: np.ndarray, class_embs: np.ndarray, logit_scale: float,
             classes: Sequence[str], threshold: float = 0.0) -> Classification:
    """Per image: softmax(logit_scale × cosine) over classes; top class, or unknown below ``threshold``."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    logits = logit_scale * (embeddings @ class_embs.T)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    best = probs.argmax(axis=1)
    best = np.where(probs[np.arange(len(best)), best] >= threshold, best, -1) if len(best) else best
    return Classification(list(classes), probs.astype(np.float32), best.astype(np.int64))


def zero_shot(embeddings: np.ndarray, encoder: Encoder, classes: Sequence[str], threshold: float = 0.0,
              ensemble: bool = True, progress: Callable[[int, int], None] | None = None) -> Classification:
    """Classify every image into ``classes`` with ``encoder``'s text tower (see class_embeddings for progress)."""
    return classify(embeddings, class_embeddings(encoder, classes, ensemble, progress=progress),
                    encoder.logit_scale, classes, threshold)
