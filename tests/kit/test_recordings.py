"""Checking a model on real recordings: layout, formats, long clips, errors, the command line."""

import subprocess
import sys
import wave

import numpy as np
import pytest

import data
import test_tflite
from conftest import ROOT


def _write(path, samples, rate=16000, channels=1, width=2):
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.asarray(samples, dtype=np.float64)
    if channels > 1:
        samples = np.repeat(samples[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes((np.clip(samples, -1, 1) * (2 ** (8 * width - 1) - 1)).astype(f"<i{width}").tobytes())


def _tone(seconds, rate=16000, frequency=440.0, start=0.0, length=None):
    t = np.arange(int(seconds * rate)) / rate
    length = seconds if length is None else length
    return 0.5 * np.sin(2 * np.pi * frequency * t) * ((t >= start) & (t < start + length))


@pytest.fixture
def recordings(tmp_path, small_dataset):
    """Real-style folders: clips of the synthetic set, silence, a skipped folder, odd formats."""
    root = tmp_path / "recordings"
    for word in ("yes", "no", "left"):
        for source in sorted((small_dataset / word).glob("*.wav"))[:3]:
            (root / word).mkdir(parents=True, exist_ok=True)
            (root / word / source.name).write_bytes(source.read_bytes())
    _write(root / "_silence_" / "quiet.wav", np.random.default_rng(0).normal(0, 0.01, 16000))
    _write(root / "_background_noise_" / "long_noise.wav", np.random.default_rng(1).normal(0, 0.1, 48000))
    return root


def test_classes_follow_the_speech_commands_layout(recordings):
    found = test_tflite.find_recordings(recordings, ["yes", "no"])
    labels = [label for _, label in found]
    assert labels.count(0) == 1 and labels.count(1) == 3 and labels.count(2) == 3 and labels.count(3) == 3
    assert not any("_background_noise_" in str(path) for path, _ in found)


@pytest.mark.slow
def test_the_result_counts_every_clip_in_a_label_by_label_matrix(converted_xs, recordings, model_settings):
    result = test_tflite.evaluate_recordings(converted_xs[1], recordings, ["yes", "no"], model_settings)
    assert result["count"] == 10 and result["confusion_matrix"].shape == (4, 4)
    assert result["confusion_matrix"].sum(axis=1).tolist() == [1, 3, 3, 3]
    assert 0 <= result["balanced_accuracy"] <= 1 and len(result["errors"]) == round(10 * (1 - result["accuracy"]))


@pytest.mark.slow
def test_tflite_micro_gives_the_reference_kernels_predictions_but_at_most_one_near_tie(
        converted_xs, recordings, model_settings):
    reference = test_tflite.evaluate_recordings(converted_xs[1], recordings, ["yes", "no"], model_settings,
                                                runtime="litert_reference")
    tflm = test_tflite.evaluate_recordings(converted_xs[1], recordings, ["yes", "no"], model_settings, runtime="tflm")
    moved = int(np.abs(reference["confusion_matrix"] - tflm["confusion_matrix"]).sum()) // 2
    assert moved <= 1


def test_a_stereo_44_1_khz_recording_is_downmixed_and_resampled(tmp_path):
    _write(tmp_path / "phone.wav", _tone(1.0, rate=44100), rate=44100, channels=2)
    samples = data.load_recording(tmp_path / "phone.wav", 16000)
    assert len(samples) == 16000
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    assert abs(np.argmax(spectrum) * 16000 / len(samples) - 440) <= 2


def test_a_24_bit_recording_reads_like_a_16_bit_one(tmp_path):
    _write(tmp_path / "a.wav", _tone(0.5), width=2)
    raw = np.frombuffer(((np.clip(_tone(0.5), -1, 1) * (2**23 - 1)).astype("<i4")).tobytes(), np.uint8)
    with wave.open(str(tmp_path / "b.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(3)
        wav.setframerate(16000)
        wav.writeframes(raw.reshape(-1, 4)[:, :3].tobytes())
    difference = (data.load_recording(tmp_path / "a.wav", 16000).astype(int)
                  - data.load_recording(tmp_path / "b.wav", 16000))
    assert np.abs(difference).max() <= 1


@pytest.mark.slow
def test_a_long_recording_is_cut_to_its_loudest_second(tmp_path, converted_xs, model_settings):
    loud_word = _tone(3.0, start=1.7, length=0.5)
    _write(tmp_path / "rec" / "yes" / "three_seconds.wav", loud_word)
    samples = data.loudest_window(data.load_recording(tmp_path / "rec" / "yes" / "three_seconds.wav", 16000), 16000)
    assert len(samples) == 16000 and np.abs(samples).max() > 10000
    result = test_tflite.evaluate_recordings(converted_xs[1], tmp_path / "rec", ["yes", "no"], model_settings)
    assert result["cut"] == [str(tmp_path / "rec" / "yes" / "three_seconds.wav")]


@pytest.mark.slow
def test_a_short_recording_is_padded_at_the_end(tmp_path, converted_xs, model_settings):
    _write(tmp_path / "rec" / "no" / "short.wav", _tone(0.4))
    result = test_tflite.evaluate_recordings(converted_xs[1], tmp_path / "rec", ["yes", "no"], model_settings)
    assert result["count"] == 1 and result["cut"] == []


@pytest.mark.slow
def test_an_unreadable_recording_is_listed_with_its_reason_and_the_others_still_scored(
        recordings, converted_xs, model_settings):
    (recordings / "yes" / "voice_memo.wav").write_bytes(b"not a wav at all")
    result = test_tflite.evaluate_recordings(converted_xs[1], recordings, ["yes", "no"], model_settings)
    assert result["count"] == 10
    [(path, reason)] = result["unreadable"]
    assert path.endswith("voice_memo.wav") and "not a readable wav" in reason


@pytest.mark.slow
def test_only_unreadable_recordings_is_an_error_that_names_them(tmp_path, converted_xs, model_settings):
    (tmp_path / "rec" / "yes").mkdir(parents=True)
    (tmp_path / "rec" / "yes" / "voice_memo.wav").write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match="voice_memo.wav.*not a readable"):
        test_tflite.evaluate_recordings(converted_xs[1], tmp_path / "rec", ["yes", "no"], model_settings)


@pytest.mark.slow
def test_an_empty_folder_says_what_layout_is_expected(tmp_path, converted_xs, model_settings):
    (tmp_path / "rec").mkdir()
    with pytest.raises(ValueError, match=r"No recordings .*<word>/\*\.wav"):
        test_tflite.evaluate_recordings(converted_xs[1], tmp_path / "rec", ["yes", "no"], model_settings)


@pytest.mark.slow
def test_the_command_line_prints_the_report(converted_xs, recordings):
    result = subprocess.run([sys.executable, "test_tflite.py", str(converted_xs[1]), "--recordings", str(recordings),
                             "--wanted-words", "yes,no"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "balanced accuracy" in result.stdout and "confusion matrix" in result.stdout and "recall" in result.stdout


@pytest.mark.slow
def test_the_command_line_reports_a_missing_folder(converted_xs, tmp_path):
    result = subprocess.run([sys.executable, "test_tflite.py", str(converted_xs[1]),
                             "--recordings", str(tmp_path / "none")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "No folder" in result.stderr


# --- Wav formats recorders write ----------------------------------------------------------------------


def _write_with_scipy(path, samples, rate):
    import scipy.io.wavfile

    scipy.io.wavfile.write(str(path), rate, samples)
    return path


def test_a_32_bit_float_recording_is_read(tmp_path):
    tone = _tone(1.0).astype(np.float32)
    samples = data.load_recording(_write_with_scipy(tmp_path / "float.wav", tone, 16000), 16000)
    np.testing.assert_allclose(samples / 32768, tone, atol=2 / 32768)


def _write_extensible(path, samples, rate, bits=24):
    """A WAVE_FORMAT_EXTENSIBLE file (format tag 65534, PCM sub-format), as many recorders write."""
    import struct

    width = bits // 8
    ints = (np.clip(samples, -1, 1) * (2 ** (bits - 1) - 1)).astype("<i4")
    frames = np.frombuffer(ints.tobytes(), np.uint8).reshape(-1, 4)[:, :width].tobytes()
    pcm_guid = bytes.fromhex("0100000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, rate, rate * width, width, bits, 22, bits, 4) + pcm_guid
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames)) + frames
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_a_wave_format_extensible_24_bit_recording_is_read(tmp_path):
    tone = _tone(1.0)
    path = _write_extensible(tmp_path / "ext.wav", tone, 16000)
    assert int.from_bytes(path.read_bytes()[20:22], "little") == 65534
    np.testing.assert_allclose(data.load_recording(path, 16000) / 32768, tone, atol=2 / 32768)


def test_a_48_khz_stereo_float_recording_is_downmixed_and_resampled(tmp_path):
    tone = _tone(1.0, rate=48000).astype(np.float32)
    path = _write_with_scipy(tmp_path / "laptop.wav", np.stack([tone, tone], axis=1), 48000)
    samples = data.load_recording(path, 16000)
    assert len(samples) == 16000
    assert abs(np.argmax(np.abs(np.fft.rfft(samples.astype(float)))) - 440) <= 2


def test_a_recording_with_a_zero_sample_rate_is_called_damaged(tmp_path):
    path = _write_with_scipy(tmp_path / "broken.wav", np.zeros(100, np.int16), 16000)
    raw = bytearray(path.read_bytes())
    raw[24:28] = (0).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"broken\.wav.*(sample rate of 0 Hz|not a readable)"):
        data.load_recording(path, 16000)


def test_upper_case_wav_names_are_found(tmp_path):
    _write(tmp_path / "rec" / "yes" / "TAKE1.WAV", _tone(1.0))
    assert [p.name for p, _ in test_tflite.find_recordings(tmp_path / "rec", ["yes"])] == ["TAKE1.WAV"]
