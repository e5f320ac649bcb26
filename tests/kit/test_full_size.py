"""benchmarks/full_size.py: the alias layout that makes a dataset of the real one's size, and its table."""

import os

import pytest

from benchmarks import full_size
from speech_commands import which_set


def test_the_real_word_counts_add_up_to_the_published_105829_clips():
    assert len(full_size.REAL_WORD_COUNTS) == 35
    assert sum(full_size.REAL_WORD_COUNTS.values()) == 105_829


def test_round_zero_keeps_the_speaker_and_later_rounds_get_new_hex_ids():
    assert full_size.alias_speaker("0a1b2c3d", 0) == "0a1b2c3d"
    aliases = {full_size.alias_speaker("0a1b2c3d", k) for k in range(1, 6)}
    assert len(aliases) == 5 and all(len(a) == 8 and int(a, 16) >= 0 for a in aliases)


def test_each_word_gets_exactly_its_target_count_of_distinct_files():
    clips = {"yes": [f"{s:08x}_nohash_{n}.wav" for s in range(10) for n in range(2)], "no": ["0000000a_nohash_0.wav"]}
    layout = full_size.alias_layout(clips, {"yes": 47, "no": 3})
    assert {word: len(pairs) for word, pairs in layout.items()} == {"yes": 47, "no": 3}
    for pairs in layout.values():
        assert len({new for _, new in pairs}) == len(pairs)
        assert all(source in clips["yes"] + clips["no"] for source, _ in pairs)


def test_an_alias_keeps_the_clip_number_and_all_clips_of_a_speaker_round_together():
    clips = {"yes": ["00000001_nohash_0.wav", "00000001_nohash_1.wav", "00000002_nohash_0.wav"]}
    layout = full_size.alias_layout(clips, {"yes": 5})["yes"]
    second_round = layout[3:]
    alias = full_size.alias_speaker("00000001", 1)
    assert second_round == [("00000001_nohash_0.wav", f"{alias}_nohash_0.wav"),
                            ("00000001_nohash_1.wav", f"{alias}_nohash_1.wav")]


def test_aliases_spread_one_speaker_over_the_splits():
    names = [full_size.alias_speaker("00a8909d", k) + "_nohash_0.wav" for k in range(60)]
    splits = {which_set(os.path.join("yes", name), 10, 10) for name in names}
    assert splits == {"training", "validation", "testing"}


def test_a_word_missing_from_the_source_is_named():
    with pytest.raises(ValueError, match="'bed'"):
        full_size.alias_layout({"yes": ["00000001_nohash_0.wav"]}, {"yes": 2, "bed": 2})


def test_make_full_size_links_the_clips_and_keeps_the_background_noise(tmp_path):
    source = tmp_path / "source"
    for word in ("yes", "no"):
        (source / word).mkdir(parents=True)
        for speaker in range(3):
            (source / word / f"{speaker:08x}_nohash_0.wav").write_bytes(b"RIFF" + bytes([speaker]))
    (source / "_background_noise_").mkdir()
    (source / "_background_noise_" / "hum.wav").write_bytes(b"noise")
    clips, copies = full_size.make_full_size(source, tmp_path / "full", {"yes": 7, "no": 2})
    assert (clips, copies) == (9, 0)
    assert len(list((tmp_path / "full" / "yes").glob("*.wav"))) == 7
    assert (tmp_path / "full" / "_background_noise_" / "hum.wav").read_bytes() == b"noise"
    assert not list(tmp_path.glob(".full-partial"))
    assert full_size.make_full_size(source, tmp_path / "full", {"yes": 7, "no": 2}) == (9, None)  # reused


def test_the_table_has_one_row_per_run_with_seconds_and_gib():
    result = {"task": "yes_no", "run": 2, "training_examples": 9510, "stored_variants": 28, "index_s": 3.04,
              "first_batch_s": 12.0, "validation_s": 13.5, "test_s": 14.0, "peak_bytes": 2 * 2**30}
    lines = full_size.markdown_table([result]).splitlines()
    assert len(lines) == 3
    assert lines[2] == "| yes/no | 2 | 9,510 | 28 | 3.0 | 12.0 | 13.5 | 14.0 | 2.00 |"
