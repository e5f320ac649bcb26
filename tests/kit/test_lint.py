"""The kit follows its lint rules (ruff.toml): pyflakes' errors, unused names, import order, lines
of at most 120 characters. student/ is left out: what a student writes there is theirs."""

import subprocess
import sys

from conftest import ROOT


def test_the_kit_passes_its_linter():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--extend-exclude", "student", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
