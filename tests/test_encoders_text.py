"""The packaged all-MiniLM-L6-v2 loads offline and embeds texts as unit vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shelfwise.encoders import TextEncoder, mean_pool


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


def test_encode_shape_norm_and_similarity(encoder):
    vectors = encoder.encode(["cordless power drill", "electric drill", "garden hose"], batch_size=2)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_batching_and_order_do_not_change_vectors(encoder):
    texts = ["a", "a much longer product title with many words in it", "drill"]
    one_batch = encoder.encode(texts, batch_size=8)
    small_batches = encoder.encode(texts, batch_size=1, progress=True)
    assert np.allclose(one_batch, small_batches, atol=1e-5)


def test_empty_input(encoder):
    assert encoder.encode([]).shape == (0, 384)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(hidden, mask), torch.tensor([[2.0, 2.0]]))


def test_from_artifact_roundtrip(encoder, tmp_path):
    from shelfwise import artifacts

    state = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    state["embeddings.word_embeddings.weight"][:] += 0.01  # a "fine-tuned" encoder differs from the base
    artifacts.save(tmp_path / "enc", state, {"kind": "text-encoder", "max_length": 32})
    loaded = TextEncoder.from_artifact(tmp_path / "enc")
    assert loaded.max_length == 32
    assert torch.equal(loaded.model.embeddings.word_embeddings.weight, state["embeddings.word_embeddings.weight"])
    artifacts.save(tmp_path / "other", state, {"kind": "sasrec"})
    with pytest.raises(ValueError, match="text-encoder"):
        TextEncoder.from_artifact(tmp_path / "other")
