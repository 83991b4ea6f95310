"""The text encoder exported to ONNX (fp32, and int8 weights) and served through ONNX Runtime.

An export folder is all that serving needs, offline and without the training artifact:

- ``model.onnx``: token ids + attention mask -> L2-normalised vectors. Mean pooling and the
  normalisation are inside the graph (traced from :func:`~shelfwise.encoders.text.pooled_embeddings`),
  so the runtime only tokenises and runs one session.
- ``model.int8.onnx`` (``int8=True``): the same graph with int8 weights (dynamic quantisation).
- the tokenizer files of the exported encoder, and ``onnx_encoder.json`` saying what was exported.

The cross-encoder reranker exports through the same :func:`export_model` (kind ``onnx-cross-encoder``:
token ids, attention mask and token type ids of (query, text) pairs -> one logit per pair); its
runtime is :class:`shelfwise.search.rerank.OnnxReranker`.

:class:`OnnxTextEncoder` has the ``encode`` / ``dim`` API of :class:`~shelfwise.encoders.TextEncoder`,
so search and serving take either.
"""

from __future__ import annotations

import json
import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from shelfwise.encoders.text import (
    BASE_MODEL_NAME,
    TextEncoder,
    encode_by_length,
    load_tokenizer,
    pooled_embeddings,
    tokenize,
)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
EXPORT_CONFIG = "onnx_encoder.json"
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "embeddings"
TEXT_ENCODER_KIND = "onnx-text-encoder"
CROSS_ENCODER_KIND = "onnx-cross-encoder"  # the reranker's export (shelfwise.search.rerank.export_reranker)
# kind -> (what an export of that kind is, the export-onnx arguments that make one), for errors.
_KIND_NAMES = {TEXT_ENCODER_KIND: ("text encoder", ""), CROSS_ENCODER_KIND: ("cross-encoder", "--model CROSS_ENCODER_DIR ")}
# Which file an export folder serves when it holds both. The rule (docs/search.md, "ONNX"): int8
# only if it costs at most 0.005 NDCG@10 on the Home Depot test queries. Measured
# (docs/benchmarks.md, "ONNX encoders"): 0.2784 -> 0.2774 over all products; single queries 1.8x faster than fp32.
SERVE_INT8_BY_DEFAULT = True


def is_onnx_export(path: Path | str) -> bool:
    """Whether ``path`` is a folder written by :func:`export_model` (a text encoder or a cross-encoder:
    its ``onnx_encoder.json`` says which)."""
    return (Path(path) / FP32_FILE).is_file()


class _PooledEncoder(torch.nn.Module):
    """Tensors in, sentence vectors out: the graph the exporter traces (token_type_ids stay the
    model's default zeros, as for every single-segment text the tokenizer makes)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return pooled_embeddings(self.model, {"input_ids": input_ids, "attention_mask": attention_mask})


def _source_encoder(source: TextEncoder | Path | str | None) -> tuple[TextEncoder, str]:
    """The torch encoder to export and a name for where it came from."""
    if source is None:
        return TextEncoder(), BASE_MODEL_NAME
    if isinstance(source, TextEncoder):
        return source, str(source.model_dir or BASE_MODEL_NAME)
    from shelfwise import artifacts

    artifact = artifacts.load(source)  # FileNotFoundError naming the folder when it is not an artifact
    return TextEncoder.from_artifact(artifact.path), str(artifact.path.resolve())


def export_text_encoder(
    encoder_or_artifact_dir: TextEncoder | Path | str | None, out_dir: Path | str, int8: bool = False
) -> Path:
    """Write ``model.onnx`` (and ``model.int8.onnx`` with ``int8``), the tokenizer and the export
    config to ``out_dir``. The source is a :class:`TextEncoder`, a fine-tuned encoder artifact
    folder (``shelfwise search finetune --out``), or None for the pretrained MiniLM.
    Batch size and sequence length are dynamic axes."""
    encoder, source = _source_encoder(encoder_or_artifact_dir)
    example = tokenize(encoder.tokenizer, ["cordless drill", "a longer product title to trace the graph with"], encoder.max_length)
    return export_model(
        _PooledEncoder(encoder.model), encoder.tokenizer, {name: example[name] for name in INPUT_NAMES}, OUTPUT_NAME, out_dir, int8,
        {"kind": TEXT_ENCODER_KIND, "source": source, "max_length": encoder.max_length, "dim": encoder.dim},
    )


def export_model(
    model: torch.nn.Module, tokenizer, example: dict[str, torch.Tensor], output_name: str, out_dir: Path | str, int8: bool, config: dict
) -> Path:
    """The one export: trace ``model`` (its inputs named and ordered as ``example``'s keys, batch and
    sequence axes dynamic) to ``out_dir/model.onnx``, with ``int8`` also ``model.int8.onnx``, and write
    the tokenizer and ``onnx_encoder.json`` (``config``, which names the ``kind``, plus what was exported)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    try:
        program = _trace(model.eval(), example, output_name, _max_tokens(model))
    finally:
        model.train(was_training)
    program.save(str(out_dir / FP32_FILE), external_data=False)  # one self-contained file (~90 MB)
    if int8:
        quantize_int8(out_dir / FP32_FILE, out_dir / INT8_FILE)
    elif (out_dir / INT8_FILE).exists():
        (out_dir / INT8_FILE).unlink()  # an int8 file left from an older export would not match
    tokenizer.save_pretrained(str(out_dir))
    config = {
        **config,
        "inputs": list(example),
        "output": output_name,
        "files": {"fp32": FP32_FILE, **({"int8": INT8_FILE} if int8 else {})},
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "torch": torch.__version__,
    }
    (out_dir / EXPORT_CONFIG).write_text(json.dumps(config, indent=2))
    return out_dir


def _max_tokens(model: torch.nn.Module) -> int:
    """The longest sequence the transformer inside ``model`` takes (the bound of the dynamic sequence axis)."""
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "max_position_embeddings"):
            return int(config.max_position_embeddings)
    raise ValueError(f"{type(model).__name__} holds no transformer with max_position_embeddings")


def _trace(model: torch.nn.Module, example: dict[str, torch.Tensor], output_name: str, max_tokens: int):
    """The torch.export-based exporter (the default since torch 2.9; the TorchScript one is
    deprecated), with batch size and sequence length as dynamic axes of every input."""
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=max_tokens)
    # The exporter logs a warning per torchvision op it cannot find (torchvision is not used here)
    # and warns about its own internals; none of it concerns this model.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="# The axis name")
        warnings.filterwarnings("ignore", message=".*LeafSpec")
        return torch.onnx.export(
            model,
            tuple(example.values()),
            input_names=list(example),
            output_names=[output_name],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in example},
            dynamo=True,
            verbose=False,
        )


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """Dynamic quantisation: int8 weights, activations quantised per batch at run time.

    Per-channel scales keep MiniLM's cosine to the fp32 vectors at ~0.99 (one scale per tensor gave
    ~0.96 on Home Depot titles); ``reduce_range`` (7-bit weights) avoids the u8 x s8 overflow of
    AVX2 CPUs without VNNI, such as this machine, at no measured cost.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime logs "consider pre-processing" on the root logger; the exporter already optimised the graph.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    finally:
        root.setLevel(level)


def read_export_config(export_dir: Path | str, kind: str = TEXT_ENCODER_KIND) -> dict:
    """The export's ``onnx_encoder.json``, or an error that says what is missing and how to make it.
    ``kind``: what the folder must hold (``onnx-text-encoder``, ``onnx-cross-encoder``)."""
    export_dir = Path(export_dir)
    missing = [name for name in (FP32_FILE, EXPORT_CONFIG) if not (export_dir / name).is_file()]
    if missing:
        what, model = _KIND_NAMES[kind]
        raise FileNotFoundError(
            f"{export_dir}: not an ONNX {what} (missing {', '.join(missing)}); "
            f"make one with `shelfwise search export-onnx {model}--out {export_dir}`"
        )
    config = json.loads((export_dir / EXPORT_CONFIG).read_text())
    if config.get("kind") != kind:
        raise ValueError(f"{export_dir / EXPORT_CONFIG}: kind is {config.get('kind')!r}, expected {kind!r}")
    return config


def open_session(export_dir: Path, int8: bool | None, threads: int):
    """(ONNX Runtime session, whether it runs int8) for an export folder. ``int8``: ``model.int8.onnx``
    (True), ``model.onnx`` (False), or the measured default (None: int8 when the folder has it and
    :data:`SERVE_INT8_BY_DEFAULT`). ``threads``: intra-op threads, 0 for one per core."""
    import onnxruntime

    has_int8 = (export_dir / INT8_FILE).is_file()
    if int8 and not has_int8:
        raise FileNotFoundError(f"{export_dir}: no {INT8_FILE}; export with --int8 to serve int8")
    int8 = (has_int8 and SERVE_INT8_BY_DEFAULT) if int8 is None else bool(int8)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # No spin-waiting between ops: faiss and the web server share these cores (see
    # search.semantic.single_threaded for what two spinning pools did to latency).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model_file = export_dir / (INT8_FILE if int8 else FP32_FILE)
    return onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"]), int8


class OnnxTextEncoder:
    """A :class:`TextEncoder` for serving: the same ``encode(texts, batch_size, progress)`` -> float32
    unit rows and ``dim``, computed by ONNX Runtime from an export folder.

    ``int8``: serve ``model.int8.onnx`` (True), ``model.onnx`` (False), or the measured default
    (None: int8 when the folder has it and :data:`SERVE_INT8_BY_DEFAULT`). ``threads``: ONNX Runtime
    intra-op threads, 0 for one per core.
    """

    def __init__(self, export_dir: Path | str, int8: bool | None = None, threads: int = 0):
        self.export_dir = Path(export_dir)
        self.config = read_export_config(self.export_dir)
        self.session, self.int8 = open_session(self.export_dir, int8, threads)
        self.max_length = int(self.config["max_length"])
        self.tokenizer = load_tokenizer(self.export_dir)

    @property
    def dim(self) -> int:
        return int(self.config["dim"])

    @property
    def encoder_id(self) -> str:
        """Names this export in index cache keys: a re-export or the other precision is another encoder."""
        return f"{self.export_dir.resolve()}@{'int8' if self.int8 else 'fp32'}@{self.config['exported_at']}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        batch = tokenize(self.tokenizer, texts, self.max_length, return_tensors="np")
        inputs = {name: batch[name].astype(np.int64) for name in INPUT_NAMES}
        return self.session.run([OUTPUT_NAME], inputs)[0]

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """float32 [n, dim], each row of unit length (as :meth:`TextEncoder.encode`)."""
        return encode_by_length(texts, self.dim, self._embed, batch_size, progress)
