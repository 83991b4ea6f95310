"""The text encoder the API serves with: MiniLM through ONNX Runtime, int8.

int8 costs 0.001 NDCG@10 on Home Depot and encodes a query in a fifth of torch's time
(docs/benchmarks.md, "ONNX encoders"). The export is made once per home, by the first process
that needs it (a file lock keeps several workers from exporting at once), and shared by all.

``SHELFWISE_TEXT_ENCODER``: ``onnx`` (the default: the export in the home), ``torch`` (the
pretrained MiniLM in torch), or a folder: an ONNX export or a fine-tuned encoder artifact.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path

from shelfwise.config import Settings

log = logging.getLogger("shelfwise.search")

ENCODER_ENV = "SHELFWISE_TEXT_ENCODER"
EXPORT_FOLDER = Path("encoders") / "minilm-onnx"  # under the home

_loaded: dict[str, tuple] = {}
_lock = threading.Lock()


def serving_text_encoder(settings: Settings) -> tuple[object, str]:
    """(encoder, id for index caches), one per process and choice: loading takes seconds and every
    app in the process (tests, a reload) can share it."""
    from shelfwise.encoders import export_text_encoder, load_text_encoder
    from shelfwise.encoders.onnx import is_onnx_export

    choice = os.environ.get(ENCODER_ENV, "onnx")
    folder = None if choice == "torch" else settings.home / EXPORT_FOLDER if choice == "onnx" else Path(choice)
    key = str(folder.resolve()) if folder else "torch"
    with _lock:
        if key not in _loaded:
            if choice == "onnx" and not is_onnx_export(folder):
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder.parent / ".export.lock", "w") as handle:
                    fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
                    if not is_onnx_export(folder):
                        log.info("exporting MiniLM to ONNX (int8) for serving", extra={"fields": {"folder": str(folder)}})
                        export_text_encoder(None, folder, int8=True)
            # One thread per query: requests run side by side on the API's workers.
            _loaded[key] = load_text_encoder(folder, threads=1)
        return _loaded[key]
