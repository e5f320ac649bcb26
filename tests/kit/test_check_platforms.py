"""tools/check_platforms.py: markers are evaluated for the target, not for the machine running pip."""

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import check_platforms  # noqa: E402

LOCK = """numpy==2.2.6 ; python_full_version < '3.11'
numpy==2.4.6 ; python_full_version == '3.11.*'
tflite-micro==0.dev1 ; platform_machine == 'x86_64' and sys_platform == 'linux'
# a comment
"""


def _environment(target, python):
    return check_platforms.marker_environment(check_platforms.TARGETS[target][1], python)


def test_tflite_micro_is_asked_for_on_linux_x86_64_only():
    assert "tflite-micro==0.dev1" in check_platforms.lines_for_target(LOCK, _environment("Linux x86_64", "3.11"))
    for target in ("Linux aarch64", "macOS arm64", "Windows x86_64"):
        assert not any("tflite-micro" in line for line in check_platforms.lines_for_target(LOCK, _environment(target, "3.11")))


def test_python_version_markers_follow_the_target_python():
    assert check_platforms.lines_for_target(LOCK, _environment("macOS arm64", "3.10"))[0] == "numpy==2.2.6"
    assert check_platforms.lines_for_target(LOCK, _environment("macOS arm64", "3.11"))[0] == "numpy==2.4.6"


def test_every_requirement_of_the_kit_is_pinned_in_the_lock():
    environment = _environment("Linux x86_64", "3.11")
    locked = {line.split("==")[0] for line in check_platforms.lines_for_target(
        (ROOT / "constraints.txt").read_text(), environment)}
    wanted = {line.split("==")[0].split(">")[0].split("<")[0].strip().lower() for line in
              check_platforms.lines_for_target((ROOT / "requirements.txt").read_text(), environment)}
    assert wanted <= locked
    assert all("==" in line for line in check_platforms.lines_for_target((ROOT / "constraints.txt").read_text(), environment))
