"""The Flite option of the synthetic recipe: speakers whose voices were built from recorded people.

The default recipe never needs Flite (test_synthetic.py pins its clips); a recipe with flite_share
needs the `flite` program, and says how to install it where it is missing.
"""

import json
import shutil
import wave

import numpy as np
import pytest

import synthetic

HAS_FLITE = shutil.which("flite") is not None
needs_flite = pytest.mark.skipif(not HAS_FLITE, reason="the flite program is not installed "
                                 "(Debian/Ubuntu: sudo apt-get install flite; macOS: brew install flite)")
MIX = {"flite_share": 0.5, "noise_kinds": ["white"]}  # seed 0, 6 speakers: 2 Flite, 4 eSpeak
WORDS = ["yes", "no"]


def _without_flite_on_the_path(monkeypatch, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # the kit starts its workers by absolute path


def test_the_default_settings_name_no_flite_and_no_engines():
    settings = synthetic.default_settings()
    assert settings["recipe"] == synthetic.RECIPE and "engines" not in settings
    assert not set(synthetic.FLITE_RECIPE) & set(synthetic.RECIPE)


def test_the_default_recipe_is_made_without_flite(tmp_path, monkeypatch):
    _without_flite_on_the_path(monkeypatch, tmp_path)
    made = synthetic.make_synthetic_dataset(tmp_path / "speech", seed=0, speakers=3, words=["yes"],
                                            recipe={"noise_kinds": ["white"]})
    assert len(list((made / "yes").glob("*.wav"))) == 3 * synthetic.CORE_REPETITIONS
    assert "engines" not in json.loads((made / synthetic.MARKER_NAME).read_text())


def test_a_missing_flite_says_how_to_install_it_and_leaves_nothing(tmp_path, monkeypatch):
    _without_flite_on_the_path(monkeypatch, tmp_path)
    with pytest.raises(RuntimeError, match="Flite") as error:
        synthetic.make_synthetic_dataset(tmp_path / "speech", seed=0, speakers=6, words=WORDS, recipe=MIX)
    for how in ("sudo apt-get install flite", "brew install flite", "WSL"):
        assert how in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == ["bin"]


def test_a_flite_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="flite_share"):
        synthetic.engines_of(synthetic.full_recipe({"flite_share": 1.5}))


def test_the_share_of_flite_speakers_follows_flite_share():
    recipe = synthetic.full_recipe({"flite_share": 0.5})
    speakers = [synthetic.make_speaker(sid, 0, recipe) for sid in synthetic.speaker_ids(400, 0)]
    flite = [s for s in speakers if s.get("engine") == "flite"]
    assert 0.4 < len(flite) / len(speakers) < 0.6
    assert {s["voice"] for s in flite} == set(synthetic.FLITE_RECIPE["flite_voices"])
    assert len({(s["pitch"], s["tempo"], s["vocal_tract"]) for s in flite}) == len(flite)


def test_the_espeak_speakers_of_a_mix_keep_their_default_voices():
    recipe = synthetic.full_recipe({"flite_share": 0.5})
    for sid in synthetic.speaker_ids(40, 0):
        mixed = synthetic.make_speaker(sid, 0, recipe)
        if mixed.get("engine") != "flite":
            assert mixed == synthetic.make_speaker(sid, 0)


# --- With Flite installed -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flite_mix(tmp_path_factory):
    return synthetic.make_synthetic_dataset(tmp_path_factory.mktemp("flite") / "speech", seed=0, speakers=6,
                                            words=WORDS, recipe=MIX)


def _flite_speaker_ids():
    recipe = synthetic.full_recipe(MIX)
    return [sid for sid in synthetic.speaker_ids(6, 0)
            if synthetic.make_speaker(sid, 0, recipe).get("engine") == "flite"]


@needs_flite
def test_a_flite_voice_this_flite_lacks_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="no voice"):
        synthetic.make_synthetic_dataset(tmp_path / "speech", speakers=3, words=["yes"],
                                         recipe={"flite_share": 1.0, "flite_voices": ["no_such_voice"]})
    assert list(tmp_path.iterdir()) == []


@needs_flite
def test_a_flite_mix_records_its_engines_and_the_flite_recipe(flite_mix):
    settings = synthetic.describe_dataset(flite_mix)["settings"]
    assert set(settings["engines"]) == {"espeak-ng", "flite"}
    assert settings["engines"]["flite"].startswith("flite-")
    assert settings["recipe"] == {**synthetic.RECIPE, **synthetic.FLITE_RECIPE, **MIX}


@needs_flite
def test_flite_clips_are_one_second_16khz_16bit_and_hold_speech(flite_mix):
    ids = _flite_speaker_ids()
    assert ids  # the mix has Flite speakers (and, by the share test, eSpeak ones)
    for word in WORDS:
        for sid in ids:
            for n in range(synthetic.CORE_REPETITIONS):
                with wave.open(str(flite_mix / word / f"{sid}_nohash_{n}.wav")) as wav:
                    assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (
                        1, 2, 16000, 16000)
                    samples = np.frombuffer(wav.readframes(16000), dtype="<i2")
                assert np.abs(samples.astype(np.int32)).max() > 500


@needs_flite
def test_the_same_seed_gives_the_same_flite_mix(flite_mix, tmp_path):
    again = synthetic.make_synthetic_dataset(tmp_path / "speech", seed=0, speakers=6, words=WORDS, recipe=MIX,
                                             processes=1)
    names = sorted(p.relative_to(flite_mix) for p in flite_mix.rglob("*.wav"))
    assert names == sorted(p.relative_to(again) for p in again.rglob("*.wav"))
    for name in names:
        assert (flite_mix / name).read_bytes() == (again / name).read_bytes(), name
