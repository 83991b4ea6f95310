"""Supervised fine-tuning of the image backbone (shelfwise.multimodal.photo_tuning) on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shelfwise.multimodal.labels import UNKNOWN
from shelfwise.multimodal.photo_tuning import PhotoTuner, PhotoTuningConfig, augment


def test_augment_without_geometry_is_the_photo_or_its_mirror():
    config = PhotoTuningConfig(scale=(1.0, 1.0), max_rotation_degrees=0.0, max_shift=0.0)
    pixels = torch.randn(64, 3, 8, 8)
    out = augment(pixels, config, torch.Generator().manual_seed(0))
    assert out.shape == pixels.shape
    same = torch.isclose(out, pixels, atol=1e-5).flatten(1).all(1)
    mirrored = torch.isclose(out, pixels.flip(3), atol=1e-5).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()


def test_augment_is_seeded_and_moves_pixels():
    pixels = torch.randn(4, 3, 16, 16)
    a = augment(pixels, PhotoTuningConfig(), torch.Generator().manual_seed(1))
    b = augment(pixels, PhotoTuningConfig(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, pixels)


def _photos(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Two kinds of 32 px photos: bright or dark; labels follow the kind, one colour label missing."""
    kinds = np.arange(n) % 2
    pixels = (rng.normal(size=(n, 3, 32, 32)) * 0.1 + np.where(kinds, 0.8, -0.8)[:, None, None, None]).astype(np.float16)
    colours = kinds.copy()
    colours[0] = UNKNOWN
    return pixels, {"articleType": kinds, "baseColour": colours, "gender": np.zeros(n, dtype=np.int64)}


def test_photo_tuner_trains_the_backbone_and_keeps_the_best_epoch():
    from shelfwise.encoders.image import load_backbone

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    train, valid = _photos(8, rng), _photos(4, rng)
    tuner = PhotoTuner(PhotoTuningConfig(epochs=2, batch_size=4, warmup_steps=1)).fit(*train, {"articleType": 2, "baseColour": 2, "gender": 1}, valid)
    assert [row["epoch"] for row in tuner.history_] == [0, 1]
    assert set(tuner.history_[0]["valid_accuracy"]) == {"articleType", "baseColour", "gender"}
    best = max(tuner.history_, key=lambda row: row["valid_accuracy"]["articleType"])
    assert tuner.best_epoch_ == best["epoch"]
    assert not torch.equal(tuner.weights_["_conv_head.weight"], load_backbone().state_dict()["_conv_head.weight"])


def test_photo_tuner_names_a_missing_label():
    pixels, codes = _photos(4, np.random.default_rng(0))
    del codes["gender"]
    with pytest.raises(ValueError, match="gender"):
        PhotoTuner().fit(pixels, codes, {"articleType": 2, "baseColour": 2}, (pixels, codes))
