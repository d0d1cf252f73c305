"""``harness findings`` run as its own process on a damaged database: one line on stderr, exit 2, no
traceback. (Moved from tests/unit/test_findings_store.py: it starts a process.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.findings.sqlite import SqliteStore
from tests.unit.test_findings_store import fail_scenario, new_run


def test_damaged_database_gives_one_line_not_a_traceback(tmp_path: Path) -> None:
    db = tmp_path / "findings.db"
    s = SqliteStore(db)
    run_id = new_run(s)
    for i in range(30):
        fail_scenario(s, run_id, value=400 + i)
    s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    data = bytearray(db.read_bytes())
    data[4096:] = b"\xde\xad\xbe\xef" * ((len(data) - 4096) // 4)
    db.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "harness", "--home", str(tmp_path), "findings", "--db", str(db),
                           "list", "--status", "all"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: findings database {db} is damaged")
    assert len(proc.stderr.strip().splitlines()) == 1
