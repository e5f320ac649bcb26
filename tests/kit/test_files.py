"""files.py: what a killed run left is recognised and removed by the next, on every platform."""

import os
import subprocess
import sys

import pytest

import files


def _ended_process_id():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_process_that_ended_is_not_running_and_a_live_one_is():
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert files.process_running(live.pid)
    finally:
        live.kill()
        live.wait()
    assert not files.process_running(_ended_process_id())
    assert files.process_running(os.getpid())


def test_leftovers_of_an_ended_process_are_removed_and_a_running_ones_kept(tmp_path):
    dead, alive = _ended_process_id(), os.getppid()
    (tmp_path / f".out.{dead}-a.part").write_bytes(b"x")
    (tmp_path / f".out.{dead}-b").mkdir()
    (tmp_path / f".out.{dead}-b" / "inner.wav").write_bytes(b"x")
    (tmp_path / f".out.{alive}-c.part").write_bytes(b"x")
    (tmp_path / f".out.{os.getpid()}-d.part").write_bytes(b"x")
    (tmp_path / "out").write_bytes(b"mine")
    files.remove_leftovers(tmp_path, ".out.")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out", f".out.{alive}-c.part", f".out.{os.getpid()}-d.part"])


def test_leftovers_with_include_own_also_lists_this_process_entries(tmp_path):
    dead = _ended_process_id()
    for pid in (dead, os.getpid(), os.getppid()):
        (tmp_path / f".dl-{pid}-x.part").write_bytes(b"x")
    assert [p.name for p in files.leftovers(tmp_path, ".dl-")] == [f".dl-{dead}-x.part"]
    assert sorted(p.name for p in files.leftovers(tmp_path, ".dl-", include_own=True)) == sorted(
        [f".dl-{dead}-x.part", f".dl-{os.getpid()}-x.part"])


class _FakeKernel32:
    """kernel32 as Windows answers for four processes: gone, running, exited but still referenced,
    and running as another user (access denied)."""

    ERROR_INVALID_PARAMETER = 87

    def __init__(self):
        self.processes = {101: "gone", 102: "running", 103: "exited", 104: "other user"}
        self.error, self.open_handles = 0, set()

    def OpenProcess(self, access, inherit, pid):
        assert access == files.PROCESS_QUERY_LIMITED_INFORMATION
        state = self.processes.get(pid, "gone")
        if state in ("gone", "other user"):
            self.error = files.ERROR_ACCESS_DENIED if state == "other user" else self.ERROR_INVALID_PARAMETER
            return None
        self.open_handles.add(pid + 5000)
        return pid + 5000

    def GetExitCodeProcess(self, handle, exit_code):
        state = self.processes[handle - 5000]
        exit_code._obj.value = files.STILL_ACTIVE if state == "running" else 0
        return 1

    def CloseHandle(self, handle):
        self.open_handles.remove(handle)
        return 1


@pytest.fixture
def windows(monkeypatch):
    """Runs files.py's Windows branch on any platform, with a fake kernel32; os.kill must not be
    called there (on Windows it terminates the process)."""
    kernel32 = _FakeKernel32()

    def no_kill(pid, signal):
        raise AssertionError("os.kill on Windows terminates the process")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(files, "_windows_kernel32", lambda: (kernel32, lambda: kernel32.error))
    monkeypatch.setattr(os, "kill", no_kill)
    return kernel32


def test_on_windows_a_process_is_asked_of_the_kernel_not_killed(windows):
    assert [files.process_running(pid) for pid in (101, 102, 103, 104)] == [False, True, False, True]
    assert windows.open_handles == set()  # every handle opened was closed


def test_on_windows_leftovers_of_ended_processes_are_removed(windows, tmp_path):
    for pid in (101, 102, 103, 104):
        (tmp_path / f".speech-building-{pid}-x").mkdir()
        (tmp_path / f".speech-building-{pid}-x" / "yes.wav").write_bytes(b"x")
    files.remove_leftovers(tmp_path, ".speech-building-")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".speech-building-102-x", ".speech-building-104-x"]


@pytest.mark.skipif(sys.platform != "win32", reason="the real kernel32 exists only on Windows")
def test_on_real_windows_an_ended_process_is_told_from_a_running_one():
    kernel32, last_error = files._windows_kernel32()
    assert files._windows_process_running(os.getpid(), kernel32, last_error)
    assert not files._windows_process_running(_ended_process_id(), kernel32, last_error)

