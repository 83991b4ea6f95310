"""Encoder outputs kept on disk, so training the small alignment / fusion heads (seconds) does not
re-run the frozen encoders (minutes) every time.

A cache file is named after what produced it (encoder, view, the exact list of inputs), holds
float32 vectors (float16 backbone activations) as ``.npy`` (read with ``allow_pickle=False``)
and is written atomically.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

# Named image views: the plain photo and label-preserving augmentations used in training.
VIEWS: dict[str, Callable | None] = {}


def _transform(view: str) -> Callable | None:
    """The augmentation that makes ``view`` (None for the plain photo); a clear error for an unknown one."""
    from shelfwise.encoders.image import hflip

    VIEWS.setdefault("plain", None)
    VIEWS.setdefault("hflip", hflip)
    if view not in VIEWS:
        raise ValueError(f"unknown image view {view!r}; expected one of {sorted(VIEWS)}")
    return VIEWS[view]


def _key(kind: str, view: str, inputs: Sequence[str]) -> str:
    digest = hashlib.sha1(f"{kind}|{view}|".encode())
    for value in inputs:
        digest.update(str(value).encode() + b"\0")
    return f"{kind}-{view}-{digest.hexdigest()[:16]}.npy"


def _cached(cache_dir: Path | None, name: str, compute: Callable[[], np.ndarray], dtype=np.float32) -> np.ndarray:
    if cache_dir is None:
        return compute()
    path = Path(cache_dir) / name
    if path.is_file():
        return np.load(path, allow_pickle=False)
    vectors = np.ascontiguousarray(compute(), dtype=dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, vectors, allow_pickle=False)
    os.replace(tmp, path)
    return vectors


def trunk_features(
    encoder, paths: Sequence[str], stop: int, view: str = "plain", cache_dir: Path | None = None, progress: bool = False
) -> np.ndarray:
    """float16 [n, C, H, W] activations entering block ``stop`` of the image backbone: the
    pretrained tail turns them into frozen photo features, the fine-tuned tail trains on them. A
    photo that cannot be read gives zeros."""
    transform = _transform(view)
    kind = f"trunk{stop}-{encoder.config.image_size}px"
    return _cached(
        cache_dir,
        _key(kind, view, paths),
        lambda: encoder.encode_trunk(list(paths), stop, transform=transform, progress=progress).vectors,
        dtype=np.float16,
    )


def image_features(encoder, paths: Sequence[str], view: str = "plain", cache_dir: Path | None = None, progress: bool = False) -> np.ndarray:
    """[n, encoder.dim] frozen photo features for one view, as ``encoder.encode`` gives them (zeros for unreadable photos)."""
    transform = _transform(view)
    c = encoder.config
    kind = f"image-{c.image_size}px-blocks{'_'.join(map(str, c.pooled_blocks))}-colour{c.colour_bins}"
    if c.colour_bins and c.colour_hsv:
        kind += "hsv"
    if encoder.weights_tag != "imagenet":  # the pretrained features keep their old cache names
        kind += f"-{encoder.weights_tag}"
    return _cached(cache_dir, _key(kind, view, paths), lambda: encoder.encode(list(paths), transform=transform, progress=progress))


def text_features(encoder, texts: Sequence[str], cache_dir: Path | None = None, progress: bool = False) -> np.ndarray:
    """[n, 384] text vectors from the (frozen) text encoder."""
    return _cached(cache_dir, _key("text", "minilm", texts), lambda: encoder.encode(list(texts), progress=progress))


def colour_features(paths: Sequence[str], bins: int, view: str = "plain", cache_dir: Path | None = None, hsv: bool = False) -> np.ndarray:
    """[n, colour_dim(bins, hsv)] colour vectors (see shelfwise.encoders.image.colour_vector) for one view."""
    from shelfwise.encoders.image import colour_features as compute

    transform = _transform(view)
    kind = f"colour{bins}" + ("hsv" if hsv else "")
    return _cached(cache_dir, _key(kind, view, paths), lambda: compute(list(paths), bins, transform, hsv).vectors)
