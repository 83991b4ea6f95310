"""`shelfwise bench multimodal` end to end on a tiny fashion-like folder made here (real encoders),
and on the real fashion data when ../shared/data is present (only that the data loads and splits)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SHARED_DATA
TYPES = {"Belts": (90, 50, 20), "Jeans": (30, 40, 160), "Tshirts": (220, 220, 40)}


@pytest.fixture()
def fashion_folder(tmp_path):
    """18 photos of 3 article types (each its own colour and shape) and 30 product names."""
    (tmp_path / "images").mkdir()
    rows, styles = [], []
    for i in range(30):
        kind = list(TYPES)[i % 3]
        colour = ["Brown", "Blue", "Yellow"][i % 3]
        gender = ["Men", "Women"][i % 2]
        name = f"Brand{i % 5} {gender} {colour} {kind}"
        meta = [str(1000 + i), gender, "Apparel", "Wear", kind, colour, "Summer", "2012.0", "Casual", name]
        styles.append(meta)
        if i < 18:
            image = Image.new("RGB", (60, 80), (255, 255, 255))
            size = (40, 10) if kind == "Belts" else (30, 60) if kind == "Jeans" else (44, 40)
            image.paste(Image.new("RGB", size, TYPES[kind]), ((60 - size[0]) // 2, (80 - size[1]) // 2))
            image.save(tmp_path / "images" / f"{1000 + i}.jpg")
            rows.append(meta + ["60", "80", f"images/{1000 + i}.jpg"])
    header = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"
    (tmp_path / "styles_full.csv").write_text(header + "\n" + "\n".join(",".join(r) for r in styles) + "\n")
    (tmp_path / "images_manifest.csv").write_text(header + ",width,height,image\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return tmp_path


@pytest.mark.slow
def test_bench_multimodal_command_writes_metrics_and_a_loadable_model(fashion_folder, tmp_path):
    import torch
    from click.testing import CliRunner

    from shelfwise.commands.multimodal import multimodal
    from shelfwise.config import Settings
    from shelfwise.multimodal.model import MultimodalModel

    torch.set_num_threads(1)
    out = tmp_path / "out"
    args = ["--data", str(fashion_folder), "--out", str(out), "--test-size", "10", "--extra-names", "12", "--no-ablations", "--tune-image"]
    result = CliRunner().invoke(multimodal, args, obj=Settings(home=tmp_path / "home", quiet=True), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == {"test": 10, "valid": 1, "train": 7}
    for key in ("text_to_image_recall@1", "text_to_image_recall@5", "text_to_image_recall@10", "image_to_text_recall@10", "text_to_image_type_share@10"):
        assert 0.0 <= metrics["alignment"][key] <= 1.0
    assert metrics["alignment"]["text_to_image_recall@10"] == 1.0  # 10 photos in the test catalogue
    assert set(metrics["fusion"]) == {"concat", "gated", "cross_attention"}
    assert set(metrics["fusion"]["gated"]) >= {"image", "text", "image+text", "image+text+attributes"}
    assert metrics["throughput"]["images_per_second"] > 0
    model = MultimodalModel.load(out / "model")
    assert model.fuser is not None and model.image_config == {"colour_bins": 5, "colour_hsv": True, "image_size": 160, "pooled_blocks": []}
    # --tune-image fine-tunes the image backbone's tail: the saved model carries it, search encodes with it.
    assert metrics["alignment"]["variant"] == "+tuned_backbone" and model.image_weights is not None
    assert torch.equal(model.make_image_encoder().model.state_dict()["_conv_head.weight"], model.image_weights["_conv_head.weight"])
    assert (out / "cache").is_dir()  # encoder outputs kept for the next run

    # The default keeps the backbone frozen: the packaged weights serve, nothing extra is saved.
    frozen = tmp_path / "frozen"
    args = ["--data", str(fashion_folder), "--out", str(frozen), "--cache", str(out / "cache"), "--test-size", "10", "--extra-names", "12", "--no-ablations"]
    result = CliRunner().invoke(multimodal, args, obj=Settings(home=tmp_path / "home", quiet=True), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    frozen_metrics = json.loads((frozen / "metrics.json").read_text())
    assert set(frozen_metrics["alignment_ablations"]) == {"full", "+mid_level_features", "+photo_probes", "+text_probes"}
    saved = MultimodalModel.load(frozen / "model")
    # The chosen model's retrieval weights are chosen again on its 7 training pairs (3 folds: a tiny set gets fewer).
    chosen = frozen_metrics["alignment"]
    assert chosen["weights_chosen_by"] == "3-fold cross-fitting" and set(chosen["weights_from_validation"]) == {"articleType", "baseColour", "gender"}
    assert chosen["retrieval_weights"] == saved.aligner.config.retrieval_weights
    assert saved.image_weights is None
    # Whichever variant validation chose, the saved model's encoder gives the features it was trained on.
    assert saved.make_image_encoder().dim == saved.aligner.config.image_dim


@pytest.mark.slow
def test_bench_multimodal_tune_photos_serves_the_tuned_backbone(fashion_folder, tmp_path):
    import torch
    from click.testing import CliRunner

    from shelfwise.commands.multimodal import multimodal
    from shelfwise.config import Settings
    from shelfwise.encoders.image import load_backbone
    from shelfwise.multimodal.model import MultimodalModel

    torch.set_num_threads(1)
    out, settings = tmp_path / "out", Settings(home=tmp_path / "home", quiet=True)
    args = ["--data", str(fashion_folder), "--out", str(out), "--test-size", "10", "--extra-names", "12", "--no-ablations"]
    result = CliRunner().invoke(multimodal, args + ["--tune-photos"], obj=settings, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    tuning = json.loads((out / "metrics.json").read_text())["photo_tuning"]
    assert len(tuning["history"]) == 8 and 0 <= tuning["best_epoch"] < 8
    assert set(tuning["history"][0]["valid_accuracy"]) == {"articleType", "baseColour", "gender"}
    model = MultimodalModel.load(out / "model")
    pretrained = load_backbone().state_dict()["_conv_head.weight"]
    assert model.image_weights is not None and not torch.equal(model.image_weights["_conv_head.weight"], pretrained)
    # The tuned features are cached under the weights' name, apart from the pretrained ones (same photos, other weights).
    encoder = model.make_image_encoder()
    cached = [p.name for p in (out / "cache").glob("image-*")]
    assert len(cached) == 2 and all(f"-{encoder.weights_tag}-" in name for name in cached)
    assert encoder.dim == model.aligner.config.image_dim

    result = CliRunner().invoke(multimodal, args + ["--tune-photos", "--tune-image"], obj=settings)
    assert result.exit_code != 0 and "choose one" in result.output


def test_split_is_disjoint_and_seeded():
    from shelfwise.multimodal.benchmark import split

    parts = split(100, 40, 0.1, seed=3)
    assert [len(parts[k]) for k in ("train", "valid", "test")] == [54, 6, 40]
    assert len(np.unique(np.concatenate(list(parts.values())))) == 100
    assert all((parts[k] == split(100, 40, 0.1, seed=3)[k]).all() for k in parts)
    with pytest.raises(ValueError, match="leaves no photos"):
        split(10, 10, 0.1, 0)


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED_DATA / "fashion" / "images_manifest.csv").is_file(), reason=f"needs the fashion data at {SHARED_DATA / 'fashion'}")
def test_real_fashion_data_loads_and_splits_as_documented():
    from shelfwise.multimodal.benchmark import load_fashion, split

    photos, styles = load_fashion(SHARED_DATA / "fashion")
    assert len(photos) == 3805 and len(styles) > 40_000
    assert Path(photos["path"].iloc[0]).is_file()
    parts = split(len(photos), 2000, 0.1, 0)
    assert len(parts["test"]) == 2000 and not set(parts["test"]) & set(parts["train"])
