"""scripts/gpu_check.py's quick CPU mode: the same code paths as on a GPU, at tiny sizes."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_gpu_check_quick_runs_every_section_and_passes(tmp_path):
    pytest.importorskip("solo.methods")
    out = tmp_path / "report.md"
    run = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "gpu_check.py"), "--device", "cpu",
                          "--quick", "--out", str(out)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = out.read_text()
    for heading in ("## 1. Losses", "## 2. Training steps", "## 3. No host-device sync", "## 4. Chunked forward",
                    "## 5. DALI"):
        assert heading in report
    assert "all checks passed" in report and "FAIL" not in report
    for loss in ("infonce", "dclw", "dhel", "kcl riesz", "mv-dhel (2 views)"):
        assert f"| {loss} |" in report
    assert "riesz before (torch.cdist)" in report
    assert report.count("| pass |") == 12  # 8 method settings, 4 of them also with 2+6 crops
    assert "| dhel tiled |" in report and "dhel whole block" in report and "| dhel chunked |" in report
    assert sorted(os.listdir(tmp_path)) == ["dali", "report.md"]  # everything under the report's folder


@pytest.mark.slow
def test_bench_tiled_quick_prints_whole_and_tiled_rows(tmp_path):
    run = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "bench_tiled.py"), "--sizes", "256",
                          "--chunk", "64", "--losses", "dhel", "kcl riesz"], capture_output=True, text=True,
                         timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| 256 |")]
    assert len(rows) == 2 and all(line.count("x |") == 2 for line in rows), run.stdout
