"""Downloading and extracting the dataset, against an HTTP server on 127.0.0.1."""

import errno
import hashlib
import http.server
import io
import os
import re
import shutil
import tarfile
import threading
import wave

import numpy as np
import pytest

import data


def _wav_bytes(seconds=1.0):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.zeros(int(16000 * seconds), "<i2").tobytes())
    return buffer.getvalue()


def _archive(extra_members=()):
    """A small .tar.gz in the Speech Commands layout, plus any extra (name, TarInfo-type) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("yes/a69b9b3e_nohash_0.wav", "no/a69b9b3e_nohash_0.wav",
                     "_background_noise_/white_noise.wav"):
            payload = _wav_bytes(2.0 if "noise" in name else 1.0)
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for info in extra_members:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buffer.getvalue()


class _Server:
    """Serves `files` (path -> bytes) on 127.0.0.1. `cut` sends only that many bytes of a file (its
    full length announced); with `ranges` a `Range: bytes=N-` request gets 206 from byte N (416
    past the end), without it the server ignores Range and sends the whole file (200)."""

    def __init__(self, files, cut=None, ranges=False):
        self.files, self.cut, self.ranges, self.requests, self.range_headers = files, cut, ranges, 0, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                server.range_headers.append(self.headers.get("Range"))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(self.headers["Range"][6:-1]) if server.ranges and self.headers.get("Range") else 0
                if start >= len(body) > 0:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:][: server.cut] if server.cut else body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(files, cut=None, ranges=False):
        servers.append(_Server(files, cut, ranges))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(params=["tarfile with data_filter", "tarfile without data_filter"])
def python_tarfile(request, monkeypatch):
    """Runs a test on this Python's tarfile and on one like Python 3.11.2's (Debian 12), which has
    no data_filter, no FilterError and no `filter` argument: the same members must be refused."""
    if request.param == "tarfile without data_filter":
        extractall = tarfile.TarFile.extractall

        def extractall_without_filter(self, path=".", members=None, *, numeric_owner=False, **unknown):
            if unknown:
                raise TypeError(f"extractall() got an unexpected keyword argument {next(iter(unknown))!r}")
            return extractall(self, path, members, numeric_owner=numeric_owner, filter="fully_trusted")

        monkeypatch.delattr(tarfile, "data_filter")
        monkeypatch.delattr(tarfile, "FilterError")
        monkeypatch.setattr(tarfile.TarFile, "extractall", extractall_without_filter)
    return request.param


def _member(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def test_download_extracts_the_archive_into_data_dir(serve, tmp_path, python_tarfile):
    server = serve({"/speech.tar.gz": _archive()})
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert (tmp_path / "speech" / "yes" / "a69b9b3e_nohash_0.wav").is_file()
    assert _leftovers(tmp_path) == ["speech"]  # no temporary file or folder left


def test_data_already_there_is_not_downloaded_again(serve, tmp_path):
    server = serve({"/speech.tar.gz": _archive()})
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert server.requests == 1


def test_an_empty_data_dir_is_filled(serve, tmp_path):
    (tmp_path / "speech").mkdir()
    server = serve({"/speech.tar.gz": _archive()})
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert data.has_dataset(tmp_path / "speech")


@pytest.mark.parametrize("hostile_name, refusal", [
    ("../escape.wav", "'../escape.wav' would be extracted outside the dataset folder"),
    ("yes/../../escape.wav", "would be extracted outside the dataset folder"),
    ("/tmp/absolute-microkws.wav", "'/tmp/absolute-microkws.wav' has an absolute path"),
    ("C:\\Windows\\escape.wav", "has an absolute path"),
])
def test_a_member_outside_data_dir_is_refused_and_nothing_is_left(serve, tmp_path, python_tarfile,
                                                                  hostile_name, refusal):
    hostile = tarfile.TarInfo(hostile_name)
    hostile.size = 4
    server = serve({"/speech.tar.gz": _archive([hostile])})
    with pytest.raises(RuntimeError, match=f"Refused to extract the dataset archive: .*{re.escape(refusal)}"):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("members, refusal", [
    ([_member("yes/link.wav", tarfile.SYMTYPE, "../../../etc/passwd")], "links to '../../../etc/passwd', outside"),
    ([_member("yes/link.wav", tarfile.SYMTYPE, "/etc/passwd")], "links to '/etc/passwd', outside"),
    ([_member("yes/link.wav", tarfile.LNKTYPE, "../outside.wav")], "links to '../outside.wav', outside"),
    ([_member("up", tarfile.SYMTYPE, "."), _member("up/../../escape", tarfile.SYMTYPE, "yes")],
     "'up/../../escape' would be extracted outside"),  # a link inside, then a path through it
    ([_member("yes/device", tarfile.CHRTYPE)], "'yes/device' is a character device"),
    ([_member("yes/disk", tarfile.BLKTYPE)], "'yes/disk' is a block device"),
    ([_member("yes/pipe", tarfile.FIFOTYPE)], "'yes/pipe' is a fifo"),
])
def test_links_out_devices_and_fifos_are_refused(serve, tmp_path, python_tarfile, members, refusal):
    server = serve({"/speech.tar.gz": _archive(members)})
    with pytest.raises(RuntimeError, match=f"Refused to extract the dataset archive: .*{re.escape(refusal)}"):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert _leftovers(tmp_path) == []


def test_a_link_inside_data_dir_is_extracted(serve, tmp_path, python_tarfile):
    server = serve({"/speech.tar.gz": _archive([_member("yes/same.wav", tarfile.SYMTYPE, "a69b9b3e_nohash_0.wav")])})
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert (tmp_path / "speech" / "yes" / "same.wav").read_bytes() == (
        tmp_path / "speech" / "yes" / "a69b9b3e_nohash_0.wav").read_bytes()


def test_extracted_files_get_no_set_uid_or_write_bits_from_the_archive(serve, tmp_path, python_tarfile):
    import stat

    loose = tarfile.TarInfo("yes/loose_nohash_0.wav")
    loose.size, loose.mode = 4, 0o4777
    server = serve({"/speech.tar.gz": _archive([loose])})
    old = os.umask(0o022)
    try:
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "speech" / "yes" / "loose_nohash_0.wav").stat().st_mode) == 0o644


def test_an_interrupted_download_leaves_nothing_that_looks_complete(serve, tmp_path):
    archive = _archive()
    server = serve({"/speech.tar.gz": archive}, cut=len(archive) // 2)
    with pytest.raises(RuntimeError, match="stopped after|truncated"):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert _leftovers(tmp_path) == []


def test_a_truncated_archive_is_reported_and_leaves_nothing(serve, tmp_path):
    archive = _archive()
    server = serve({"/speech.tar.gz": archive[: len(archive) // 2]})  # served whole, but cut short
    with pytest.raises(RuntimeError, match="truncated or corrupt"):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert _leftovers(tmp_path) == []


def test_offline_the_error_names_speech_commands_dir_and_the_synthetic_set(tmp_path):
    closed_port_url = "http://127.0.0.1:9/speech_commands_v0.02.tar.gz"
    with pytest.raises(RuntimeError, match="SPEECH_COMMANDS_DIR.*synthetic"):
        data.maybe_download_and_extract(closed_port_url, tmp_path / "speech")
    assert _leftovers(tmp_path) == []


def test_a_folder_with_other_content_is_not_overwritten(tmp_path):
    (tmp_path / "speech").mkdir()
    (tmp_path / "speech" / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="not empty"):
        data.maybe_download_and_extract("http://127.0.0.1:9/x.tar.gz", tmp_path / "speech")
    assert (tmp_path / "speech" / "notes.txt").read_text() == "mine"


def test_an_archive_with_the_wrong_sha256_is_refused_and_nothing_is_kept(serve, tmp_path):
    server = serve({"/speech.tar.gz": _archive()})
    with pytest.raises(RuntimeError, match="SHA-256 .* expected 0{64}.*deleted"):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech", sha256="0" * 64)
    assert _leftovers(tmp_path) == []


def test_the_published_checksum_is_applied_by_the_archive_name(serve, tmp_path):
    server = serve({"/speech_commands_v0.02.tar.gz": _archive()})  # a stand-in, not the real archive
    with pytest.raises(RuntimeError, match="not the published archive"):
        data.maybe_download_and_extract(server.url + "/speech_commands_v0.02.tar.gz", tmp_path / "speech")
    assert _leftovers(tmp_path) == []


def test_an_archive_with_the_right_sha256_is_extracted(serve, tmp_path):
    archive = _archive()
    server = serve({"/speech.tar.gz": archive})
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                    sha256=hashlib.sha256(archive).hexdigest())
    assert data.has_dataset(tmp_path / "speech")


def test_the_dataset_url_is_https_with_a_published_checksum():
    assert data.DATA_URL.startswith("https://")
    assert data.DATA_URL.rsplit("/", 1)[-1] in data.KNOWN_SHA256


def test_the_extracted_dataset_is_readable_by_the_group_under_a_normal_umask(serve, tmp_path):
    import stat

    server = serve({"/speech.tar.gz": _archive()})
    old = os.umask(0o022)
    try:
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "speech").stat().st_mode) == 0o755


def _dead_pid():
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_what_a_killed_download_left_is_removed_by_the_next_run(serve, tmp_path):
    pid = _dead_pid()
    (tmp_path / f".download-{pid}-abc.tar.gz.part").write_bytes(b"x" * 1000)
    (tmp_path / f".speech-extracting-{pid}-abc").mkdir()
    (tmp_path / f".speech-extracting-{pid}-abc" / "yes").mkdir()
    server = serve({"/speech.tar.gz": _archive()})
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert _leftovers(tmp_path) == ["speech"]


def test_a_download_still_running_in_another_process_is_left_alone(serve, tmp_path):

    parent = os.getppid()  # alive: the process that started the tests
    (tmp_path / f".download-{parent}-abc.tar.gz.part").write_bytes(b"x")
    server = serve({"/speech.tar.gz": _archive()})
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert f".download-{parent}-abc.tar.gz.part" in _leftovers(tmp_path)


# --- Resuming the 2.3 GB download, keeping what is verified, disk space ----------------------------


def _noisy_archive():
    """An archive of about 100 kB that gzip cannot shrink (so any part of it is incomplete)."""
    noise = tarfile.TarInfo("yes/b0a0b0a0_nohash_0.wav")
    samples = np.random.default_rng(0).integers(-2**15, 2**15, size=3 * 16000, dtype=np.int16)
    noise.size = len(samples.tobytes())
    buffer = io.BytesIO(_archive())
    with tarfile.open(fileobj=buffer, mode="r:gz") as tar:
        members = [(info, tar.extractfile(info).read()) for info in tar]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, payload in members + [(noise, samples.tobytes())]:
            tar.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def _partials(directory):
    return [p for p in directory.iterdir() if p.name.endswith(".part")]


def _interrupted_download(serve, tmp_path, archive, ranges=True):
    """A first run whose connection breaks halfway; returns the server (now sending everything)."""
    server = serve({"/speech.tar.gz": archive}, cut=len(archive) // 2, ranges=ranges)
    with pytest.raises(RuntimeError, match="stopped after .* What arrived is kept: run again to continue"):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                        sha256=hashlib.sha256(archive).hexdigest())
    assert [p.stat().st_size for p in _partials(tmp_path)] == [len(archive) // 2]
    server.cut = None
    return server


def test_an_interrupted_download_is_continued_with_a_range_request(serve, tmp_path, capfd):
    archive = _noisy_archive()
    server = _interrupted_download(serve, tmp_path, archive)
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                    sha256=hashlib.sha256(archive).hexdigest())
    assert server.range_headers == [None, f"bytes={len(archive) // 2}-"]
    assert data.has_dataset(tmp_path / "speech") and _leftovers(tmp_path) == ["speech"]
    assert "Downloading" in capfd.readouterr().err  # the progress bar shows


def test_a_download_interrupted_in_a_killed_run_is_continued_by_the_next(serve, tmp_path):
    archive = _noisy_archive()
    dead = _dead_pid()
    (tmp_path / f".speech.tar.gz-download-{dead}-x.part").write_bytes(archive[:1000])
    server = serve({"/speech.tar.gz": archive}, ranges=True)
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                    sha256=hashlib.sha256(archive).hexdigest())
    assert server.range_headers == ["bytes=1000-"]
    assert _leftovers(tmp_path) == ["speech"]


def test_a_partial_download_of_a_running_process_is_neither_taken_nor_removed(serve, tmp_path):
    archive = _noisy_archive()
    running = tmp_path / f".speech.tar.gz-download-{os.getppid()}-x.part"
    running.write_bytes(archive[:1000])
    server = serve({"/speech.tar.gz": archive}, ranges=True)
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                    sha256=hashlib.sha256(archive).hexdigest())
    assert server.range_headers == [None] and running.read_bytes() == archive[:1000]


def test_a_server_that_ignores_range_sends_the_whole_file_anew(serve, tmp_path):
    archive = _noisy_archive()
    server = _interrupted_download(serve, tmp_path, archive, ranges=False)
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                    sha256=hashlib.sha256(archive).hexdigest())
    assert server.range_headers[-1] == f"bytes={len(archive) // 2}-"  # asked, answered with 200
    assert data.has_dataset(tmp_path / "speech") and _leftovers(tmp_path) == ["speech"]


def test_a_partial_file_longer_than_the_archive_is_downloaded_anew_after_416(serve, tmp_path):
    archive = _noisy_archive()
    (tmp_path / f".speech.tar.gz-download-{_dead_pid()}-x.part").write_bytes(b"x" * (len(archive) + 10))
    server = serve({"/speech.tar.gz": archive}, ranges=True)
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                    sha256=hashlib.sha256(archive).hexdigest())
    assert server.range_headers == [f"bytes={len(archive) + 10}-", None]
    assert data.has_dataset(tmp_path / "speech") and _leftovers(tmp_path) == ["speech"]


def test_a_resumed_download_that_does_not_match_the_checksum_is_deleted(serve, tmp_path):
    archive = _noisy_archive()
    (tmp_path / f".speech.tar.gz-download-{_dead_pid()}-x.part").write_bytes(b"x" * 1000)  # not the archive's start
    server = serve({"/speech.tar.gz": archive}, ranges=True)
    with pytest.raises(RuntimeError, match="not the published archive.*deleted"):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                        sha256=hashlib.sha256(archive).hexdigest())
    assert _leftovers(tmp_path) == []
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                    sha256=hashlib.sha256(archive).hexdigest())
    assert data.has_dataset(tmp_path / "speech")


def test_without_a_checksum_a_partial_download_is_not_resumed(serve, tmp_path):
    archive = _noisy_archive()
    (tmp_path / f".speech.tar.gz-download-{_dead_pid()}-x.part").write_bytes(archive[:1000])
    server = serve({"/speech.tar.gz": archive}, ranges=True)
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert server.range_headers == [None]  # nothing could verify a resumed file
    assert _leftovers(tmp_path) == ["speech"]


def test_ctrl_c_during_extraction_keeps_the_verified_archive_for_the_next_run(serve, tmp_path, monkeypatch):
    archive = _noisy_archive()
    server = serve({"/speech.tar.gz": archive}, ranges=True)
    extract = data._extract

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "_extract", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                        sha256=hashlib.sha256(archive).hexdigest())
    assert [p.read_bytes() for p in _partials(tmp_path)] == [archive]
    monkeypatch.setattr(data, "_extract", extract)
    data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                    sha256=hashlib.sha256(archive).hexdigest())
    assert server.requests == 1  # not downloaded again
    assert data.has_dataset(tmp_path / "speech") and _leftovers(tmp_path) == ["speech"]


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_extraction_is_reported_as_such_and_the_archive_kept(serve, tmp_path, monkeypatch):
    archive = _noisy_archive()
    server = serve({"/speech.tar.gz": archive})
    monkeypatch.setattr(tarfile.TarFile, "extractall", _no_space)
    with pytest.raises(RuntimeError, match="The disk is full: extracting the dataset") as refusal:
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                        sha256=hashlib.sha256(archive).hexdigest())
    assert "corrupt" not in str(refusal.value)
    assert [p.read_bytes() for p in _partials(tmp_path)] == [archive]  # no folder half extracted


def test_a_full_disk_during_the_download_is_reported_as_such_and_what_arrived_kept(serve, tmp_path, monkeypatch):
    archive = _noisy_archive()
    server = serve({"/speech.tar.gz": archive})

    class FullDisk(io.FileIO):
        def write(self, chunk):
            _no_space()

    monkeypatch.setattr(data, "open", lambda path, mode: FullDisk(path, mode[0]) if "b" in mode and mode != "rb"
                        else io.open(path, mode), raising=False)
    with pytest.raises(RuntimeError, match="The disk is full: the download") as refusal:
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                        sha256=hashlib.sha256(archive).hexdigest())
    assert "corrupt" not in str(refusal.value) and _leftovers(tmp_path) == []  # nothing had arrived


def _free_bytes(monkeypatch, *free):
    """The disk's free bytes as data.py sees them, one value per question (the last repeats)."""
    answers = list(free)
    monkeypatch.setattr(data.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(
        10**12, 10**12 - answers[0], answers.pop(0) if len(answers) > 1 else answers[0]))


def test_too_little_free_space_is_refused_before_downloading_naming_the_space_needed(serve, tmp_path, monkeypatch):
    archive = _noisy_archive()
    server = serve({"/speech.tar.gz": archive})
    _free_bytes(monkeypatch, 100)
    needed = data.space_needed(len(archive))
    with pytest.raises(RuntimeError,
                       match=rf"downloading and extracting the dataset needs about {needed / 1e9:.1f} GB"):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech")
    assert _leftovers(tmp_path) == []


def test_too_little_free_space_to_extract_keeps_the_verified_archive(serve, tmp_path, monkeypatch):
    archive = _noisy_archive()
    server = serve({"/speech.tar.gz": archive})
    _free_bytes(monkeypatch, 10**12, 100)  # room to download; then the disk filled up
    with pytest.raises(RuntimeError, match="Not enough free disk space .* extracting the dataset needs about"):
        data.maybe_download_and_extract(server.url + "/speech.tar.gz", tmp_path / "speech",
                                        sha256=hashlib.sha256(archive).hexdigest())
    assert [p.read_bytes() for p in _partials(tmp_path)] == [archive]


def test_the_space_needed_is_the_rest_of_the_download_and_the_extracted_set():
    assert data.space_needed(2_300_000_000) == 2_300_000_000 + 3_450_000_000
    assert data.space_needed(2_300_000_000, downloaded_bytes=2_000_000_000) == 300_000_000 + 3_450_000_000


@pytest.mark.parametrize("status, headers, expected", [
    (206, {"Content-Range": "bytes 100-999/1000"}, (100, 1000)),
    (206, {"Content-Range": "bytes 100-999/*"}, (100, None)),
    (206, {"Content-Range": "bytes 0-999/1000"}, (None, None)),  # another range than asked
    (200, {"Content-Length": "1000"}, (0, 1000)),  # Range ignored: the whole file
    (200, {}, (0, None)),
])
def test_resumed_range_reads_where_the_response_starts(status, headers, expected):
    assert data.resumed_range(status, headers, 100) == expected
