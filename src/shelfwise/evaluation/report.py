"""A self-contained HTML report: learning curves (training loss, validation metrics per epoch)
and metric tables, the plots embedded as PNG so the file can be mailed or archived alone."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path


def _figure_png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def learning_curves_png(history: list[dict], metrics=("ndcg@10", "hr@10")) -> str | None:
    """Base64 PNG of loss and validation metrics per epoch, or None when there is no history."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] + 1 for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot(epochs, [h["loss"] for h in history], marker=".")
    left.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    for name in metrics:
        values = [h["metrics"].get(name) for h in history]
        if any(v is not None for v in values):
            right.plot(epochs, values, marker=".", label=name)
    right.set(xlabel="epoch", ylabel="validation", title="Validation metrics")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _table(rows: dict[str, dict[str, float]]) -> str:
    columns = sorted({k for row in rows.values() for k in row}, key=lambda k: (k.split("@")[-1].zfill(4), k))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{row[c]:.4f}</td>" if isinstance(row.get(c), (int, float)) else "<td></td>" for c in columns)
        + "</tr>"
        for name, row in rows.items()
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def write_report(path: Path | str, title: str, tables: dict[str, dict[str, float]], history: list[dict] | None = None,
                 notes: dict[str, str] | None = None) -> Path:
    """Write ``path`` (HTML): ``tables`` maps a row name (e.g. "valid", "test") to its metrics."""
    path = Path(path)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if notes:
        parts.append("<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in notes.items()) + "</dl>")
    parts.append("<h2>Metrics</h2>" + _table(tables))
    png = learning_curves_png(history or [])
    if png:
        parts.append(f'<h2>Learning curves</h2><img alt="learning curves" src="data:image/png;base64,{png}">')
    style = ("body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}dt{font-weight:bold}")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    return path
