"""Speech Commands data for keyword spotting: download, split, augment and compute features.

The layout is the one of the Speech Commands dataset (Warden, 2018):

    <data_dir>/<word>/<speaker>_nohash_<n>.wav     one-second clips, 16 kHz mono 16-bit
    <data_dir>/_background_noise_/*.wav            longer noise recordings

`AudioProcessor` reads such a folder (downloading the real dataset if the folder is empty),
splits it into training / validation / testing by a hash of the speaker, adds the `_silence_` and
`_unknown_` classes and serves `(features, label)` examples as a `tf.data.Dataset`.

With `micro=True` the features are exactly what TFLite-Micro's micro frontend computes on the
microcontroller, so a model trained here sees on the board what it saw in training.

Offline, `python synthetic.py DIR` writes a synthetic dataset of the same layout (see synthetic.py).
"""

import concurrent.futures
import copy
import dataclasses
import enum
import errno
import glob
import gzip
import hashlib
import http.client
import json
import math
import os
import random
import re
import shutil
import struct
import tarfile
import urllib.error
import urllib.request
import wave
import zlib
from pathlib import Path, PureWindowsPath

import numpy as np
import tensorflow as tf
from tensorflow.lite.experimental.microfrontend.python.ops import audio_microfrontend_op

# The dataset's conventions, used here under the names the lab's notebook knows (data.which_set, ...).
from files import atomic_output, default_mode, leftovers, publish, remove_leftovers, work_in_progress
from speech_commands import (  # noqa: F401
    BACKGROUND_NOISE_DIR_NAME,
    SILENCE_INDEX,
    SILENCE_LABEL,
    UNKNOWN_WORD_INDEX,
    UNKNOWN_WORD_LABEL,
    has_dataset,
    prepare_words_list,
    to_int16,
    which_set,
)

RANDOM_SEED = 59185
AUGMENT_BATCH = 64  # clips augmented together in one vectorized step

# The training feature store (see AudioProcessor.feature_store): augmented variants kept per clip,
# and the memory the data of a task may take in all (the store, the validation and test features and
# the working buffers; see memory_plan). A variant of the lab's yes/no task takes 37.5 MB on the real
# dataset (about 9,570 training examples x 3,920 bytes) and 7.5 MB on the synthetic one: 26 variants
# fit the limit there, all 32 here. With all 35 words of the real dataset (about 87,000 examples,
# 341 MB a variant) 2 variants fit. Fewer variants train faster but see fewer distinct
# augmentations: see README, "Training speed".
STORED_VARIANTS = 32
STORE_LIMIT_BYTES = 2**30
READ_CHUNK = 1024  # clips read, augmented and turned into features together: bounds the buffers
PROGRESS_MIN_CLIPS = 20_000  # a progress bar for work on at least this many clips (a wait worth showing)
MEMORY_HEADROOM_BYTES = 2**29  # what training needs besides the data (model, optimizer, tf.data)
CACHE_DIR_NAME = ".microkws_cache"  # in the dataset's folder: removed with the dataset
CACHE_VERSION = 1  # part of every cache key: raise it when what the cache holds changes meaning

# The firmware (TFLite-Micro's micro_speech feature provider) turns the frontend's 16-bit output v
# into int8 with integer arithmetic: (v * 256 + 333) // 666 - 128. One float feature is v / 25.6.
FRONTEND_OUTPUT_SCALE = 10.0 / 256.0  # = 1 / 25.6
INT8_FEATURE_SCALE = 666.0 / (25.6 * 256.0)  # ~0.10162 float units per int8 step
INT8_FEATURE_ZERO_POINT = -128


# --- Reading audio ------------------------------------------------------------------------------


def read_wav(path, sample_rate):
    """Reads a 16-bit PCM mono wav at `sample_rate` into an int16 array.

    Raises ValueError naming the file when it is anything else.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as error:
        raise ValueError(f"{path}: not a readable PCM wav file ({error}).") from error
    if (channels, width, rate) != (1, 2, sample_rate):
        raise ValueError(
            f"{path}: expected 16-bit PCM mono at {sample_rate} Hz, found {8 * width}-bit, "
            f"{channels} channel(s) at {rate} Hz. Convert it, e.g. "
            f"`sox in.wav -r {sample_rate} -c 1 -b 16 out.wav`."
        )
    return np.frombuffer(frames, dtype="<i2").astype(np.int16)


def load_recording(path, sample_rate):
    """Reads a wav as a recorder writes it as int16 mono at sample_rate.

    For a student's own recordings: 8/16/24/32-bit PCM, 32/64-bit float, WAVE_FORMAT_EXTENSIBLE,
    any rate, mono or stereo (scipy.io.wavfile reads them). Channels are averaged and the rate is
    converted with a polyphase filter (scipy.signal.resample_poly), which removes what lies above
    the new Nyquist frequency instead of folding it back. Raises ValueError naming the file and
    what to do when it cannot be read.
    """
    import warnings

    import scipy.io.wavfile
    import scipy.signal

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.io.wavfile.WavFileWarning)  # extra chunks (LIST, ...)
            rate, samples = scipy.io.wavfile.read(str(path))
    except (ValueError, OSError, EOFError, struct.error) as error:
        raise ValueError(
            f"{path}: not a readable wav file ({error}). Save or convert it as a wav, e.g. "
            f"`sox in.m4a -b 16 out.wav`."
        ) from error
    if rate <= 0:
        raise ValueError(f"{path}: its header gives a sample rate of {rate} Hz: the file is damaged. "
                         "Record or export it again.")
    if samples.size == 0:
        raise ValueError(f"{path}: holds no audio samples.")
    if samples.dtype == np.uint8:
        samples = (samples.astype(np.float64) - 128) / 128
    elif samples.dtype.kind == "i":
        samples = samples.astype(np.float64) / 2 ** (8 * samples.dtype.itemsize - 1)  # 24-bit: left-justified int32
    else:
        samples = np.clip(samples.astype(np.float64), -1.0, 1.0)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if rate != sample_rate:
        divisor = math.gcd(rate, sample_rate)
        samples = scipy.signal.resample_poly(samples, sample_rate // divisor, rate // divisor)
    return to_int16(samples)


def loudest_window(samples, length):
    """The `length` consecutive samples with the most energy (the whole clip if shorter)."""
    samples = np.asarray(samples)
    if len(samples) <= length:
        return samples
    energy = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    start = int(np.argmax(energy[length:] - energy[:-length]))
    return samples[start : start + length]


def fit_to_length(samples, desired_samples):
    """Zero-pads a short clip at the end or cuts a long one to `desired_samples`."""
    samples = np.asarray(samples)[:desired_samples]
    return np.pad(samples, (0, desired_samples - len(samples)))


# --- Features -----------------------------------------------------------------------------------


def frontend_output(audio, model_settings):
    """TensorFlow graph: int16 audio -> the micro frontend's 16-bit output, as float32 integers.

    These are the exact values the firmware's frontend produces, [spectrogram_length,
    dct_coefficient_count]; they fit a uint16, which is how the training feature store keeps them.
    """
    rate = model_settings["sample_rate"]
    return audio_microfrontend_op.audio_microfrontend(
        tf.cast(audio, tf.int16),
        sample_rate=rate,
        window_size=model_settings["window_size_samples"] * 1000 // rate,
        window_step=model_settings["window_stride_samples"] * 1000 // rate,
        num_channels=model_settings["dct_coefficient_count"],
        out_scale=1,
        out_type=tf.float32,
    )


def features_from_audio(audio, model_settings, micro=True):
    """TensorFlow graph: int16 audio (desired_samples,) -> flat float32 features.

    micro=True: TFLite-Micro's micro frontend on the samples, scaled by 10/256 (values in about
    0..26): exactly what the firmware computes from the same microphone samples.
    micro=False: MFCCs with tf.signal: magnitude STFT over the same windows (Hann, FFT of the next
    power of two), 40 mel bands from 20 Hz to 4 kHz, log, DCT, first dct_coefficient_count.
    """
    audio = tf.reshape(audio, [model_settings["desired_samples"]])  # static shape for the ops below
    if micro:
        features = frontend_output(audio, model_settings) * FRONTEND_OUTPUT_SCALE
    else:
        stft = tf.signal.stft(
            tf.cast(audio, tf.float32) / 32768.0,
            frame_length=model_settings["window_size_samples"],
            frame_step=model_settings["window_stride_samples"],
        )
        spectrogram = tf.abs(stft)
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=40,
            num_spectrogram_bins=spectrogram.shape[-1],
            sample_rate=model_settings["sample_rate"],
            lower_edge_hertz=20.0,
            upper_edge_hertz=4000.0,
        )
        log_mel = tf.math.log(tf.tensordot(spectrogram, mel_matrix, 1) + 1e-6)
        mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)
        features = mfccs[:, : model_settings["dct_coefficient_count"]]
    return tf.reshape(features, [model_settings["fingerprint_size"]])


def mask_features(features, seed, model_settings, time_mask_frames, frequency_mask_channels):
    """TensorFlow graph: SpecAugment-style masks (Park et al., 2019) on a batch of flat features.

    Each example gets one band of up to time_mask_frames consecutive frames and one band of up to
    frequency_mask_channels consecutive channels, each of a random width (0 included) at a random
    place, set to the example's mean value, so that a word cannot be learned from one cue alone.
    0 turns a band off. The draw is stateless: the same seed ([2] int64) masks the same way.
    """
    batch = tf.shape(features)[0]
    frames, channels = model_settings["spectrogram_length"], model_settings["dct_coefficient_count"]
    image = tf.reshape(features, [batch, frames, channels])
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)

    def band(widest, size, width_seed, start_seed):
        """[batch, size] booleans: True inside each example's band."""
        width = tf.floor(tf.random.stateless_uniform([batch], width_seed) * (widest + 1))
        start = tf.floor(tf.random.stateless_uniform([batch], start_seed) * (size - width + 1))
        positions = tf.range(size, dtype=tf.float32)[None, :]
        return (positions >= start[:, None]) & (positions < (start + width)[:, None])

    in_time_band = band(time_mask_frames, frames, seeds[0], seeds[1])
    in_frequency_band = band(frequency_mask_channels, channels, seeds[2], seeds[3])
    masked = in_time_band[:, :, None] | in_frequency_band[:, None, :]
    mean = tf.reduce_mean(image, axis=[1, 2], keepdims=True)
    return tf.reshape(tf.where(masked, mean, image), [batch, frames * channels])


def compute_features(samples, model_settings, micro=True):
    """Features of one clip, through the same code as `AudioProcessor.get_data`.

    Args:
        samples: 1-D int16 samples, or float samples in [-1, 1], at the model's sample rate.
            Shorter clips are zero-padded at the end, longer ones cut.
        model_settings: From models.prepare_model_settings.
        micro: Micro frontend features (True) or MFCCs (False).

    Returns:
        float32 array [spectrogram_length, dct_coefficient_count].
    """
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"compute_features takes 1-D samples, got shape {samples.shape}.")
    if samples.dtype != np.int16:
        samples = to_int16(samples)
    samples = fit_to_length(samples, model_settings["desired_samples"])
    features = features_from_audio(tf.constant(samples), model_settings, micro)
    return features.numpy().reshape(
        model_settings["spectrogram_length"], model_settings["dct_coefficient_count"]
    )


def stream_features(samples, model_settings):
    """Micro frontend features of a whole recording of any length, the frontend's state carried.

    This is what the firmware computes from a continuous microphone stream: one frame of
    dct_coefficient_count features every window stride, its noise estimate and gain control
    carried from frame to frame (they are not restarted for every second, as for a clip).

    Returns:
        float32 [frames, dct_coefficient_count]; frame t covers samples
        [t * window_stride_samples, t * window_stride_samples + window_size_samples).
    """
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"stream_features takes 1-D samples, got shape {samples.shape}.")
    if samples.dtype != np.int16:
        samples = to_int16(samples)
    if len(samples) < model_settings["desired_samples"]:
        samples = fit_to_length(samples, model_settings["desired_samples"])
    output = frontend_output(tf.constant(samples), model_settings) * FRONTEND_OUTPUT_SCALE
    return output.numpy().reshape(-1, model_settings["dct_coefficient_count"])


def quantize_features(features):
    """The int8 values the firmware feeds the model, from float micro-frontend features.

    Reproduces TFLite-Micro's micro_speech feature provider exactly: the frontend's 16-bit output
    v = feature * 25.6 becomes (v * 256 + 333) // 666 - 128, clamped to [-128, 127].
    """
    frontend_output = np.round(np.asarray(features, dtype=np.float64) * 25.6).astype(np.int64)
    value = (frontend_output * 256 + 333) // 666 - 128
    return np.clip(value, -128, 127).astype(np.int8)


# --- Download -----------------------------------------------------------------------------------


# The published SHA-256 of the dataset archives, by file name (as dataset loaders publish them).
# An archive with one of these names is checked before it is extracted.
KNOWN_SHA256 = {
    "speech_commands_v0.02.tar.gz": "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
}
DATA_URL = "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz"


def maybe_download_and_extract(data_url, data_dir, sha256=None):
    """Downloads and extracts the dataset archive into data_dir unless data is already there.

    The archive is downloaded into a partial file beside data_dir, its SHA-256 compared with
    `sha256` (default: the published one for its file name, KNOWN_SHA256), and extracted into a
    temporary folder that is renamed to data_dir only when extraction finished, so an interrupted
    or refused run never leaves a data_dir that looks complete. Members that would land outside
    the folder are refused. With a checksum to verify it, an interrupted download is continued by
    the next run (HTTP Range), and the verified archive is kept until extraction has succeeded;
    free space is checked first. What a killed run left otherwise is removed by the next.
    """
    data_dir = Path(data_dir)
    if has_dataset(data_dir):
        return
    if data_dir.exists() and any(data_dir.iterdir()):
        raise RuntimeError(
            f"{data_dir} is not empty but holds no <word>/*.wav clips. Point data_dir (or the "
            "SPEECH_COMMANDS_DIR environment variable) at a Speech Commands folder, or at an "
            "empty folder to download into."
        )
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(data_dir.parent, OLD_DOWNLOAD_PREFIX)
    remove_leftovers(data_dir.parent, f".{data_dir.name}-extracting-")
    expected = sha256 or KNOWN_SHA256.get(_archive_name(data_url))
    archive = _download(data_url, data_dir.parent, expected)
    try:
        extracted = math.ceil(EXTRACTED_PER_ARCHIVE_BYTE * archive.stat().st_size)
        check_free_space(data_dir.parent, extracted, "extracting the dataset")
        _extract(archive, data_dir)
    except BaseException as error:
        if not expected or isinstance(error, CorruptArchive):
            archive.unlink(missing_ok=True)  # a verified archive is kept for the next run
        raise
    archive.unlink()


OLD_DOWNLOAD_PREFIX = ".download-"  # partial downloads of earlier kits, which did not resume
# The extracted dataset takes about 1.5 times its archive on disk (2.3 GB: 105,829 clips of up to
# 32 kB, about 3.4 GB), as gzip shrinks recorded speech to about two thirds.
EXTRACTED_PER_ARCHIVE_BYTE = 1.5


class CorruptArchive(RuntimeError):
    """The archive cannot be read: it has to be downloaded anew."""


class IncompleteDownload(Exception):
    """The connection ended before the whole file had arrived."""


def _archive_name(data_url):
    return data_url.rstrip("/").rsplit("/", 1)[-1]


def space_needed(archive_bytes, downloaded_bytes=0):
    """Bytes of free disk the rest of the download and the extraction need (an estimate)."""
    return archive_bytes - downloaded_bytes + math.ceil(EXTRACTED_PER_ARCHIVE_BYTE * archive_bytes)


def check_free_space(directory, needed, task):
    """Raises a RuntimeError naming the space `task` needs when `directory`'s disk has less free."""
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise RuntimeError(
            f"Not enough free disk space in {directory}: {task} needs about {needed / 1e9:.1f} GB, "
            f"{free / 1e9:.1f} GB are free. Free some space, or set SPEECH_COMMANDS_DIR to a folder "
            "on a disk with more room, or use the synthetic dataset (FLAGS.dataset = \"synthetic\")."
        )


def _disk_full(error, directory, task):
    return RuntimeError(f"The disk is full: {task} in {directory} stopped ({error}). Free some space and run again.")


def resumed_range(status, headers, offset):
    """Where a response to `Range: bytes=<offset>-` starts and the file's whole size (None if
    unknown): (offset, size) when the server continues at offset (206), (0, size) when it sends
    the whole file (200: it ignores Range); (None, None) when it answers with another range."""
    if status == 206:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", headers.get("Content-Range", ""))
        if not match or int(match[1]) != offset:
            return None, None
        return offset, int(match[2]) if match[2] != "*" else None
    return 0, int(headers.get("Content-Length") or 0) or None


def _download(data_url, directory, expected_sha256=None):
    """Downloads data_url into a partial file in directory (with a progress bar); returns it.

    With expected_sha256 the download resumes what an earlier run left (the partial file
    .<archive>-download-<pid>-....part, kept when a download is interrupted) and returns it without
    a request if it is complete already; a download with another digest is removed and refused.
    Without, nothing partial is kept.
    """
    resumable = bool(expected_sha256)
    part = _resume_or_start(directory, f".{_archive_name(data_url)}-download-", resumable)
    try:
        digest = _sha256_of_file(part)  # what an earlier run downloaded
        if not (resumable and part.stat().st_size and digest.hexdigest() == expected_sha256.lower()):
            digest = _fetch_rest(data_url, part, digest)
        if expected_sha256 and digest.hexdigest() != expected_sha256.lower():
            part.unlink()
            raise RuntimeError(
                f"The download of {data_url} is not the published archive: its SHA-256 is "
                f"{digest.hexdigest()}, expected {expected_sha256}. It was corrupted or altered on the "
                "way and was deleted; nothing was extracted. Run again, or copy the dataset from a "
                "trusted place and set SPEECH_COMMANDS_DIR."
            )
    except BaseException as error:
        keep = resumable and part.exists() and part.stat().st_size > 0
        if not keep:
            part.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise _disk_full(error, directory, "the download") from error
        if isinstance(error, (urllib.error.URLError, http.client.HTTPException, OSError, IncompleteDownload)):
            raise RuntimeError(
                f"Could not download {data_url} ({error}). "
                + ("What arrived is kept: run again to continue the download. " if keep else "")
                + "Without network access, set SPEECH_COMMANDS_DIR to a folder that holds the Speech "
                "Commands dataset, or use the synthetic dataset (FLAGS.dataset = \"synthetic\" in the "
                "notebook, or `python synthetic.py DIR`): it needs no network, but a model trained on it "
                "does much worse on real voices."
            ) from error
        raise
    return part


def _resume_or_start(directory, prefix, resumable):
    """A new partial file of this process for the download; when resumable it holds the largest
    partial download an ended run (or an interrupted call in this process) left. Other partials
    of this archive whose writer is gone are removed; a running download's are left alone."""
    def size(path):
        try:
            return path.stat().st_size
        except OSError:
            return -1

    earlier = sorted(leftovers(directory, prefix, include_own=True), key=size, reverse=True)
    handle, part = work_in_progress(directory, prefix, suffix=".part")
    os.close(handle)
    for old in earlier:
        try:
            if resumable:
                os.replace(old, part)  # atomic: of two runs at once, one takes it
                resumable = False
            else:
                old.unlink()
        except OSError:
            pass  # taken or removed by another run meanwhile
    return part


def _sha256_of_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest


def _fetch_rest(data_url, part, digest):
    """Appends the rest of data_url to the partial file `part` (with a Range request when it holds
    something), or writes it anew when the server sends the whole file; returns the digest of all.

    Raises IncompleteDownload when the connection ends before the file's announced size.
    """
    for attempt in range(2):  # a second time from byte 0 when the server refuses the range
        offset = part.stat().st_size
        request = urllib.request.Request(data_url, headers={"Range": f"bytes={offset}-"} if offset else {})
        try:
            response = urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as error:
            if error.code != 416 or not offset:  # 416: nothing from offset on (what is kept is not this file)
                raise
            error.close()
            part.write_bytes(b"")
            continue
        with response:
            start, total = resumed_range(response.status, response.headers, offset)
            if start is None:
                part.write_bytes(b"")
                continue
            if start == 0:
                digest = hashlib.sha256()
            if total:
                check_free_space(part.parent, space_needed(total, start), "downloading and extracting the dataset")
            _receive(response, part, start, total, digest)
        size = part.stat().st_size
        if total and size != total:
            raise IncompleteDownload(f"it stopped after {size} of {total} bytes")
        return digest
    raise RuntimeError(f"The server of {data_url} refused to send it from the start. Try again later.")


def _receive(response, part, start, total, digest):
    """Writes the response's body into part from byte `start` on, with a progress bar."""
    from tqdm.auto import tqdm

    with open(part, "ab" if start else "wb") as out, tqdm(
        total=total, initial=start, unit="B", unit_scale=True, desc="Downloading"
    ) as bar:
        while chunk := response.read(1 << 20):
            out.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))


class RefusedMember(Exception):
    """A member of the dataset archive the kit does not extract."""


SPECIAL_MEMBER_KINDS = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                        tarfile.FIFOTYPE: "fifo"}


def checked_member(member, destination):
    """The kit's rule for one member of the dataset archive, on every Python.

    A file, folder or link is extracted only if it lands inside `destination` and a link only if
    it points inside it; absolute names, devices and fifos are refused (RefusedMember). The member
    returned gets the permissions new files get under the umask and the extracting user as owner,
    never a set-uid bit. Where tarfile has its "data" filter (Python 3.10.12+, 3.11.4+), it runs on
    top of this; older patch levels, which lack it, are just as safe.
    """
    name = member.name
    if os.path.isabs(name) or PureWindowsPath(name).anchor:
        raise RefusedMember(f"{name!r} has an absolute path")
    destination = os.path.realpath(destination)
    path = os.path.join(destination, name)
    if not _inside(os.path.realpath(path), destination):
        raise RefusedMember(f"{name!r} would be extracted outside the dataset folder")
    if member.issym() or member.islnk():
        base = os.path.dirname(path) if member.issym() else destination  # hard links name archive paths
        if os.path.isabs(member.linkname) or not _inside(os.path.realpath(os.path.join(base, member.linkname)),
                                                         destination):
            raise RefusedMember(f"{name!r} links to {member.linkname!r}, outside the dataset folder")
    elif not (member.isfile() or member.isdir()):
        kind = SPECIAL_MEMBER_KINDS.get(member.type, f"member of type {member.type!r}")
        raise RefusedMember(f"{name!r} is a {kind}: only files, folders and links are extracted")
    member = copy.copy(member)
    member.mode = default_mode(folder=member.isdir())
    if hasattr(os, "getuid"):
        member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
    return member


def _inside(path, folder):
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # on another drive (Windows)
        return False


def _extract(archive, data_dir):
    """Extracts a .tar.gz into a temporary sibling folder, then renames it to data_dir."""
    data_dir = Path(data_dir)
    partial = work_in_progress(data_dir.parent, f".{data_dir.name}-extracting-", folder=True)
    refusals = (RefusedMember, getattr(tarfile, "FilterError", RefusedMember))  # FilterError: 3.11.4+
    try:
        from tqdm.auto import tqdm

        with tarfile.open(archive, "r:gz") as tar:
            members = (checked_member(member, partial) for member in tqdm(tar, desc="Extracting", unit=" files"))
            if hasattr(tarfile, "data_filter"):
                tar.extractall(partial, members=members, filter=tarfile.data_filter)
            else:
                tar.extractall(partial, members=members)
        if not has_dataset(partial):
            raise RuntimeError("The archive holds no <word>/*.wav clips.")
        if data_dir.exists():
            data_dir.rmdir()  # empty, checked by the caller
        publish(partial, data_dir, folder=True)
    except refusals as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"Refused to extract the dataset archive: {error}") from error
    except (tarfile.ReadError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise CorruptArchive(
            f"The dataset archive is truncated or corrupt ({error}). Run again to download it anew."
        ) from error
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        if error.errno == errno.ENOSPC:
            raise _disk_full(error, data_dir.parent, "extracting the dataset") from error
        raise RuntimeError(f"Could not extract the dataset archive into {data_dir.parent} ({error}).") from error
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


# --- Memory: what the data of a task takes, and whether it fits -------------------------------


def memory_plan(set_sizes, model_settings, stored_variants, store_itemsize, time_shift_samples):
    """Bytes the data of a task keeps in memory at once, by part (an estimate from the sizes).

    `set_sizes` maps "training", "validation", "testing" to their example counts. With a store,
    training keeps `stored_variants` rows of features per example; without one
    (stored_variants=0) it keeps every training clip as padded int16 audio, in NumPy and in
    TensorFlow. Validation and test features are float32.
    The working buffers are a chunk of READ_CHUNK padded clips, in NumPy and in TensorFlow.
    """
    fingerprint_size = model_settings["fingerprint_size"]
    padded_clip_bytes = (model_settings["desired_samples"] + 2 * int(time_shift_samples)) * 2
    training = set_sizes["training"]
    if stored_variants:
        training_part = ("training feature store", stored_variants * training * fingerprint_size * store_itemsize)
    else:
        training_part = ("training audio", 2 * training * padded_clip_bytes)
    return dict([
        training_part,
        ("validation and test features", (set_sizes["validation"] + set_sizes["testing"]) * fingerprint_size * 4),
        ("working buffers", 2 * min(READ_CHUNK, max(set_sizes.values())) * padded_clip_bytes),
    ])


def variants_within(stored_variants, limit_bytes, variant_bytes, other_bytes):
    """As many of the asked store variants as fit `limit_bytes` beside `other_bytes`, at least one."""
    if not stored_variants:
        return 0
    return int(max(1, min(stored_variants, (limit_bytes - other_bytes) // variant_bytes)))


def memory_message(plan, available_bytes, variant_bytes=None, stored_variants=0):
    """None when the data of `plan` fits `available_bytes` with MEMORY_HEADROOM_BYTES to spare;
    otherwise what it needs, what the machine has, and what to change."""
    needed = sum(plan.values()) + MEMORY_HEADROOM_BYTES
    if needed <= available_bytes:
        return None
    parts = ", ".join(f"{name} {size / 2**30:.2f} GiB" for name, size in plan.items())
    message = (
        f"This task needs about {needed / 2**30:.2f} GiB of memory ({parts}, and "
        f"{MEMORY_HEADROOM_BYTES / 2**30:.2f} GiB for training itself), but this machine has "
        f"{available_bytes / 2**30:.2f} GiB available now. "
    )
    if stored_variants and variant_bytes:
        spare = available_bytes - needed + stored_variants * variant_bytes
        fitting = spare // variant_bytes
        if fitting >= 1:
            return message + (
                f"Pass stored_variants={int(fitting)} to data.AudioProcessor (each variant takes "
                f"{variant_bytes / 2**20:.0f} MB), train on fewer keywords, or close other programs."
            )
    return message + (
        "Train on fewer keywords, close other programs, or use a machine with more memory "
        "(a Colab runtime has about 12 GB)."
    )


def available_memory():
    """Bytes of memory the system can give now without swapping (None where psutil is missing)."""
    try:
        import psutil
    except ImportError:
        return None
    return psutil.virtual_memory().available


# --- The cache on disk: evaluation features and the training store, reused by the next run ------


def dataset_files(data_dir):
    """Every clip and noise recording of a dataset as (relative path, size, modification time):
    what a cache made from it depends on."""
    data_dir = Path(data_dir)
    files = []
    for path in sorted(glob.glob(os.path.join(glob.escape(str(data_dir)), "*", "*.wav"))):
        stat = os.stat(path)
        files.append((os.path.relpath(path, data_dir), stat.st_size, stat.st_mtime_ns))
    return files


def cache_key(*parts):
    """A short digest of everything a cached result depends on (JSON-serializable parts)."""
    text = json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def write_array(path, array):
    """Saves one array as .npy atomically: a reader finds the complete file or none."""
    with atomic_output(path) as file:
        np.save(file, array)


def read_array(path, shape, mmap_mode=None):
    """The array saved at `path` if it is there, complete and of `shape`; None otherwise."""
    try:
        array = np.load(path, mmap_mode=mmap_mode)
    except (OSError, ValueError, EOFError):
        return None
    return array if array.shape == tuple(shape) else None


# --- The data pipeline --------------------------------------------------------------------------


@dataclasses.dataclass
class FeatureStore:
    """Augmented training features computed once: `variants` draws of every training example.

    Row `variant * len(labels) + index` holds example `index` of the training split (in the order
    of `AudioProcessor.data_index`) augmented by `choices` (shift offset, noise start, background
    volume) of that row. `features` holds the micro frontend's 16-bit output (uint16; a served
    feature is that times FRONTEND_OUTPUT_SCALE, as in features_from_audio) or float32 MFCCs, as
    one NumPy array (or a memory-mapped .npy file) that training gathers its batches from: there is
    no second copy of it in TensorFlow.
    """

    settings: tuple  # (background_frequency, background_volume_range, time_shift_samples)
    variants: int
    features: np.ndarray
    labels: np.ndarray
    choices: dict

    @property
    def nbytes(self):
        return self.features.nbytes


class AudioProcessor:
    """Splits a Speech Commands folder and serves (features, label) examples.

    Audio is read READ_CHUNK clips at a time, as int16, and features are computed in the tf.data
    graph in parallel. Validation and testing features do not change and are computed once.

    Training examples come from a feature store by default: `stored_variants` augmented draws of
    every training clip, computed once when training asks for them (how long it takes, measured:
    docs/training_speed.md and docs/full_size.md) and served in a new random order,
    each example as one of its variants drawn at random, at every pass. The micro frontend then costs nothing per
    step, which makes training several times faster on a CPU. The number of variants shrinks so
    that the data of the task (store, validation and test features, buffers: see memory_plan)
    fits `store_limit_bytes` (at least one variant). A task that would not fit the memory the
    machine has is refused before any work, with what to change. `stored_variants=0` switches
    back to recomputing every example's augmentation and features at every step, as TensorFlow's
    speech_commands example does.

    With `cache=True` the validation and test features and the store are kept on disk in
    `<data_dir>/.microkws_cache/` (see cache_folder), so that the next run, after a restart of the
    kernel, reads them instead of computing them; a changed dataset or setting gets a new entry.
    """

    class Modes(enum.Enum):
        TRAINING = "training"
        VALIDATION = "validation"
        TESTING = "testing"

    def __init__(
        self,
        data_url,
        data_dir,
        silence_percentage,
        unknown_percentage,
        wanted_words,
        validation_percentage,
        testing_percentage,
        model_settings,
        micro=True,
        stored_variants=STORED_VARIANTS,
        store_limit_bytes=STORE_LIMIT_BYTES,
        cache=True,
    ):
        self.data_dir = Path(data_dir)
        self.cache = cache
        self.model_settings = model_settings
        self.micro = micro
        self.wanted_words = list(wanted_words)
        self.words_list = prepare_words_list(wanted_words)
        # What the examples are drawn from, as a run records it (see provenance.py).
        self.silence_percentage, self.unknown_percentage = silence_percentage, unknown_percentage
        self.validation_percentage, self.testing_percentage = validation_percentage, testing_percentage
        if data_url:
            maybe_download_and_extract(data_url, data_dir)
        elif not has_dataset(data_dir):
            raise RuntimeError(f"{data_dir} holds no <word>/*.wav clips and no data_url was given.")
        self.prepare_data_index(
            silence_percentage, unknown_percentage, wanted_words, validation_percentage, testing_percentage
        )
        self._index_settings = [silence_percentage, unknown_percentage, list(wanted_words),
                                validation_percentage, testing_percentage, RANDOM_SEED]
        self._cache_folder = None  # <data_dir>/.microkws_cache/<task key>/, found on first use
        self.prepare_background_data()
        self._silence = {}  # mode -> {row: (noise clip, start, volume)} (validation, testing)
        self._features = {}  # mode -> float32 [set_size, fingerprint_size] (validation, testing)
        self._store = None  # the training FeatureStore, made on the first get_data(TRAINING)
        beside_store = sum(self.memory_plan(1).values()) - self._variant_bytes
        self.stored_variants = variants_within(stored_variants, store_limit_bytes, self._variant_bytes, beside_store)
        self.check_memory()

    @property
    def _variant_bytes(self):
        """Bytes of one variant of the training store."""
        n_bytes = self.set_size(self.Modes.TRAINING) * self.model_settings["fingerprint_size"]
        return n_bytes * np.dtype(self._store_dtype).itemsize

    def memory_plan(self, stored_variants=None, time_shift_samples=1600):
        """data.memory_plan for this task's sizes (by default with its own stored_variants)."""
        variants = self.stored_variants if stored_variants is None else stored_variants
        sizes = {mode.value: self.set_size(mode) for mode in self.Modes}
        itemsize = np.dtype(self._store_dtype).itemsize
        return memory_plan(sizes, self.model_settings, variants, itemsize, time_shift_samples)

    def check_memory(self):
        """Raises MemoryError, saying what to change, when the task's data would not fit the memory
        this machine has available now."""
        available = available_memory()
        if available is None:
            return
        message = memory_message(self.memory_plan(), available, self._variant_bytes, self.stored_variants)
        if message:
            raise MemoryError(message)

    def prepare_data_index(
        self, silence_percentage, unknown_percentage, wanted_words, validation_percentage, testing_percentage
    ):
        """Sorts every clip into a split and adds silence and unknown examples to each split.

        Silence and unknown each make up the given percentage of the wanted-word count of a
        split; unknown examples are drawn from all other words.
        """
        rng = random.Random(RANDOM_SEED)
        wanted_words_index = {word: self.words_list.index(word) for word in wanted_words}
        self.data_index = {mode: [] for mode in self.Modes}
        unknown_index = {mode: [] for mode in self.Modes}
        all_words = {}  # word -> number of clips
        for wav_path in sorted(glob.glob(os.path.join(glob.escape(str(self.data_dir)), "*", "*.wav"))):
            word = os.path.basename(os.path.dirname(wav_path)).lower()
            if word.startswith("_"):
                continue
            all_words[word] = all_words.get(word, 0) + 1
            mode = self.Modes(which_set(wav_path, validation_percentage, testing_percentage))
            if word in wanted_words_index:
                self.data_index[mode].append({"label": word, "file": wav_path})
            else:
                unknown_index[mode].append({"label": word, "file": wav_path})
        missing = [word for word in wanted_words if word not in all_words]
        if missing:
            present = sorted(all_words, key=lambda word: (-all_words[word], word))
            shown = ", ".join(present[:40]) + (f" ... ({len(present) - 40} more)" if len(present) > 40 else "")
            raise ValueError(
                f"Wanted word(s) {missing} not found in {self.data_dir}. Words present, most clips "
                f"first: {shown or 'none'}."
            )
        for mode in self.Modes:
            if not self.data_index[mode]:
                raise ValueError(
                    f"The {mode.value} split of {self.data_dir} has no clips of {wanted_words}: the "
                    "dataset has too few speakers for a hash split. Use more speakers (files named "
                    "<speaker>_nohash_<n>.wav) or other validation/testing percentages."
                )
            set_size = len(self.data_index[mode])
            silence_size = int(math.ceil(set_size * silence_percentage / 100))
            self.data_index[mode].extend({"label": SILENCE_LABEL, "file": None} for _ in range(silence_size))
            rng.shuffle(unknown_index[mode])
            unknown_size = int(math.ceil(set_size * unknown_percentage / 100))
            self.data_index[mode].extend(unknown_index[mode][:unknown_size])
            rng.shuffle(self.data_index[mode])
        self.word_to_index = {SILENCE_LABEL: SILENCE_INDEX}
        for word in all_words:
            self.word_to_index[word] = wanted_words_index.get(word, UNKNOWN_WORD_INDEX)

    def prepare_background_data(self):
        """Loads the _background_noise_ recordings once, as one float32 array with offsets."""
        rate = self.model_settings["sample_rate"]
        paths = sorted(glob.glob(str(self.data_dir / BACKGROUND_NOISE_DIR_NAME / "*.wav")))
        clips = [read_wav(path, rate).astype(np.float32) / 32768.0 for path in paths]
        clips = [clip for clip in clips if len(clip) >= self.model_settings["desired_samples"]]
        if not clips:
            raise ValueError(
                f"{self.data_dir / BACKGROUND_NOISE_DIR_NAME} holds no noise recording of at least "
                f"{self.model_settings['desired_samples']} samples; silence examples need one."
            )
        self.background_data = clips
        self._background_all = np.concatenate(clips)
        self._background_starts = np.cumsum([0] + [len(c) for c in clips[:-1]]).astype(np.int64)
        self._background_lengths = np.array([len(c) for c in clips], dtype=np.int64)

    def set_size(self, mode):
        """Number of examples in a split (wanted words, silence and unknown)."""
        return len(self.data_index[mode])

    def labels(self, mode):
        """The label index of every example of a split, in the order get_data serves them."""
        return np.array([self.word_to_index[entry["label"]] for entry in self.data_index[mode]], np.int32)

    def get_data(self, mode, background_frequency=0, background_volume_range=0, time_shift_samples=0,
                 time_mask_frames=0, frequency_mask_channels=0):
        """A tf.data.Dataset of (features float32[fingerprint_size], label int32) for a split.

        Training examples are augmented: a random time shift of up to time_shift_samples (zero
        padded), and background noise mixed in with probability background_frequency at a volume
        drawn from [0, background_volume_range]. Silence is background noise alone. With
        time_mask_frames or frequency_mask_channels above 0, every training example served is
        masked as well (mask_features), anew at every pass: the store keeps unmasked features. Each pass
        serves every example once, in a new order, as one of its stored variants (or, with
        stored_variants=0, augmented anew). Validation and testing are deterministic: the same
        features at every call, their silence a fixed slice of noise.
        """
        if not isinstance(mode, self.Modes):
            raise ValueError(f"mode must be one of {list(self.Modes)}, got {mode!r}.")
        labels = self.labels(mode)
        if mode != self.Modes.TRAINING:
            if background_frequency or background_volume_range or time_shift_samples or time_mask_frames \
                    or frequency_mask_channels:
                raise ValueError("Augmentation settings apply to Modes.TRAINING only.")
            if mode not in self._features:
                self._features[mode] = self._cached_features(mode)
            return self._served_in_order(self._features[mode], labels)

        if not self.stored_variants:
            dataset = self._per_step_dataset(background_frequency, background_volume_range, time_shift_samples)
        else:
            store = self.feature_store(background_frequency, background_volume_range, time_shift_samples)
            dataset = self._stored_dataset(store)
        if time_mask_frames or frequency_mask_channels:
            dataset = self._masked(dataset, time_mask_frames, frequency_mask_channels)
        return dataset

    def _masked(self, dataset, time_mask_frames, frequency_mask_channels):
        """The examples of dataset with mask_features applied, AUGMENT_BATCH at a time."""
        seeds = tf.data.Dataset.random(seed=RANDOM_SEED + 1, rerandomize_each_iteration=True).batch(2)

        def mask(batch, seed):
            features, labels = batch
            return mask_features(features, seed, self.model_settings, time_mask_frames, frequency_mask_channels), labels

        return tf.data.Dataset.zip(dataset.batch(AUGMENT_BATCH), seeds).map(mask).unbatch()

    @staticmethod
    def _served_in_order(features, labels):
        """(features, label) of every row in order, gathered from the NumPy array batch by batch
        (tf.numpy_function): no copy of the whole array in TensorFlow."""
        dtype = tf.as_dtype(features.dtype)

        def gather(rows):
            batch = tf.numpy_function(lambda rows: features[rows], [rows], dtype, stateful=False)
            return tf.ensure_shape(batch, [None, features.shape[1]]), tf.gather(labels, rows)

        # The count stated: Keras then knows where a pass ends (no "ran out of data" warning).
        dataset = tf.data.Dataset.range(len(labels)).batch(256).map(gather).unbatch()
        return dataset.apply(tf.data.experimental.assert_cardinality(len(labels)))

    def feature_store(self, background_frequency, background_volume_range, time_shift_samples):
        """The augmented training features, `stored_variants` independent draws per clip, made once.

        Every variant is drawn exactly as the per-step pipeline draws an example (same shift, noise
        and silence rules) and its features are computed by the same frontend, so each stored
        example is one the per-step pipeline could have served, bit for bit. Kept for the last
        augmentation settings asked for; made anew when they change.
        """
        settings = (float(background_frequency), float(background_volume_range), int(time_shift_samples))
        if self._store is None or self._store.settings != settings:
            self._store = None  # free the old store before making the new one
            self._store = self._cached_store(settings)
        return self._store

    # The cache: <data_dir>/.microkws_cache/<task key>/ holds validation.npy, testing.npy and
    # store-<key>/ (features.npy, memory-mapped when read, labels.npy, choices.npz). The task key
    # covers the files (names, sizes, times), the index settings, the model settings, the frontend
    # and the kit's CACHE_VERSION; a store's key adds its augmentation settings and variants. Every
    # file or folder appears under its final name only once complete (written under a temporary
    # name, then renamed), so a run that was stopped midway leaves nothing that a later run uses.

    def cache_folder(self):
        """This task's cache folder (made if missing), or None when caching is off or impossible."""
        if not self.cache:
            return None
        if self._cache_folder is None:
            key = cache_key(dataset_files(self.data_dir), self._index_settings, self.model_settings, self.micro)
            folder = self.data_dir / CACHE_DIR_NAME / key
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                print(f"Not caching features in {folder} ({error}); they are computed in memory.")
                self.cache = False
                return None
            self._cache_folder = folder
        return self._cache_folder

    def _cached_features(self, mode):
        """Validation or testing features: from the cache when there, else computed (and cached)."""
        folder = self.cache_folder()
        shape = (self.set_size(mode), self.model_settings["fingerprint_size"])
        cached = folder and read_array(folder / f"{mode.value}.npy", shape)
        if cached is not None:
            return cached
        features = self._compute_features(mode)
        if folder:
            try:
                write_array(folder / f"{mode.value}.npy", features)
            except OSError as error:
                print(f"Could not cache the {mode.value} features ({error}).")
        return features

    def _cached_store(self, settings):
        """The training store for `settings`: memory-mapped from the cache when there, else made
        into a memory-mapped file that becomes the cache entry (in memory when caching is off)."""
        folder = self.cache_folder()
        if folder is None:
            return self._make_feature_store(settings)
        target = folder / f"store-{cache_key(settings, self.stored_variants)}"
        if not target.is_dir() or (store := self._read_store(target, settings)) is None:
            if shutil.disk_usage(folder).free < 2 * self.stored_variants * self._variant_bytes:
                print(f"Not caching the feature store: too little free disk space in {folder}.")
                return self._make_feature_store(settings)
            self._write_store(target, settings)
            store = self._read_store(target, settings)
            if store is None:
                raise RuntimeError(f"The feature store just written to {target} cannot be read back; delete "
                                   f"{self.data_dir / CACHE_DIR_NAME} and run again.")
        return store

    def _write_store(self, target, settings):
        """Makes the store into a temporary folder beside `target`, then renames it to `target`.
        Other stores of this task are removed: the cache keeps one per task."""
        remove_leftovers(target.parent, ".store-")
        partial = work_in_progress(target.parent, ".store-", folder=True)
        try:
            def allocate(shape, dtype):
                return np.lib.format.open_memmap(partial / "features.npy", mode="w+", dtype=dtype, shape=shape)

            store = self._make_feature_store(settings, allocate)
            store.features.flush()
            del store.features  # closed before the folder is renamed (Windows refuses otherwise)
            np.save(partial / "labels.npy", store.labels)
            np.savez(partial / "choices.npz", **store.choices)
            for old in target.parent.glob("store-*"):
                shutil.rmtree(old, ignore_errors=True)
            publish(partial, target, folder=True)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            if not target.is_dir():  # another process may have published the same store first
                raise
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise

    def _read_store(self, folder, settings):
        """The store cached in `folder` (features memory-mapped), or None if it does not match."""
        labels = self.labels(self.Modes.TRAINING)
        shape = (self.stored_variants * len(labels), self.model_settings["fingerprint_size"])
        features = read_array(folder / "features.npy", shape, mmap_mode="r")
        cached_labels = read_array(folder / "labels.npy", labels.shape)
        if features is None or cached_labels is None or not np.array_equal(cached_labels, labels):
            return None
        with np.load(folder / "choices.npz") as choices:
            choices = {key: choices[key] for key in choices.files}
        return FeatureStore(settings, self.stored_variants, features, labels, choices)

    def _make_feature_store(self, settings, allocate=np.zeros):
        """Draws and computes every variant of every training example, READ_CHUNK clips at a time.

        The clips of a chunk are read, all their variants drawn and computed in parallel in
        tf.data, and the chunk's audio let go: only the store itself grows with the dataset.
        """
        from tqdm.auto import tqdm

        background_frequency, background_volume_range, shift = settings
        labels = self.labels(self.Modes.TRAINING)
        set_size, variants = len(labels), self.stored_variants
        features = allocate((variants * set_size, self.model_settings["fingerprint_size"]), self._store_dtype)
        choices = {key: np.zeros(len(features), dtype) for key, dtype in
                   (("offset", np.int64), ("noise_start", np.int64), ("background_volume", np.float32))}
        draw = self._make_augmentation_draw(background_frequency, background_volume_range, shift)
        mix = self._make_mixer()
        tf_labels = tf.constant(labels)

        def stored_values(clip):
            """What the store keeps of one augmented clip: the frontend's 16-bit output, or MFCCs."""
            clip = tf.reshape(clip, [self.model_settings["desired_samples"]])
            if self.micro:
                values = frontend_output(clip, self.model_settings)
            else:
                values = features_from_audio(clip, self.model_settings, micro=False)
            return tf.reshape(values, [self.model_settings["fingerprint_size"]])

        progress = tqdm(total=len(features), desc="Feature store", unit=" examples",
                        disable=len(features) < PROGRESS_MIN_CLIPS)
        with progress:
            for chunk, start in enumerate(range(0, set_size, READ_CHUNK)):
                stop = min(start + READ_CHUNK, set_size)
                audio = tf.constant(self._read_rows(self.Modes.TRAINING, start, stop, pad=shift))
                # Row r of the store is clip r % set_size; its variant is r // set_size.
                rows = (np.arange(variants)[:, None] * set_size + np.arange(start, stop)).reshape(-1)
                seeds = tf.data.Dataset.random(seed=RANDOM_SEED + chunk).batch(2)
                dataset = tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices(rows).batch(AUGMENT_BATCH), seeds)
                dataset = dataset.map(lambda row, seed: (row, draw(tf.gather(tf_labels, row % set_size), seed)))
                dataset = dataset.unbatch().map(
                    lambda row, choice, audio=audio, start=start:  # (this chunk's, bound now)
                    (row, stored_values(mix(audio[row % set_size - start], choice)), choice),
                    num_parallel_calls=tf.data.AUTOTUNE,
                )
                for batch_rows, batch_features, batch_choices in dataset.batch(1024):
                    batch_rows = batch_rows.numpy()
                    features[batch_rows] = batch_features.numpy()
                    for key in choices:
                        choices[key][batch_rows] = batch_choices[key].numpy()
                    progress.update(len(batch_rows))
                del audio, dataset
        return FeatureStore(settings, variants, features, labels, choices)

    def augmented_audio(self, index, choice, time_shift_samples):
        """The int16 audio of training example `index` augmented by one draw of choices (e.g. a row
        of FeatureStore.choices): what the store's features were computed from."""
        clip = self._read_rows(self.Modes.TRAINING, index, index + 1, pad=int(time_shift_samples))[0]
        choice = {key: tf.constant(value) for key, value in choice.items()}
        return self._make_mixer()(tf.constant(clip), choice).numpy()

    @property
    def _store_dtype(self):
        return np.uint16 if self.micro else np.float32

    def _stored_dataset(self, store):
        """One pass over the training clips in a new random order, each as a random stored variant.

        Batches are gathered from the store's NumPy array (tf.numpy_function), so the store is never
        copied into a TensorFlow constant.
        """
        set_size = len(store.labels)
        labels = tf.constant(store.labels)
        scale = FRONTEND_OUTPUT_SCALE if self.micro else 1.0
        store_dtype = tf.as_dtype(store.features.dtype)
        indices = tf.data.Dataset.range(set_size).shuffle(set_size, reshuffle_each_iteration=True)
        seeds = tf.data.Dataset.random(seed=RANDOM_SEED, rerandomize_each_iteration=True).batch(2)

        def gather(index, seed):
            variant = tf.random.stateless_uniform(tf.shape(index), seed, 0, store.variants, tf.int64)
            rows = variant * set_size + index
            features = tf.numpy_function(lambda rows: store.features[rows], [rows], store_dtype, stateful=False)
            features = tf.ensure_shape(features, [None, self.model_settings["fingerprint_size"]])
            return tf.cast(features, tf.float32) * scale, tf.gather(labels, index)

        return tf.data.Dataset.zip(indices.batch(AUGMENT_BATCH), seeds).map(gather).unbatch()

    def _per_step_dataset(self, background_frequency, background_volume_range, time_shift_samples):
        """Training examples augmented and turned into features anew at every step (no store)."""
        labels = self.labels(self.Modes.TRAINING)
        shift = int(time_shift_samples)
        audio = tf.constant(self._read_rows(self.Modes.TRAINING, 0, len(labels), pad=shift))
        labels = tf.constant(labels)
        draw = self._make_augmentation_draw(background_frequency, background_volume_range, time_shift_samples)
        mix = self._make_mixer()
        indices = tf.data.Dataset.range(len(labels)).shuffle(len(labels), reshuffle_each_iteration=True)
        seeds = tf.data.Dataset.random(seed=RANDOM_SEED, rerandomize_each_iteration=True).batch(2)
        # Random choices are drawn for AUGMENT_BATCH clips at once (vectorized); then each clip is
        # shifted, mixed and turned into features on its own, in parallel.
        dataset = tf.data.Dataset.zip(indices.batch(AUGMENT_BATCH), seeds)
        dataset = dataset.map(lambda index, seed: (index, draw(tf.gather(labels, index), seed)))
        return dataset.unbatch().map(
            lambda index, choice: (
                features_from_audio(mix(audio[index], choice), self.model_settings, self.micro),
                labels[index],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=False,
        )

    def _make_augmentation_draw(self, background_frequency, background_volume_range, time_shift_samples):
        """Graph function (labels [n], seed) -> the random augmentation choices of n clips.

        Returns a dict of [n] tensors: shift offset, background start sample and background volume.
        Silence is noise alone at a volume in [0, 1]; words get noise with
        probability background_frequency at a volume in [0, background_volume_range].
        """
        desired = self.model_settings["desired_samples"]
        starts = tf.constant(self._background_starts)
        lengths = tf.constant(self._background_lengths)
        shift = int(time_shift_samples)

        def draw(labels, seed):
            n = tf.shape(labels)[0]
            seeds = tf.random.experimental.stateless_split(seed, 5)
            which = tf.random.stateless_uniform([n], seeds[1], 0, len(self.background_data), tf.int32)
            room = tf.cast(tf.gather(lengths, which) - desired + 1, tf.float32)
            is_silence = tf.equal(labels, SILENCE_INDEX)
            use_noise = tf.random.stateless_uniform([n], seeds[3]) < background_frequency
            volume = tf.random.stateless_uniform([n], seeds[4])
            return {
                "offset": tf.random.stateless_uniform([n], seeds[0], 0, 2 * shift + 1, tf.int64),
                "noise_start": tf.cast(tf.random.stateless_uniform([n], seeds[2]) * room, tf.int64)
                + tf.gather(starts, which),
                "background_volume": tf.where(
                    is_silence, volume, tf.where(use_noise, volume * background_volume_range, 0.0)
                ),
            }

        return draw

    def _make_mixer(self):
        """Graph function (zero-padded int16 clip, choices of one clip) -> shifted, mixed int16 clip."""
        desired = self.model_settings["desired_samples"]
        background_all = tf.constant(self._background_all * 32768.0)  # in int16 units

        def mix(padded_clip, choice):
            # Silence clips are all zeros in training, so the clip needs no volume of its own.
            audio = tf.cast(padded_clip[choice["offset"] : choice["offset"] + desired], tf.float32)
            noise = background_all[choice["noise_start"] : choice["noise_start"] + desired]
            mixed = audio + choice["background_volume"] * noise
            return tf.cast(tf.clip_by_value(mixed, -32768.0, 32767.0), tf.int16)

        return mix

    def _read_rows(self, mode, start, stop, pad=0):
        """int16 audio of examples start..stop-1 of a split, each zero-padded by `pad` samples on
        both sides (so that a time shift is a slice), read from disk.

        Silence is zeros for training (noise is mixed in on the fly) and a fixed, seeded slice of
        background noise for validation and testing.
        """
        desired, rate = self.model_settings["desired_samples"], self.model_settings["sample_rate"]
        entries = self.data_index[mode][start:stop]
        audio = np.zeros((len(entries), desired + 2 * pad), dtype=np.int16)

        def read_one(i):
            audio[i, pad : pad + desired] = fit_to_length(read_wav(entries[i]["file"], rate), desired)

        from tqdm.auto import tqdm

        word_rows = [i for i, entry in enumerate(entries) if entry["file"] is not None]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool, tqdm(
            total=len(word_rows), desc="Reading clips", unit=" clips", disable=len(word_rows) < PROGRESS_MIN_CLIPS
        ) as progress:
            for _ in pool.map(read_one, word_rows):
                progress.update()
        if mode != self.Modes.TRAINING:
            for row, (clip, noise_start, volume) in self._silence_draws(mode).items():
                if start <= row < stop:
                    noise = self.background_data[clip][noise_start : noise_start + desired]
                    audio[row - start, pad : pad + desired] = to_int16(noise * volume)
        return audio

    def _silence_draws(self, mode):
        """The fixed, seeded noise of every validation or testing silence example:
        {row: (noise recording, start sample, volume)}."""
        if mode not in self._silence:
            desired = self.model_settings["desired_samples"]
            rng = np.random.default_rng([RANDOM_SEED, list(self.Modes).index(mode)])
            draws = {}
            for i, entry in enumerate(self.data_index[mode]):
                if entry["file"] is None:
                    clip = int(rng.integers(len(self.background_data)))
                    start = int(rng.integers(len(self.background_data[clip]) - desired + 1))
                    draws[i] = (clip, start, rng.uniform(0, 1))
            self._silence[mode] = draws
        return self._silence[mode]

    def _compute_features(self, mode):
        """Features of a whole split, READ_CHUNK clips at a time, in parallel in the tf.data graph."""
        from tqdm.auto import tqdm

        set_size = self.set_size(mode)
        features = np.zeros((set_size, self.model_settings["fingerprint_size"]), dtype=np.float32)
        with tqdm(total=set_size, desc=f"{mode.value.capitalize()} features", unit=" clips",
                  disable=set_size < PROGRESS_MIN_CLIPS) as progress:
            for start in range(0, set_size, READ_CHUNK):
                audio = self._read_rows(mode, start, min(start + READ_CHUNK, set_size))
                dataset = tf.data.Dataset.from_tensor_slices(audio).map(
                    lambda clip: features_from_audio(clip, self.model_settings, self.micro),
                    num_parallel_calls=tf.data.AUTOTUNE,
                )
                row = start
                for batch in dataset.batch(256):
                    features[row : row + len(batch)] = batch.numpy()
                    row += len(batch)
                    progress.update(len(batch))
        return features
