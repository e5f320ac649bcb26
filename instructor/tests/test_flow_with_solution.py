"""Flow.ipynb with the reference solution overlaid: the student estimates appear and match."""

import json
import subprocess
import sys

import pytest

from instructor import kit

pytestmark = pytest.mark.slow


def test_the_flow_runs_with_the_reference_solution(tmp_path, small_dataset):
    copy = kit.copy_kit(tmp_path / "kit")
    kit.overlay_solution(copy)
    out = tmp_path / "flow"
    result = subprocess.run([sys.executable, "run_flow.py", "--steps", "60,20", "--eval-step-interval", "20",
                             "--data-dir", str(small_dataset), "--out", str(out)],
                            cwd=copy, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    estimates = json.loads((out / "summary.json").read_text())["student_estimates"]
    assert estimates == {"rom": 8112, "ram": [4000, 7928], "macs": 48000}
