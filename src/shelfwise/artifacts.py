"""The one artifact format: a folder per model version holding ``model.safetensors`` (weights),
``config.json`` (what is needed to rebuild the model) and ``metrics.json`` (how good it is).

Versions live under ``<home>/artifacts/<name>/<version>``; ``latest`` names the newest complete
one. A version is written to a temporary folder and renamed into place, so a reader never sees
a half-written artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


@dataclass
class Artifact:
    path: Path
    config: dict
    metrics: dict

    @property
    def version(self) -> str:
        return self.path.name

    def state_dict(self) -> dict[str, torch.Tensor]:
        return load_file(str(self.path / "model.safetensors"))


def save(
    root: Path | str,
    state_dict: dict[str, torch.Tensor],
    config: dict,
    metrics: dict | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> Artifact:
    """Write a new version under ``root`` (e.g. ``<home>/artifacts/sasrec``) and point ``latest`` at it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    version = time.strftime("%Y%m%d-%H%M%S")
    n = 0
    while (root / (version + (f"-{n}" if n else ""))).exists():
        n += 1
    version += f"-{n}" if n else ""
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2, default=str))
        (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2, default=str))
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        os.replace(tmp, root / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_latest(root, version)
    return load(root / version)


def _point_latest(root: Path, version: str) -> None:
    tmp = root / ".latest.tmp"
    tmp.write_text(version)
    os.replace(tmp, root / "latest")


def load(path: Path | str) -> Artifact:
    """Load a version folder, or the ``latest`` version of a model root."""
    path = Path(path)
    if (path / "latest").is_file():
        path = path / (path / "latest").read_text().strip()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no artifact at {path} (expected config.json and model.safetensors)")
    return Artifact(
        path=path,
        config=json.loads((path / "config.json").read_text()),
        metrics=json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").exists() else {},
    )


def versions(root: Path | str) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
