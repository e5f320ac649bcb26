"""The synthetic Speech-Commands-style dataset: layout, format, determinism, safety."""

import hashlib
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

import data
import synthetic
from conftest import ROOT, SMALL_SPEAKERS, SMALL_WORDS
from speech_commands import SAMPLE_RATE


def test_the_synthetic_set_is_made_without_loading_tensorflow():
    code = "import sys, synthetic, speech_commands; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_synthetic_command_line_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = subprocess.run([sys.executable, "synthetic.py", str(tmp_path), "--speakers", "3"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "not empty" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_layout_is_the_speech_commands_layout(small_dataset):
    # (a folder starting with a dot is the kit's feature cache, not a word)
    folders = {p.name for p in small_dataset.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert set(SMALL_WORDS) | {"_background_noise_"} <= folders
    assert folders - set(SMALL_WORDS) - {"_background_noise_"} <= set(synthetic.EXTRA_UNKNOWN_WORDS)
    for wav_path in (small_dataset / "yes").iterdir():
        assert wav_path.suffix == ".wav"
        assert len(wav_path.stem.split("_nohash_")[0]) == 8


def test_clips_are_one_second_16khz_mono_16bit(small_dataset):
    for wav_path in sorted((small_dataset / "no").iterdir())[:10]:
        with wave.open(str(wav_path)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (
                1, 2, 16000, 16000)


def test_clips_hold_speech_not_silence(small_dataset):
    for wav_path in sorted((small_dataset / "yes").iterdir())[:10]:
        samples = data.read_wav(wav_path, 16000).astype(np.float64)
        assert np.abs(samples).max() > 500, wav_path


def test_background_noise_is_minutes_of_several_kinds(small_dataset):
    noise_files = sorted((small_dataset / "_background_noise_").iterdir())
    assert len(noise_files) >= 5
    seconds = sum(len(data.read_wav(p, 16000)) for p in noise_files) / 16000
    assert seconds >= 180


def test_every_split_has_speakers_and_no_speaker_is_in_two(small_dataset):
    splits = {}
    for wav_path in small_dataset.glob("*/*_nohash_*.wav"):
        speaker = wav_path.name.split("_nohash_")[0]
        splits.setdefault(speaker, set()).add(data.which_set(wav_path.name, 10, 10))
    assert all(len(s) == 1 for s in splits.values())
    assert {next(iter(s)) for s in splits.values()} == {"training", "validation", "testing"}


def test_the_same_seed_gives_the_same_files(tmp_path, monkeypatch):
    # More speakers than one worker task takes, spoken by a different number of workers.
    monkeypatch.setattr(synthetic, "SPEAKERS_PER_TASK", 2)  # two tasks of speakers, not 28 speakers
    speakers = synthetic.SPEAKERS_PER_TASK + 1
    first = synthetic.make_synthetic_dataset(tmp_path / "a", seed=3, speakers=speakers, words=["yes"], processes=2)
    second = synthetic.make_synthetic_dataset(tmp_path / "b", seed=3, speakers=speakers, words=["yes"], processes=1)
    names = sorted(p.relative_to(first) for p in first.rglob("*.wav"))
    assert names == sorted(p.relative_to(second) for p in second.rglob("*.wav"))
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_another_seed_gives_other_speakers(tmp_path):
    first = synthetic.make_synthetic_dataset(tmp_path / "a", seed=3, speakers=3, words=["yes"])
    second = synthetic.make_synthetic_dataset(tmp_path / "b", seed=4, speakers=3, words=["yes"])
    assert {p.name for p in (first / "yes").iterdir()} != {p.name for p in (second / "yes").iterdir()}


def test_a_second_call_reuses_the_dataset(small_dataset):
    before = {p: p.stat().st_mtime_ns for p in small_dataset.rglob("*.wav")}
    synthetic.make_synthetic_dataset(small_dataset, seed=0, speakers=SMALL_SPEAKERS, words=SMALL_WORDS)
    assert before == {p: p.stat().st_mtime_ns for p in small_dataset.rglob("*.wav")}


def test_a_dataset_made_with_other_settings_is_not_mistaken_for_this_one(small_dataset):
    with pytest.raises(ValueError, match="other settings"):
        synthetic.make_synthetic_dataset(small_dataset, seed=1, speakers=SMALL_SPEAKERS, words=SMALL_WORDS)


def test_an_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail(count, seed):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "speaker_ids", fail)
    with pytest.raises(KeyboardInterrupt):
        synthetic.make_synthetic_dataset(tmp_path / "speech", seed=0, speakers=3, words=["yes"])
    assert list(tmp_path.iterdir()) == []


CALL = "import synthetic; synthetic.make_synthetic_dataset({out!r}, seed=0, speakers=3, words=['yes'])"


def test_a_script_on_standard_input_can_make_a_dataset(tmp_path):
    out = tmp_path / "speech"
    subprocess.run([sys.executable, "-"], input=CALL.format(out=str(out)), text=True, cwd=ROOT, check=True)
    assert list((out / "yes").glob("*.wav"))


def test_a_script_without_a_main_guard_can_make_a_dataset(tmp_path):
    out = tmp_path / "speech"
    script = tmp_path / "make_it.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + CALL.format(out=str(out)) + "\n")
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True)
    assert list((out / "yes").glob("*.wav"))


def test_a_failing_worker_is_reported_with_its_error_and_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "ENGLISH_VOICES", ["xx-no-such-voice"])
    with pytest.raises(RuntimeError, match="speech worker failed"):
        synthetic.make_synthetic_dataset(tmp_path / "speech", seed=0, speakers=3, words=["yes"])
    assert list(tmp_path.iterdir()) == []


def test_a_killed_generation_is_cleaned_up_by_the_next_and_the_set_is_group_readable(tmp_path):
    import os
    import stat

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".speech-building-{dead.pid}-x"
    (leftover / "yes").mkdir(parents=True)
    old = os.umask(0o022)
    try:
        synthetic.make_synthetic_dataset(tmp_path / "speech", seed=0, speakers=3, words=["yes"])
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech"]
    assert stat.S_IMODE((tmp_path / "speech").stat().st_mode) == 0o755


def test_a_non_empty_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        synthetic.make_synthetic_dataset(tmp_path, speakers=3, words=["yes"])


def test_the_default_words_are_the_35_of_speech_commands_v2():
    assert len(synthetic.WORDS) == 35 and len(set(synthetic.WORDS)) == 35
    assert {"yes", "no", "marvin", "sheila", "visual", "backward"} <= set(synthetic.WORDS)


def test_every_voice_and_variant_exists_in_espeak_data():
    import espeakng_loader

    data_path = Path(espeakng_loader.get_data_path())
    languages = {p.name.lower() for p in (data_path / "lang").rglob("*") if p.is_file()}
    assert {v.lower() for v in synthetic.ENGLISH_VOICES} <= languages
    variants = {p.name for p in (data_path / "voices" / "!v").iterdir()}
    assert set(synthetic.VARIANTS) <= variants


def test_the_marker_records_the_settings_and_the_recipe(small_dataset):
    settings = json.loads((small_dataset / synthetic.MARKER_NAME).read_text())
    assert settings["speakers"] == SMALL_SPEAKERS and settings["words"] == SMALL_WORDS
    assert settings["recipe"] == synthetic.RECIPE


def test_speakers_can_also_say_other_words_as_unknowns(tmp_path):
    speech = synthetic.make_synthetic_dataset(tmp_path / "speech", speakers=3, words=["yes"],
                                              recipe={"extra_unknown_words": 2, "noise_kinds": ["white"]})
    extra = [p for p in speech.iterdir() if p.is_dir() and p.name in synthetic.EXTRA_UNKNOWN_WORDS]
    assert sum(len(list(folder.glob("*.wav"))) for folder in extra) == 3 * 2


def test_extra_unknown_words_are_neither_dataset_words_nor_their_homophones():
    homophones = {"know", "too", "to", "for", "won", "ate", "write", "sicks"}
    assert not (set(synthetic.EXTRA_UNKNOWN_WORDS) & (set(synthetic.WORDS) | homophones))


def test_a_changed_recipe_makes_a_new_dataset_rather_than_reusing(small_dataset):
    with pytest.raises(ValueError, match="other settings"):
        synthetic.make_synthetic_dataset(small_dataset, seed=0, speakers=SMALL_SPEAKERS, words=SMALL_WORDS,
                                         recipe={"reverb_probability": 0.0})


def test_the_command_line_writes_a_dataset(tmp_path):
    result = subprocess.run([sys.executable, "synthetic.py", str(tmp_path / "speech"), "--speakers", "3"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Synthetic dataset ready" in result.stdout and data.has_dataset(tmp_path / "speech")


def test_the_default_dataset_made_by_an_older_kit_is_made_anew(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "default_dataset_dir", lambda: tmp_path / "speech")
    monkeypatch.setattr(synthetic, "DEFAULT_SPEAKERS", 3)
    monkeypatch.setattr(synthetic, "WORDS", ["yes"])
    old = tmp_path / "speech" / "yes"
    old.mkdir(parents=True)
    (old / "old_nohash_0.wav").write_bytes(b"old")
    (tmp_path / "speech" / synthetic.MARKER_NAME).write_text('{"version": 1}')
    made = synthetic.default_dataset()
    assert not (made / "yes" / "old_nohash_0.wav").exists() and len(list((made / "yes").glob("*.wav"))) == 3 * 2


def test_a_folder_with_an_other_synthetic_set_is_never_deleted_outside_the_default(tmp_path):
    synthetic.make_synthetic_dataset(tmp_path / "mine", seed=0, speakers=3, words=["yes"],
                                     recipe={"noise_kinds": ["white"]})
    with pytest.raises(ValueError, match="other settings"):
        synthetic.make_synthetic_dataset(tmp_path / "mine", seed=1, speakers=3, words=["yes"])
    assert (tmp_path / "mine" / "yes").is_dir()


def test_spectral_tilt_of_white_noise_is_the_ratio_of_the_band_widths():
    noise = np.random.default_rng(0).standard_normal(16000)
    assert synthetic.spectral_tilt(noise) == pytest.approx(10 * np.log10(6000 / 2000), abs=0.2)


@pytest.mark.parametrize("target", [-24.0, -14.0, -4.0])
def test_set_spectral_tilt_reaches_the_target_and_leaves_what_lies_below_the_shelf_alone(target):
    audio = np.random.default_rng(1).standard_normal(16000)
    shaped = synthetic.set_spectral_tilt(audio, target)
    assert synthetic.spectral_tilt(shaped) == pytest.approx(target, abs=0.1)
    lows = np.fft.rfftfreq(16000, 1 / 16000) <= 2000 * 2 ** -synthetic.SHELF_OCTAVES
    np.testing.assert_allclose(np.fft.rfft(shaped)[lows], np.fft.rfft(audio)[lows], atol=1e-6)


def test_set_spectral_tilt_changes_the_highs_by_at_most_the_limit():
    audio = np.random.default_rng(2).standard_normal(16000)
    shaped = synthetic.set_spectral_tilt(audio, -60.0, max_change_db=10.0)
    assert synthetic.spectral_tilt(shaped) >= synthetic.spectral_tilt(audio) - 10.0 - 1e-6


def test_a_recipe_with_a_tilt_range_gives_clips_of_that_tilt():
    recipe = {**synthetic.RECIPE, "tilt_range": [-12.0, -12.0], "band_limit_probability": 0.0}
    speaker = synthetic.make_speaker(synthetic.speaker_ids(3, 0)[0], 0)
    clip = synthetic.render_utterance(synthetic.ESpeak(), speaker, "yes", np.random.default_rng(3), recipe)
    assert synthetic.spectral_tilt(clip) == pytest.approx(-12.0, abs=2.0)  # the noise added after moves it a little


def test_zero_padding_ends_the_clip_in_digital_zeros_after_the_word():
    recipe = {**synthetic.RECIPE, "zero_padding_probability": 1.0}
    speaker = synthetic.make_speaker(synthetic.speaker_ids(3, 0)[0], 0)
    espeak = synthetic.ESpeak()
    padded = [synthetic.render_utterance(espeak, speaker, "no", np.random.default_rng(seed), recipe)
              for seed in range(6)]
    assert all(np.count_nonzero(clip) > 2000 for clip in padded)  # the word is still there
    assert sum(clip[-1] == 0.0 for clip in padded) >= 5  # nearly always a stretch of zeros to the end


def _level_db(segment):
    return 10 * np.log10(np.mean(segment**2))


def test_compression_halves_the_level_differences_at_an_amount_of_one_half():
    t = np.arange(16000) / 16000
    word = np.sin(2 * np.pi * 300 * t) * np.where(t < 0.5, 1.0, 0.1)  # a loud part, then one 20 dB quieter
    compressed = synthetic.compress(word, 0.5)
    loud, quiet = compressed[2000:6000], compressed[10000:14000]
    assert _level_db(loud) - _level_db(quiet) == pytest.approx(10.0, abs=0.5)


def test_compression_of_amount_zero_changes_nothing():
    word = np.random.default_rng(4).standard_normal(8000)
    np.testing.assert_allclose(synthetic.compress(word, 0.0), word)


@pytest.mark.parametrize("tract", [0.90, 1.0, 1.0023, 1.1025])  # ratios 320/490, 320/441, 320/440, 320/400
def test_a_changed_vocal_tract_keeps_the_voices_whole_band(tract):
    noise = np.random.default_rng(0).standard_normal(22050)
    frequencies, power = scipy.signal.welch(synthetic.change_vocal_tract(noise, 22050, tract), SAMPLE_RATE)
    highs = power[(frequencies > 3000) & (frequencies < 6000)].mean()
    lows = power[(frequencies > 100) & (frequencies < 1000)].mean()
    assert highs / lows > 0.5


# --- The same seed, the same clips on every platform ----------------------------------------------

# One speaker, saying "yes" twice, in four voice variants that use each of eSpeak's noise sources:
# the default synthesizer with breath (f2), its whisper (whisper), the Klatt synthesizer (klatt) and
# the speechPlayer one (mike2). sha256 of the wav files, as written on Linux x86-64; a change here
# means the same seed no longer makes the same set.
PINNED_CLIPS = {
    "yes/00000000_nohash_0.wav": "34f4bbb31a6ed347e30ef1d9b657d8ba766dd757c1305ed3f5c96d92a25981f7",
    "yes/00000000_nohash_1.wav": "00a4e80b904ccfe31537eab8941b9756641491e4687e9c02bbfb0e09fa53d7db",
    "yes/00000001_nohash_0.wav": "e8c5e999871527e473839570c0e99dea847965f5a879c3dcd79f8c060cf7d299",
    "yes/00000001_nohash_1.wav": "0aab9fd722c67873fc291cc2a8c78d4eb58e2c2e32a48075dc977cf2284a5647",
    "yes/00000002_nohash_0.wav": "6090035cb6e4a543761adf466d95cf3d71c8e6d7fdebf0f929f873eac2abcc3d",
    "yes/00000002_nohash_1.wav": "d626c3c61713c8fd6426da4d82ae1bf86046d5696a67e15c56f3e835e7703307",
    "yes/00000003_nohash_0.wav": "26591e33fdbf90f5f24c4da815074085028c30af3d6079989f63b02a397933dd",
    "yes/00000003_nohash_1.wav": "000c77e3b396321758ab4d2449bc9e188105c420330cfcae057e5be78355b66f",
}


def _pinned_speakers():
    speaker = synthetic.make_speaker(synthetic.speaker_ids(3, 0)[0], 0)
    return [{**speaker, "id": f"{i:08x}", "variant": variant}
            for i, variant in enumerate(["f2", "whisper", "klatt", "mike2"])]


def test_the_same_seed_gives_the_pinned_clips(tmp_path):
    (tmp_path / "yes").mkdir()
    synthetic._run_in_worker("_speak_speakers", [str(tmp_path), _pinned_speakers(), ["yes"], 0, synthetic.RECIPE])
    written = {p.relative_to(tmp_path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(tmp_path.rglob("*.wav"))}
    assert written == PINNED_CLIPS


SPEAK_EVERY_VARIANT = """
import ctypes, ctypes.util, hashlib, sys
import synthetic
libc = ctypes.CDLL(ctypes.util.find_library("c") or "ucrtbase")
espeak = synthetic.ESpeak()
for variant in synthetic.VARIANTS:
    libc.srand(int(sys.argv[1]))
    speech = espeak.speak("happy", "en+" + variant, rate=170, pitch=50, pitch_range=50, noise_seed=1)
    print(variant, hashlib.sha256(speech.tobytes()).hexdigest())
"""


def test_no_voice_variant_depends_on_the_c_librarys_rand():
    """rand() gives other numbers on glibc, macOS and Windows: a variant that used it would make
    another set on each. Seeding rand() differently must change nothing."""
    spoken = [subprocess.run([sys.executable, "-c", SPEAK_EVERY_VARIANT, str(seed)], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.splitlines() for seed in (1, 2)]
    assert len(spoken[0]) == len(synthetic.VARIANTS)
    assert [line for line in spoken[0] if line not in spoken[1]] == []
