"""The real MiniLM exported to ONNX (fp32 + int8) encodes like the torch encoder, and the CLI exports
and serves it (`search export-onnx`, `search run --model <export>`)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from shelfwise.commands.search import search
from shelfwise.config import Settings
from shelfwise.encoders import OnnxTextEncoder, TextEncoder, export_text_encoder
from shelfwise.encoders.onnx import EXPORT_CONFIG, FP32_FILE, INT8_FILE, is_onnx_export

TEXTS = [
    "cordless drill",
    "Milwaukee M18 18-Volt Lithium-Ion Cordless 1/2 in. Hammer Drill/Driver Kit",
    "3/4 in. copper pressure 90-degree elbow fitting, lead free",
    "white ceiling fan with light",
    "garden hose 50 ft",
    "x",
]


@pytest.fixture(scope="module")
def torch_encoder():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the 2 cores are shared; tiny batches gain nothing from more threads
    yield TextEncoder()
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, torch_encoder):
    return export_text_encoder(torch_encoder, tmp_path_factory.mktemp("onnx"), int8=True)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1)


def test_export_folder_has_models_tokenizer_and_config(export_dir):
    assert is_onnx_export(export_dir)
    assert (export_dir / FP32_FILE).is_file() and (export_dir / INT8_FILE).is_file()
    assert (export_dir / "tokenizer.json").is_file()
    config = json.loads((export_dir / EXPORT_CONFIG).read_text())
    assert config["kind"] == "onnx-text-encoder" and config["dim"] == 384 and config["max_length"] == 64
    # int8 weights: about a quarter of the fp32 file.
    assert (export_dir / INT8_FILE).stat().st_size < 0.35 * (export_dir / FP32_FILE).stat().st_size


def test_fp32_matches_torch_and_int8_stays_close(export_dir, torch_encoder):
    reference = torch_encoder.encode(TEXTS)
    fp32 = OnnxTextEncoder(export_dir, int8=False, threads=1)
    int8 = OnnxTextEncoder(export_dir, int8=True, threads=1)
    for encoder, floor in ((fp32, 0.999), (int8, 0.98)):
        vectors = encoder.encode(TEXTS, batch_size=4)
        assert encoder.dim == 384 and vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert _cosines(vectors, reference).min() > floor
    assert fp32.encoder_id != int8.encoder_id  # their vectors differ: separate index caches


def test_dynamic_batch_and_sequence_axes(export_dir):
    encoder = OnnxTextEncoder(export_dir, int8=False, threads=1)
    together = encoder.encode(TEXTS, batch_size=64)
    one_by_one = encoder.encode(TEXTS, batch_size=1, progress=True)
    assert np.allclose(together, one_by_one, atol=1e-5)
    long_text = encoder.encode(["drill " * 500])  # truncated to max_length tokens, as in torch
    assert long_text.shape == (1, 384)
    assert encoder.encode([]).shape == (0, 384)


def test_default_precision_follows_the_measured_decision(export_dir):
    from shelfwise.encoders import onnx

    assert OnnxTextEncoder(export_dir).int8 is onnx.SERVE_INT8_BY_DEFAULT


def test_missing_or_bad_folder_gives_a_clear_error(tmp_path, export_dir):
    with pytest.raises(FileNotFoundError, match="not an ONNX text encoder .*search export-onnx"):
        OnnxTextEncoder(tmp_path)
    (tmp_path / FP32_FILE).write_bytes(b"")
    (tmp_path / EXPORT_CONFIG).write_text(json.dumps({"kind": "sasrec"}))
    with pytest.raises(ValueError, match="onnx-text-encoder"):
        OnnxTextEncoder(tmp_path)
    with pytest.raises(FileNotFoundError, match="no artifact"):
        export_text_encoder(tmp_path / "nothing", tmp_path / "out")


def _cli(args, home):
    return CliRunner().invoke(search, args, obj=Settings(home=home, quiet=True))


def test_cli_exports_a_fine_tuned_artifact_and_search_run_serves_it(tmp_path, torch_encoder):
    from shelfwise import artifacts

    import torch

    # A "fine-tuned" encoder: other attention weights (a constant shift of the embeddings would
    # vanish in the LayerNorm that follows them).
    state = {k: v.clone() for k, v in torch_encoder.model.state_dict().items()}
    query = state["encoder.layer.0.attention.self.query.weight"]
    query += 0.05 * torch.randn(query.shape, generator=torch.Generator().manual_seed(0))
    artifacts.save(tmp_path / "tuned", state, {"kind": "text-encoder", "max_length": 32})

    out = tmp_path / "tuned-onnx"
    result = _cli(["export-onnx", "--model", str(tmp_path / "tuned"), "--out", str(out)], tmp_path / "home")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files"].keys() == {FP32_FILE}
    exported = OnnxTextEncoder(out)
    assert exported.max_length == 32 and not exported.int8
    tuned = TextEncoder.from_artifact(tmp_path / "tuned").encode(TEXTS)
    assert _cosines(exported.encode(TEXTS), tuned).min() > 0.999
    assert not np.allclose(tuned, torch_encoder.encode(TEXTS), atol=1e-4)  # it is the tuned weights that were exported

    (tmp_path / "products.csv").write_text("product_id,title\n1,Cordless Drill Kit\n2,Claw Hammer\n3,Garden Hose 50 ft\n")
    (tmp_path / "queries.txt").write_text("drill\nwater hose\n")
    run = tmp_path / "run.tsv"
    result = _cli(["run", "--products", str(tmp_path / "products.csv"), "--queries", str(tmp_path / "queries.txt"),
                   "--model", str(out), "--mode", "semantic", "--top", "1", "--out", str(run)], tmp_path / "home")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(run.open(), delimiter="\t"))[1:]
    assert [(query, product) for query, product, _, _ in rows] == [("drill", "1"), ("water hose", "3")]


def test_cli_errors_name_the_folder(tmp_path):
    result = _cli(["export-onnx", "--model", str(tmp_path), "--out", str(tmp_path / "out")], tmp_path / "home")
    assert result.exit_code != 0 and "no artifact" in result.output and str(tmp_path) in result.output
    (tmp_path / "products.csv").write_text("product_id,title\n1,Drill\n")
    (tmp_path / "queries.txt").write_text("drill\n")
    result = _cli(["run", "--products", str(tmp_path / "products.csv"), "--queries", str(tmp_path / "queries.txt"),
                   "--model", str(tmp_path), "--mode", "semantic", "--out", str(tmp_path / "run.tsv")], tmp_path / "home")
    assert result.exit_code != 0 and "no artifact" in result.output


def test_the_api_searches_with_the_int8_export_made_once_in_the_home(export_dir, tmp_path, monkeypatch):
    """With SHELFWISE_TEXT_ENCODER=onnx (the default outside the tests), the first process exports
    MiniLM into <home>/encoders/minilm-onnx and serves int8 from it; later loads reuse it."""
    import shutil
    import time

    from fastapi.testclient import TestClient

    from shelfwise.serving import create_app, encoder as serving_encoder
    from shelfwise.store import Store
    from tests.serving_helpers import fill_shop, make_settings

    exports = []

    def export_once(source, folder, int8):  # the real export is tested above; copy its result
        exports.append(folder)
        shutil.copytree(export_dir, folder, dirs_exist_ok=True)

    monkeypatch.setenv("SHELFWISE_TEXT_ENCODER", "onnx")
    monkeypatch.setattr("shelfwise.encoders.export_text_encoder", export_once)
    monkeypatch.setattr(serving_encoder, "_loaded", {})
    settings = make_settings(tmp_path)
    store = Store.open(settings)
    fill_shop(store)
    with TestClient(create_app(settings, store, require_read_key=False, search_semantic=True)) as client:
        deadline = time.time() + 120
        while client.get("/readyz").json()["search"]["semantic"] != "ready":
            assert time.time() < deadline, "the semantic index was not built"
            time.sleep(0.2)
        found = client.get("/search", params={"q": "product 7", "mode": "semantic"}).json()
        assert found["mode"] == "semantic" and found["results"]
    encoder, encoder_id = serving_encoder.serving_text_encoder(settings)
    assert isinstance(encoder, OnnxTextEncoder) and encoder.int8 and encoder_id.endswith(encoder.config["exported_at"])
    assert exports == [settings.home / serving_encoder.EXPORT_FOLDER]  # exported once, then reused
    store.close()
