"""The shelfwise command as a user runs it: a real process, exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SHELFWISE = [sys.executable, "-m", "shelfwise.cli"]


def run(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHELFWISE_HOME": str(home)}
    env.pop("SHELFWISE_DB", None)
    result = subprocess.run([*SHELFWISE, "--quiet", *args], capture_output=True, text=True, env=env, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"shelfwise {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_ingest_and_status_json(tmp_path):
    home = tmp_path / "home"
    (tmp_path / "items.csv").write_text("item_id,title,price\nA,Apron,12\nB,Bowl,8.5\n")
    (tmp_path / "events.jsonl").write_text(
        '{"event_id": "1", "user_id": "u", "item_id": "A", "type": "view", "ts": "2024-01-01T00:00:00Z"}\n'
        '{"event_id": "2", "user_id": "u", "item_id": "B", "type": "purchase", "ts": "2024-01-01T00:01:00Z"}\n'
    )
    out = run(home, "ingest", "items", str(tmp_path / "items.csv")).stdout
    assert "2 items read, 2 stored, 0 rejected" in out
    assert "2 events read, 2 stored" in run(home, "ingest", "events", str(tmp_path / "events.jsonl")).stdout
    assert json.loads(run(home, "status", "--json").stdout) == {"items": 2, "users": 1, "events": 2}


def test_bad_file_exits_nonzero_naming_file_line_field(tmp_path):
    home = tmp_path / "home"
    bad = tmp_path / "items.csv"
    bad.write_text("item_id,title,price\nA,Apron,12\nB,Bowl,free\n")
    result = run(home, "ingest", "items", str(bad), check=False)
    assert result.returncode != 0
    assert f"{bad}:3: field 'price'" in result.stderr
    assert "nothing from" in result.stderr
    assert json.loads(run(home, "status", "--json").stdout)["items"] == 0


def test_skip_invalid_writes_rejects_to_home(tmp_path):
    home = tmp_path / "home"
    bad = tmp_path / "items.csv"
    bad.write_text("item_id,title,price\nA,Apron,12\nB,Bowl,free\n")
    out = run(home, "ingest", "items", str(bad), "--skip-invalid").stdout
    assert "2 items read, 1 stored, 1 rejected" in out
    rejects = home / "rejects" / "items.csv.rejects.jsonl"
    assert json.loads(rejects.read_text())["field"] == "price"


def test_db_option_points_at_another_database(tmp_path):
    db = tmp_path / "other.db"
    (tmp_path / "items.csv").write_text("item_id,title\nA,Apron\n")
    run(tmp_path / "home", "--db", f"sqlite:///{db}", "ingest", "items", str(tmp_path / "items.csv"))
    assert db.exists()
    assert json.loads(run(tmp_path / "home", "--db", f"sqlite:///{db}", "status", "--json").stdout)["items"] == 1
