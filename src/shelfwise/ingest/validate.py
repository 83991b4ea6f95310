"""Check a batch of raw records column by column against the pydantic models in
``shelfwise.schema``: the same field types and constraints, applied to whole columns at once.

``validate(frame, lines, kind)`` returns the rows that passed, typed for the store, and one
``RowError`` per failed (row, field)."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import annotated_types as at
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from shelfwise.ingest.errors import RowError
from shelfwise.ingest.readers import has_bad_bytes
from shelfwise.schema import RECORDS, EventType

TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}
# Columns a catalogue file may carry beyond the model's fields become item attributes.
EXTRA_COLUMNS_TO = {"items": "attributes"}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: type  # str, float, int, bool, datetime, dict, or an Enum subclass
    required: bool
    default: object
    ge: float | None = None
    min_len: int | None = None
    max_len: int | None = None


def field_specs(model: type[BaseModel]) -> list[FieldSpec]:
    """The model's fields as column checks: the one place the schema is read for files."""
    specs = []
    for name, info in model.model_fields.items():
        kind = info.annotation
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        kind = typing.get_origin(kind) or kind
        limits = {type(m): m for m in info.metadata}
        specs.append(
            FieldSpec(
                name=name,
                kind=kind,
                required=info.is_required(),
                default=None if info.is_required() else info.default,
                ge=getattr(limits.get(at.Ge), "ge", None),
                min_len=getattr(limits.get(at.MinLen), "min_length", None),
                max_len=getattr(limits.get(at.MaxLen), "max_length", None),
            )
        )
    return specs


SPECS = {kind: field_specs(model) for kind, model in RECORDS.items()}


def _is_null(s: pd.Series) -> np.ndarray:
    return s.isna().to_numpy() | s.eq("").fillna(False).to_numpy(bool)


def _is_text_column(s: pd.Series) -> bool:
    """A column of pandas' own strings (the CSV and Parquet readers): it cannot hold
    undecodable bytes or non-text values, so whole-column string operations apply."""
    return isinstance(s.dtype, pd.StringDtype)


def _to_text(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if _is_text_column(s):
        out = s.str.strip()
        return out, out.eq("").to_numpy(bool, na_value=True)
    values = s.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        # The common case (every CSV column): one scan for undecodable bytes, kept as lone
        # surrogates by the reader because pandas' Arrow strings cannot hold them.
        if not has_bad_bytes("".join(values)):
            out = pd.Series([v.strip() for v in values], index=s.index, dtype=object)
            return out, (out == "").to_numpy()

    def text(v):
        if isinstance(v, str):
            return None if has_bad_bytes(v) or not v.strip() else v.strip()
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            return str(v)
        return None

    out = s.map(text).astype(object)
    return out, out.isna().to_numpy()


def _numbers(s: pd.Series) -> pd.Series:
    """Numeric values of a column; booleans are not numbers here (JSON true is not 1)."""
    return pd.to_numeric(s if _is_text_column(s) else s.map(lambda v: None if isinstance(v, bool) else v), errors="coerce")


def _to_float(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    out = _numbers(s)
    bad = out.isna().to_numpy() | ~np.isfinite(out.to_numpy(float, na_value=np.nan))
    return out, bad


def _to_int(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    out, bad = _to_float(s)
    values = out.to_numpy(float, na_value=np.nan)
    bad |= ~np.isnan(values) & (np.floor(values) != values)
    return out, bad


def _to_bool(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    def parse(v):
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, float, np.integer)) and v in (0, 1):
            return bool(v)
        if isinstance(v, str):
            low = v.strip().lower()
            return True if low in TRUE else False if low in FALSE else None
        return None

    out = s.map(parse)
    return out, out.isna().to_numpy()


def _to_millis(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """ISO 8601 text (naive = UTC), or a number of seconds (or milliseconds, if huge) since the epoch."""
    if pd.api.types.is_datetime64_any_dtype(s):
        naive = s.dt.tz_convert("UTC").dt.tz_localize(None) if s.dt.tz is not None else s
        return pd.Series(naive.astype("datetime64[ms]").to_numpy().astype(np.int64), index=s.index), np.zeros(len(s), bool)
    if _is_text_column(s):  # only text that looks like a number is read as one
        looks_numeric = pc.match_substring_regex(pa.array(s), r"^\s*[-+]?\d+(\.\d*)?\s*$").to_numpy(zero_copy_only=False)
        looks_numeric = np.asarray(looks_numeric, dtype=object) == True  # noqa: E712 (nulls are not numbers)
        numeric = pd.Series(np.nan, index=s.index)
        if looks_numeric.any():
            numeric[looks_numeric] = pd.to_numeric(s[looks_numeric], errors="coerce")
    else:
        numeric = _numbers(s)
    is_num = numeric.notna().to_numpy()
    millis = np.zeros(len(s), dtype=np.int64)
    bad = np.zeros(len(s), dtype=bool)
    if is_num.any():
        n = numeric.to_numpy(float)[is_num]
        millis[is_num] = np.where(np.abs(n) >= 1e11, n, n * 1000).round().astype(np.int64)
    text = ~is_num
    if text.any():
        parsed = pd.to_datetime(s[text].astype("str"), format="ISO8601", utc=True, errors="coerce")
        bad[text] = parsed.isna().to_numpy()
        ok = ~bad[text]
        naive = parsed[ok].dt.tz_localize(None).astype("datetime64[ms]")
        millis[np.flatnonzero(text)[ok]] = naive.to_numpy().astype(np.int64)
    return pd.Series(millis, index=s.index), bad


def _to_dict(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    def parse(v):
        if isinstance(v, dict):
            return v
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                return None
            return v if isinstance(v, dict) else None
        return None

    out = s.map(parse)
    return out, out.isna().to_numpy()


def _enum(enum: type[Enum]):
    allowed = {m.value for m in enum}

    def coerce(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
        # Few distinct values in many rows: normalise each distinct value once.
        codes, uniques = pd.factorize(s if _is_text_column(s) else s.astype(object), use_na_sentinel=False)
        normal = np.array([v.strip().lower() if isinstance(v, str) else v for v in uniques], dtype=object)
        out = pd.Series(normal[codes], index=s.index, dtype=object)
        return out, ~np.isin(normal, list(allowed))[codes]

    return coerce


COERCE = {str: _to_text, float: _to_float, int: _to_int, bool: _to_bool, datetime: _to_millis, dict: _to_dict}
EXPECTED = {str: "valid UTF-8 text", float: "a number", int: "a whole number", bool: "true or false", datetime: "an ISO 8601 time or epoch seconds", dict: "a JSON object"}


def validate(frame: pd.DataFrame, lines: np.ndarray, kind: str) -> tuple[pd.DataFrame, list[RowError]]:
    """Typed, valid rows of ``frame`` (index kept) and the errors of the others."""
    specs = SPECS[kind]
    names = {s.name for s in specs}
    n = len(frame)
    errors: list[RowError] = []
    row_bad = np.zeros(n, dtype=bool)

    def fail(mask: np.ndarray, field: str, message) -> None:
        nonlocal row_bad
        for i in np.flatnonzero(mask):
            text = message(i) if callable(message) else message
            errors.append(RowError(int(lines[i]), field, text, _raw(frame, i)))
        row_bad |= mask

    extra = [c for c in frame.columns if c not in names]
    if extra and kind not in EXTRA_COLUMNS_TO:
        fail(np.ones(n, bool), extra[0], f"unknown field (expected some of: {', '.join(sorted(names))})")

    out = pd.DataFrame(index=frame.index)
    for spec in specs:
        column = frame[spec.name] if spec.name in frame.columns else pd.Series([None] * n, index=frame.index, dtype=object)
        null = _is_null(column)
        if spec.required:
            fail(null, spec.name, "required field is missing")
        coerce = _enum(spec.kind) if isinstance(spec.kind, type) and issubclass(spec.kind, Enum) else COERCE[spec.kind]
        present = ~null
        values = pd.Series([spec.default] * n, index=frame.index, dtype=object)
        if present.any():
            every = present.all()  # the common case: no need to pick and put back rows
            coerced, bad = coerce(column if every else column[present])
            expected = EXPECTED.get(spec.kind) or f"one of {', '.join(m.value for m in spec.kind)}"
            where = np.flatnonzero(present)
            fail(_spread(bad, where, n), spec.name, lambda i, c=column: f"expected {expected}, got {_show(c.iloc[i])}")
            if every:  # kept in its own dtype: pandas strings stay whole-column operations
                values = coerced.set_axis(frame.index)
            else:
                values.iloc[where] = coerced.to_numpy(dtype=object)
            good = present & ~row_bad
            _check_limits(spec, values, good, fail)
        out[spec.name] = values

    if kind in EXTRA_COLUMNS_TO and extra:
        target = EXTRA_COLUMNS_TO[kind]
        extras = frame[extra].astype(object).where(frame[extra].notna(), None).to_dict("records")
        merged = [
            {**{k: v for k, v in e.items() if v is not None and v != ""}, **(a or {})} for e, a in zip(extras, out[target])
        ]
        out[target] = [m or None for m in merged]

    if kind == "events":
        _check_event_rules(out, fail)

    keep = ~row_bad
    errors.sort(key=lambda e: e.line)
    return out[keep], errors


def _check_limits(spec: FieldSpec, values: pd.Series, rows: np.ndarray, fail) -> None:
    if spec.ge is not None:
        v = pd.to_numeric(values, errors="coerce").to_numpy(float, na_value=np.nan)
        fail(rows & (v < spec.ge), spec.name, f"must be at least {spec.ge}")
    if spec.min_len is not None or spec.max_len is not None:
        text = values if _is_text_column(values) else values.astype(object)  # text fields: str or None
        lengths = text.str.len().to_numpy(float, na_value=-1)
        if spec.min_len is not None:
            fail(rows & (lengths >= 0) & (lengths < spec.min_len), spec.name, f"must have at least {spec.min_len} characters")
        if spec.max_len is not None:
            fail(rows & (lengths > spec.max_len), spec.name, f"must have at most {spec.max_len} characters")


def _check_event_rules(out: pd.DataFrame, fail) -> None:
    no_actor = out["user_id"].isna().to_numpy() & out["session_id"].isna().to_numpy()
    fail(no_actor, "user_id", "an event needs a user_id or a session_id")
    is_search = (out["type"] == EventType.search.value).to_numpy()
    fail(~is_search & out["item_id"].isna().to_numpy(), "item_id", lambda i: f"required for a {out['type'].iloc[i]} event")
    fail(is_search & out["query"].isna().to_numpy(), "query", "required for a search event")


def _spread(mask: np.ndarray, where: np.ndarray, n: int) -> np.ndarray:
    full = np.zeros(n, dtype=bool)
    full[where[mask]] = True
    return full


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _raw(frame: pd.DataFrame, i: int) -> dict:
    return {k: (None if _scalar_na(v) else v) for k, v in frame.iloc[i].items()}


def _scalar_na(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
