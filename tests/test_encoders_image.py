"""The EfficientNet-Lite0 image encoder on tiny photos made here (real packaged weights)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from shelfwise.encoders.image import EMBEDDING_DIM, ImageEncoder, ImageEncoderConfig, ImageReadError, hflip, preprocess, read_image


def _photo(colour, size=(60, 80), stripe=None) -> Image.Image:
    image = Image.new("RGB", size, (255, 255, 255))
    inner = Image.new("RGB", (size[0] // 2, size[1] // 2), colour)
    image.paste(inner, (size[0] // 4, size[1] // 4))
    if stripe:
        image.paste(Image.new("RGB", (size[0] // 2, 4), stripe), (size[0] // 4, size[1] // 2))
    return image


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def encoder():
    import torch

    torch.set_num_threads(1)
    return ImageEncoder(ImageEncoderConfig(batch_size=2))


def test_preprocess_pads_to_a_square_of_the_model_size():
    pixels = preprocess(_photo((200, 30, 30)), ImageEncoderConfig())
    assert pixels.shape == (3, 224, 224) and pixels.dtype == np.float32
    assert -1.0 <= pixels.min() and pixels.max() <= 1.0
    # The padding takes the photo's own (white) border colour, not black.
    assert pixels[:, 0, 0].min() > 0.9


def test_encode_paths_and_bytes_and_a_truncated_jpeg_does_not_stop_the_batch(encoder, tmp_path):
    red, blue = _photo((200, 30, 30)), _photo((30, 30, 200), stripe=(250, 250, 0))
    red.save(tmp_path / "red.jpg", quality=90)
    truncated = _jpeg(blue)[:300]
    sources = [tmp_path / "red.jpg", _jpeg(blue), truncated, tmp_path / "missing.jpg", b"not an image", str(tmp_path / "red.jpg")]
    result = encoder.encode_detailed(sources)
    assert result.vectors.shape == (6, EMBEDDING_DIM)
    assert result.ok.tolist() == [True, True, False, False, False, True]
    assert set(result.errors) == {2, 3, 4}
    assert "image 2" in result.errors[2] and ("truncated" in result.errors[2] or "decode" in result.errors[2])
    assert "file not found" in result.errors[3] and "missing.jpg" in result.errors[3]
    assert "not a recognised image format" in result.errors[4]
    norms = np.linalg.norm(result.vectors, axis=1)
    assert np.allclose(norms[result.ok], 1.0, atol=1e-4) and np.all(norms[~result.ok] == 0)
    # The same photo from a path (str or Path) encodes identically; a different photo does not.
    assert np.allclose(result.vectors[0], result.vectors[5], atol=1e-5)
    assert float(result.vectors[0] @ result.vectors[1]) < 0.999
    # encode() is the plain API: the same vectors.
    assert np.allclose(encoder.encode(sources[:2]), result.vectors[:2], atol=1e-5)


def test_pixels_are_the_preprocessed_photos_and_name_the_unreadable_ones(encoder):
    red = _photo((200, 30, 30))
    result = encoder.pixels([_jpeg(red), b"not an image"])
    assert result.vectors.shape == (2, 3, 224, 224) and result.vectors.dtype == np.float16
    assert result.ok.tolist() == [True, False] and "image 1" in result.errors[1]
    expected = preprocess(read_image(_jpeg(red)), encoder.config)
    assert np.allclose(result.vectors[0], expected, atol=2e-3) and not result.vectors[1].any()


def test_weights_tag_names_the_weights():
    from shelfwise.encoders.image import load_backbone

    tuned = load_backbone().state_dict()
    assert ImageEncoder().weights_tag == "imagenet"
    tag = ImageEncoder(weights=tuned).weights_tag
    tuned["_conv_head.weight"] = tuned["_conv_head.weight"] + 1e-3
    assert tag != "imagenet" and ImageEncoder(weights=tuned).weights_tag != tag


def test_read_image_errors_name_the_item():
    with pytest.raises(ImageReadError, match=r"image 7 \(3 bytes\)"):
        read_image(b"abc", 7)
    with pytest.raises(ImageReadError, match="expected a path"):
        read_image(42)


def test_transform_and_imagenet_head(encoder):
    photo = _photo((30, 160, 30), stripe=(0, 0, 0))
    plain, mirrored = encoder.encode([photo]), encoder.encode([photo], transform=hflip)
    assert plain.shape == mirrored.shape == (1, EMBEDDING_DIM)
    top = encoder.classify([photo], top=3)[0]
    assert len(top) == 3 and all(0 <= i < 1000 for i, _ in top) and top[0][1] >= top[1][1]


def test_empty_input(encoder):
    assert encoder.encode([]).shape == (0, EMBEDDING_DIM)


def test_colour_histogram_sees_the_product_not_the_background():
    from shelfwise.encoders.image import colour_histogram

    red, blue = colour_histogram(_photo((220, 20, 20)), bins=5), colour_histogram(_photo((20, 20, 220)), bins=5)
    assert red.shape == (125,) and np.isclose(np.linalg.norm(red), 1.0)
    # The white background is left out: the red product fills the red bin (r=4, g=0, b=0).
    assert red.argmax() == 4 * 25 and float(red @ blue) < 0.1


def test_encoder_with_colour_appends_the_histogram(tmp_path):
    import torch

    from shelfwise.encoders.image import colour_features

    torch.set_num_threads(1)
    encoder = ImageEncoder(ImageEncoderConfig(colour_bins=4))
    photo = _photo((200, 30, 30))
    result = encoder.encode_detailed([photo, b"broken"])
    assert encoder.dim == EMBEDDING_DIM + 64 and result.vectors.shape == (2, EMBEDDING_DIM + 64)
    assert np.allclose(result.vectors[0, EMBEDDING_DIM:], colour_features([photo], bins=4).vectors[0], atol=1e-6)
    assert result.errors.keys() == {1} and not result.vectors[1].any()


def test_colour_hsv_describes_hue_lightness_and_the_product_share():
    """The hue / saturation / value histogram and statistics of the product's pixels: a red and an
    orange product (one RGB cell apart at 5 bins) fall in different hue bins, a grey one in the grey
    bins (no hue), and the statistics read the product's colour and how much of the photo it covers."""
    from shelfwise.encoders.image import COLOUR_EXTRA_DIM, HUES, SATURATIONS, VALUES, colour_description, colour_features

    red, orange, grey = (colour_description(_photo(c)) for c in ((210, 20, 20), (230, 150, 20), (120, 120, 120)))
    n_hue = HUES * SATURATIONS * VALUES
    assert red.shape == (COLOUR_EXTRA_DIM,) and np.isclose(np.linalg.norm(red[:n_hue + VALUES]), 1.0)
    assert red[:n_hue].argmax() != orange[:n_hue].argmax() and float(red[:n_hue] @ orange[:n_hue]) < 0.1
    assert not grey[:n_hue].any() and grey[n_hue:n_hue + VALUES].sum() > 0.99
    mean_rgb, share = red[n_hue + VALUES:n_hue + VALUES + 3], red[-1]
    assert np.allclose(mean_rgb, np.array([210, 20, 20]) / 255, atol=0.02) and np.isclose(share, 0.25, atol=0.01)

    encoder = ImageEncoder(ImageEncoderConfig(colour_bins=4, colour_hsv=True))
    photo = _photo((200, 30, 30))
    assert encoder.dim == EMBEDDING_DIM + 64 + COLOUR_EXTRA_DIM
    vector = encoder.encode([photo])[0]
    assert np.allclose(vector[EMBEDDING_DIM:], colour_features([photo], bins=4, hsv=True).vectors[0], atol=1e-6)
    assert np.allclose(vector[EMBEDDING_DIM + 64:], colour_description(photo), atol=1e-6)


def test_cached_trunk_plus_tail_gives_the_encoder_features_and_a_tuned_tail_serves():
    """The fine-tuning path: trunk activations once, the tail trained on them, and an encoder built
    with the tuned weights computes exactly what the tail was trained to compute."""
    import torch

    from shelfwise.encoders.image import BackboneTail, load_backbone
    from shelfwise.training.loop import TrainConfig, make_optimizer

    torch.set_num_threads(1)
    config = ImageEncoderConfig(image_size=64, batch_size=2)
    encoder = ImageEncoder(config)
    photos = [_photo((200, 30, 30)), _photo((30, 30, 200), stripe=(250, 250, 0)), b"broken"]
    trunk = encoder.encode_trunk(photos, stop=11)
    assert trunk.vectors.dtype == np.float16 and trunk.vectors.shape == (3, 112, 4, 4)
    assert trunk.ok.tolist() == [True, True, False] and set(trunk.errors) == {2} and not trunk.vectors[2].any()
    assert np.allclose(encoder.encode_from_trunk(trunk.vectors[:2], 11), encoder.encode(photos[:2]), atol=3e-3)  # float16 cache

    tail = BackboneTail(load_backbone(), 11, lr_scale=0.1)
    trainable = {name for name, p in tail.backbone.named_parameters() if p.requires_grad}
    tail_prefixes = tuple(f"_blocks.{i}." for i in range(11, 16)) + ("_conv_head.", "_bn1.")
    assert trainable and all(name.startswith(tail_prefixes) for name in trainable)
    assert "_blocks.10._project_conv.weight" not in trainable and "_fc.weight" not in trainable
    tail.train()
    assert tail.training and not any(m.training for m in tail.modules() if isinstance(m, torch.nn.BatchNorm2d))
    optimizer = make_optimizer(tail, TrainConfig(lr=0.1))
    assert {g["lr_scale"] for g in optimizer.param_groups if g["params"]} == {0.1}
    inputs = torch.from_numpy(trunk.vectors[:2])
    for _ in range(3):
        optimizer.zero_grad()
        (tail(inputs)[:, :10].sum()).backward()  # any loss: the point is that the weights move
        optimizer.step()
    tuned = ImageEncoder(config, weights=tail.backbone.state_dict())
    with torch.no_grad():
        expected = tail.eval()(inputs).numpy()
    assert np.allclose(tuned.encode(photos[:2]), expected, atol=3e-3)
    assert not np.allclose(expected, encoder.encode(photos[:2]), atol=1e-2)


def test_pooled_blocks_append_unit_mean_and_max_of_each_block(encoder):
    import torch

    from shelfwise.encoders.image import BLOCK_CHANNELS, backbone_trunk

    pooled = ImageEncoder(ImageEncoderConfig(image_size=96, pooled_blocks=(5, 15), colour_bins=2))
    photo = _photo((30, 160, 40))
    vectors = pooled.encode([photo, b"broken"])
    assert pooled.dim == EMBEDDING_DIM + 2 * (BLOCK_CHANNELS[5] + BLOCK_CHANNELS[15]) + 8 == vectors.shape[1]
    assert not vectors[1].any()  # an unreadable photo is still a zero row
    head = ImageEncoder(ImageEncoderConfig(image_size=96)).encode([photo])[0]
    assert np.allclose(vectors[0, :EMBEDDING_DIM], head, atol=1e-5)  # the head's part is unchanged
    # Block 5's part: the unit mean and unit max of what block 5 outputs.
    pixels = torch.from_numpy(preprocess(photo, pooled.config)[None])
    with torch.inference_mode():
        block5 = backbone_trunk(pooled.model, pixels, 6)[0]
    mean, peak = block5.mean(dim=(1, 2)), block5.amax(dim=(1, 2))
    start = EMBEDDING_DIM
    assert np.allclose(vectors[0, start:start + 80], (mean / mean.norm()).numpy(), atol=1e-5)
    assert np.allclose(vectors[0, start + 80:start + 160], (peak / peak.norm()).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="outside 0..15"):
        ImageEncoderConfig(pooled_blocks=(16,))
