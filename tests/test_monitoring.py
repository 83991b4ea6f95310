"""Monitoring: the alert rules refer to metrics the API exports, and logs are JSON lines."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from shelfwise.serving.logging import JsonFormatter
from shelfwise.serving.metrics import Metrics

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus-alerts.yml"


def test_alert_rules_use_exported_metrics():
    yaml = pytest.importorskip("yaml")
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {"ShelfwiseRecommendationLatencyHigh", "ShelfwiseErrorRateHigh", "ShelfwiseModelStale"} <= {r["alert"] for r in rules}
    metrics = Metrics()
    metrics.set_model("transitions", "v1", "fitted", 1.0, 1.0)
    families = set(re.findall(r"^# TYPE (\w+) ", metrics.render().decode(), re.M))
    for rule in rules:
        assert rule["labels"]["severity"] in {"info", "warning", "critical"} and rule["annotations"]["summary"]
        for name in re.findall(r"shelfwise_[a-z_]+", rule["expr"]):
            family = re.sub(r"_(bucket|count|sum)$", "", name)
            assert family in families or family.removesuffix("_total") in families, f"{rule['alert']}: {name} is not exported"


def test_log_lines_are_json_with_fields_and_masked_text():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("shelfwise.test-monitoring")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("order from %s", "ann@example.org", extra={"fields": {"status": 200, "path": "/u/+1 415 555 2671",
                                                                          "version": "fitted-20261130-112413"}})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "order from [email]" and line["path"] == "/u/[phone]" and line["status"] == 200
    assert line["version"] == "fitted-20261130-112413"  # our own field: a model version, not a phone number
    assert line["level"] == "info" and line["ts"].endswith("Z")
