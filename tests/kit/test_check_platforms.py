"""tools/check_platforms.py: uv resolves for each target; every target counts. uv itself is not run
here (it asks the package index): its runner is a stand-in answering as uv does."""

import subprocess
import sys

from packaging.markers import default_environment
from packaging.requirements import Requirement

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import check_platforms  # noqa: E402

RESOLVED = """absl-py==2.5.1
tensorflow==2.21.0
tflite-micro==0.dev20261023182759
numpy==2.4.6
"""
NO_CP314 = """  × No solution found when resolving dependencies:
  ╰─▶ Because tensorflow==2.21.0 has no wheels with a matching Python ABI tag (e.g., `cp314`) and you
      require tensorflow==2.21.0, we can conclude that your requirements are unsatisfiable.
"""


class FakeUv:
    """Stands in for subprocess.run: fails for the targets named, resolves for the others."""

    def __init__(self, failing=()):
        self.failing = failing
        self.calls = []

    def __call__(self, command, **options):
        self.calls.append((command, options))
        platform_tag = command[command.index("--python-platform") + 1]
        if platform_tag in self.failing:
            return subprocess.CompletedProcess(command, 1, "", NO_CP314)
        return subprocess.CompletedProcess(command, 0, RESOLVED, "")


def test_each_target_is_resolved_for_its_own_platform_and_python_with_binary_wheels_only():
    for target, (platform_tag, _) in check_platforms.TARGETS.items():
        command = check_platforms.compile_command(target, "3.12")
        assert command[command.index("--python-platform") + 1] == platform_tag
        assert command[command.index("--python-version") + 1] == "3.12"
        assert command[command.index("--only-binary") + 1] == ":all:"
        assert command[command.index("-c") + 1] == str(ROOT / "constraints.txt")
        assert command[2:5] == ["uv", "pip", "compile"]


def test_macos_is_resolved_for_the_oldest_macos_checked():
    run = FakeUv()
    check_platforms.resolve("macOS arm64 (12 or later)", "3.11", run=run)
    assert run.calls[0][1]["env"]["MACOSX_DEPLOYMENT_TARGET"] == "12.0"


def test_a_resolution_lists_the_versions_uv_chose():
    ok, found = check_platforms.resolve("Linux x86_64 (glibc 2.28 or later)", "3.11", run=FakeUv())
    assert ok and found["tensorflow"] == "2.21.0" and found["tflite-micro"] == "0.dev20261023182759"


def test_a_failure_is_reported_with_the_package_and_the_tag_it_lacks():
    ok, reason = check_platforms.resolve("Windows x86_64", "3.14", run=FakeUv(failing=["x86_64-pc-windows-msvc"]))
    assert not ok
    assert reason == "tensorflow==2.21.0 has no wheels with a matching Python ABI tag (e.g., cp314)"


def test_a_failure_on_any_target_fails_the_check_linux_aarch64_included():
    run = FakeUv(failing=["aarch64-manylinux_2_28"])
    results = {(t, "3.11"): check_platforms.resolve(t, "3.11", run=run) for t in check_platforms.TARGETS}
    assert check_platforms.exit_code(results) == 1
    assert check_platforms.exit_code({key: value for key, value in results.items()
                                      if key[0] != "Linux aarch64 (glibc 2.28 or later)"}) == 0


def test_the_table_says_which_row_is_this_machine_and_that_the_others_are_resolved_only():
    results = {(t, "3.11"): check_platforms.resolve(t, "3.11", run=FakeUv(failing=["x86_64-pc-windows-msvc"]))
               for t in check_platforms.TARGETS}
    here = check_platforms.this_machine("Linux", "x86_64", (3, 11, 7))
    rows = check_platforms.table(results, ["3.11"], markdown=True, here=here).splitlines()[2:]
    assert rows[0].endswith("| ok: TF 2.21.0, with TFLite-Micro | resolved; this machine (Python 3.11) |")
    assert rows[3].startswith("| Windows x86_64 | fails: tensorflow==2.21.0 has no wheels")
    assert all(row.endswith("| resolved only |") for row in rows[1:])


def test_a_machine_that_is_no_target_has_no_row():
    assert check_platforms.this_machine("Darwin", "x86_64", (3, 12, 0)) is None


def test_without_uv_the_check_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(check_platforms.importlib.util, "find_spec", lambda name: None)
    assert check_platforms.main([]) == 2
    assert 'pip install "uv==0.13.*"' in capsys.readouterr().err


def test_every_requirement_of_the_kit_is_pinned_in_the_lock():
    environment = dict(default_environment(), sys_platform="linux", platform_machine="x86_64", python_version="3.11",
                       python_full_version="3.11.0")

    def applying(name):
        lines = [line.split("#", 1)[0].strip() for line in (ROOT / name).read_text().splitlines()]
        requirements = [Requirement(line) for line in lines if line and not line.startswith("-")]
        return [r for r in requirements if r.marker is None or r.marker.evaluate(environment)]
    locked = {r.name.lower(): r for r in applying("constraints.txt")}
    assert {r.name.lower() for r in applying("requirements.txt")} <= set(locked)
    assert all(str(r.specifier).startswith("==") for r in locked.values())
