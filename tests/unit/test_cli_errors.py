"""The CLI never shows a traceback: one clear line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys


def plexus(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True, timeout=60)


def test_status_without_a_daemon_is_one_line_and_exit_1(tmp_path):
    result = plexus("status", "--home", str(tmp_path))
    assert result.returncode == 1
    assert "no daemon is running" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_option_is_a_usage_error_without_traceback(tmp_path):
    result = plexus("status", "--no-such-flag")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout


def test_run_with_a_bad_network_name_is_refused(tmp_path):
    result = plexus("run", "--home", str(tmp_path), "--network", "Not Valid")
    assert result.returncode == 1
    assert "network name" in result.stderr


def test_init_prints_a_stable_peer_id_as_json(tmp_path):
    first = plexus("init", "--home", str(tmp_path), "--json")
    second = plexus("init", "--home", str(tmp_path), "--json")
    assert first.returncode == 0
    assert first.stdout == second.stdout
    assert '"peer_id": "12D3KooW' in first.stdout
