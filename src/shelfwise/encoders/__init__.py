"""Pretrained encoders behind one ``encode()`` API."""

from pathlib import Path

from shelfwise.encoders.onnx import OnnxTextEncoder, export_text_encoder, is_onnx_export
from shelfwise.encoders.text import BASE_MODEL_NAME, TextEncoder, mean_pool

__all__ = ["OnnxTextEncoder", "TextEncoder", "export_text_encoder", "load_text_encoder", "mean_pool"]


def load_text_encoder(folder: Path | str | None, threads: int = 0):
    """(encoder, id for index caches) from a folder: an ONNX export (``search export-onnx``), a
    fine-tuned artifact (``search finetune``), or None for the pretrained MiniLM."""
    if folder is None:
        return TextEncoder(), BASE_MODEL_NAME
    folder = Path(folder)
    if is_onnx_export(folder):
        encoder = OnnxTextEncoder(folder, threads=threads)
        return encoder, encoder.encoder_id
    from shelfwise import artifacts

    return TextEncoder.from_artifact(folder), f"{folder.resolve()}@{artifacts.load(folder).version}"
