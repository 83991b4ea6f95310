"""The trained multimodal model as one shelfwise artifact: the text <-> image aligner,
(optionally) the item fuser and (when it was fine-tuned) the image backbone, in one
``model.safetensors`` (keys prefixed ``alignment.`` / ``fusion.`` / ``image_encoder.``) beside a
``config.json`` that rebuilds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from shelfwise import artifacts
from shelfwise.multimodal.alignment import Aligner
from shelfwise.multimodal.fusion import ItemFuser

KIND = "multimodal"


def is_multimodal_model(path: Path | str) -> bool:
    """Whether ``path`` is a multimodal model (a version folder or a root with ``latest``)."""
    try:
        return artifacts.load(path).config.get("kind") == KIND
    except (FileNotFoundError, ValueError):
        return False


@dataclass
class MultimodalModel:
    aligner: Aligner
    fuser: ItemFuser | None = None
    image_encoder: str = "efficientnet-lite0"
    text_encoder: str = "all-MiniLM-L6-v2"
    # shelfwise.encoders.image.ImageEncoderConfig fields the features were made with (e.g. colour_bins).
    image_config: dict = field(default_factory=dict)
    # A fine-tuned image backbone's state dict (None: the packaged ImageNet weights).
    image_weights: dict[str, torch.Tensor] | None = None

    def make_image_encoder(self):
        """The image encoder whose features the aligner and fuser were trained on."""
        from shelfwise.encoders.image import ImageEncoder, ImageEncoderConfig

        return ImageEncoder(ImageEncoderConfig(**self.image_config), weights=self.image_weights)

    def save(self, root: Path | str, metrics: dict | None = None) -> artifacts.Artifact:
        state = {f"alignment.{k}": v for k, v in self.aligner.state_dict().items()}
        config = {
            "kind": KIND,
            "image_encoder": self.image_encoder,
            "text_encoder": self.text_encoder,
            "image_config": self.image_config,
            "alignment": self.aligner.config_dict(),
        }
        if self.fuser is not None:
            state.update({f"fusion.{k}": v for k, v in self.fuser.state_dict().items()})
            config["fusion"] = self.fuser.config_dict()
        if self.image_weights is not None:
            state.update({f"image_encoder.{k}": v for k, v in self.image_weights.items()})
        return artifacts.save(root, state, config, metrics)

    @classmethod
    def load(cls, path: Path | str) -> "MultimodalModel":
        """From a version folder or a model root (its ``latest`` version)."""
        artifact = artifacts.load(path)
        if artifact.config.get("kind") != KIND:
            raise ValueError(f"{artifact.path} is not a multimodal model (kind={artifact.config.get('kind')!r})")
        state = artifact.state_dict()

        def part(prefix: str) -> dict:
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

        aligner = Aligner.from_state(artifact.config["alignment"], part("alignment."))
        fuser = ItemFuser.from_state(artifact.config["fusion"], part("fusion.")) if "fusion" in artifact.config else None
        return cls(
            aligner,
            fuser,
            artifact.config.get("image_encoder", "efficientnet-lite0"),
            artifact.config.get("text_encoder", "all-MiniLM-L6-v2"),
            dict(artifact.config.get("image_config", {})),
            part("image_encoder.") or None,
        )
