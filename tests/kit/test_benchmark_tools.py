"""The benchmarks' own arithmetic: what synthetic_vs_real measures, how real_speech, training and
kit_versions sum up seeds, model_step's ratios, and the shared run helpers of benchmarks/runs.py."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import kit_versions, model_step, real_speech, runs, synthetic_vs_real, training
from conftest import ROOT


def tone_burst(onset=0.3, seconds=0.4, amplitude=10000.0, noise=10.0):
    """One second: a 1 kHz tone from `onset` for `seconds` over white noise of RMS `noise` (int16 units)."""
    t = np.arange(16000) / 16000
    clip = np.random.default_rng(0).standard_normal(16000) * noise
    on = (t >= onset) & (t < onset + seconds)
    clip[on] += amplitude * np.sin(2 * np.pi * 1000 * t[on])
    return clip


def test_active_speech_is_where_the_frames_are_within_20_db_of_the_loudest():
    measures = synthetic_vs_real.clip_measures(tone_burst(), 16000)
    assert measures["onset"] == pytest.approx(0.30)
    assert measures["duration"] == pytest.approx(0.40)


def test_levels_are_in_db_re_one_int16_step():
    measures = synthetic_vs_real.clip_measures(tone_burst(), 16000)
    assert measures["peak_db"] == pytest.approx(20 * np.log10(10000 / np.sqrt(2)), abs=0.1)
    assert measures["rms_db"] == pytest.approx(measures["peak_db"], abs=0.1)
    assert measures["noise_floor_db"] == pytest.approx(20.0, abs=1.0)


def test_a_low_tone_has_a_steep_negative_tilt():
    assert synthetic_vs_real.clip_measures(tone_burst(), 16000)["tilt_db"] < -30


def test_the_feature_gap_is_zero_for_the_same_clips_and_about_one_for_a_shift_of_one_spread():
    means = np.random.default_rng(1).standard_normal((2000, 40))
    assert synthetic_vs_real.feature_gap(means, means) == pytest.approx(0.0, abs=1e-9)
    assert synthetic_vs_real.feature_gap(means, means + 1.0) == pytest.approx(1.0, abs=0.05)


def test_keywords_with_too_few_real_clips_are_pooled_with_the_other_words():
    classes = synthetic_vs_real.class_names({"yes": 20, "no": 2, "bed": 30, "_silence_": 20})
    assert classes == ["yes", "other words", "all words", "_silence_"]
    assert synthetic_vs_real.classes_of("no", ["yes"]) == ["other words", "all words"]


def test_seeds_are_summed_up_as_mean_and_sample_standard_deviation():
    def result(balanced, yes):
        return {"balanced_accuracy": balanced, "accuracy": 0.5, "synthetic_test_accuracy": 0.8,
                "training_seconds": 10.0, "per_class": {"yes": yes}, "confusion_matrix": np.eye(2, dtype=int)}

    summary = real_speech.summarize([result(0.6, 0.5), result(0.8, 1.0)])
    assert summary["balanced_accuracy"] == pytest.approx((0.7, np.std([0.6, 0.8], ddof=1)))
    assert summary["per_class"]["yes"] == pytest.approx((0.75, np.std([0.5, 1.0], ddof=1)))
    np.testing.assert_array_equal(summary["confusion_matrix"], 2 * np.eye(2))
    assert real_speech.summarize([result(0.6, 0.5)])["balanced_accuracy"] == (0.6, 0.0)



def test_the_training_table_gives_speed_against_the_seed_kit_and_the_steady_speed_per_pipeline():
    def run(pipeline, speed, steady, accuracy):
        return {"model": "micro_kws_xs", "pipeline": pipeline, "steps": 3000, "steps_per_s": speed,
                "steady_steps_per_s": steady, "test_accuracy": accuracy}

    table = training.summary_table([run("store", 120, 250, 0.8), run("seed_kit", 30, 32, 0.7),
                                    run("store", 140, 270, 0.9), run("seed_kit", 34, 34, 0.7)])
    store_row = table.splitlines()[2]
    assert store_row.startswith("| micro_kws_xs | store | 3000 | 2 | 130 ± 14 | 4.06 | 260 ± 14 | 0.85 ± 0.071 |")


def test_kit_versions_are_compared_with_the_earlier_one_as_the_baseline():
    def run(version, first_epoch, end_to_end):
        return {"model": "ds_cnn", "version": version, "steps_per_s_after_first_epoch": first_epoch,
                "steps_per_s_end_to_end": end_to_end, "test_accuracy": 0.9}

    table = kit_versions.summary_table([run("old", 5.0, 4.0), run("this kit", 10.0, 6.0)], ["old", "this kit"])
    rows = table.splitlines()[2:]
    assert rows[0] == "| ds_cnn | old | 1 | 5 | 1.00 | 4 | 1.00 | 0.9 |"
    assert rows[1] == "| ds_cnn | this kit | 1 | 10 | 2.00 | 6 | 1.50 | 0.9 |"

def test_the_comparison_prints_a_row_per_class_and_draws_the_histograms(small_dataset, tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "synthetic_vs_real.py"), "--recordings", str(small_dataset),
               "--data-dir", str(small_dataset), "--per-class", "5", "--out", str(tmp_path)]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rows = [line for line in printed.splitlines() if line.startswith("| ") and "---" not in line]
    # the small set has six keywords and no _silence_ folder: no "other words" and no silence rows
    assert [row.split(" | ")[0][2:] for row in rows] == ["class", "yes", "no", "up", "down", "left", "right",
                                                         "all words"]
    assert (tmp_path / "synthetic_vs_real.png").stat().st_size > 10000


def test_the_comparison_refuses_a_missing_folder_with_a_message(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "synthetic_vs_real.py"),
               "--recordings", str(tmp_path / "none")]
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 2 and "no folder" in finished.stderr


def test_the_comparison_names_an_unreadable_recording(small_dataset, tmp_path):
    (tmp_path / "yes").mkdir()
    (tmp_path / "yes" / "broken.wav").write_bytes(b"not a wav")
    command = [sys.executable, str(ROOT / "benchmarks" / "synthetic_vs_real.py"), "--recordings", str(tmp_path),
               "--data-dir", str(small_dataset)]
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 2 and "broken.wav" in finished.stderr


def test_kit_versions_refuses_a_schedule_too_short_to_time_an_epoch_after_the_first():
    command = [sys.executable, str(ROOT / "benchmarks" / "kit_versions.py"), "--steps", "200,50"]
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 1 and "more than 250 steps" in finished.stderr


def test_kit_versions_names_a_commit_it_cannot_check_out_and_leaves_no_worktree(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "kit_versions.py"), "--against", "no-such-commit",
               "--data-dir", str(tmp_path)]
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 1 and "Cannot check out no-such-commit" in finished.stderr
    worktrees = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True).stdout
    assert "kit-versions-" not in worktrees


def test_a_figure_over_runs_is_shown_as_mean_and_sample_spread():
    assert runs.mean_sd([1.0, 3.0]) == (2.0, 2 ** 0.5)
    assert runs.mean_and_spread([1.0, 3.0]) == "2 ± 1.4"
    assert runs.mean_and_spread([0.8125]) == "0.812"


def test_plus_minus_gives_mean_and_spread_with_fixed_decimals():
    assert runs.plus_minus(0.91234, 0.0213) == "0.912 ± 0.021"
    assert runs.plus_minus(*runs.mean_sd([12.0, 14.0]), decimals=1) == "13.0 ± 1.4"


def test_the_epoch_timer_leaves_out_the_first_epoch_and_gives_steps_per_second():
    timer = runs.EpochTimer()
    for epoch in range(3):
        timer.on_epoch_begin(epoch)
        timer.on_epoch_end(epoch)
    assert len(timer.seconds) == 2
    timer.seconds = [2.0, 3.0]
    assert timer.steps_per_second(250) == pytest.approx(100.0)


def test_the_epoch_timer_says_so_when_no_epoch_after_the_first_was_timed():
    with pytest.raises(ValueError, match="more than one epoch"):
        runs.EpochTimer().steps_per_second(250)


def test_train_and_convert_gives_the_run_s_best_checkpoint_and_both_models(audio_processor, model_settings, tmp_path):
    import keras

    from conftest import lab_flags

    keras.utils.set_random_seed(0)
    flags = lab_flags(tmp_path, how_many_training_steps="20,10", eval_step_interval=15)
    trained = runs.train_and_convert(runs.build_model(flags.model_name, model_settings), audio_processor, flags,
                                     tmp_path / "out")
    checkpoint = Path(trained.checkpoint)  # <train_dir>/<model>_<keywords>/<run>/best/<model>_<accuracy>.weights.h5
    assert checkpoint.parent.name == "best" and checkpoint.parents[3] == tmp_path / "training"
    assert trained.float_path == tmp_path / "out" / "micro_kws_xs.tflite" and trained.float_path.is_file()
    assert trained.int8_path == tmp_path / "out" / "micro_kws_xs_quantized.tflite" and trained.int8_path.is_file()
    assert 0.0 <= trained.test_accuracy <= 1.0


def test_the_model_step_table_gives_each_way_its_speed_and_its_ratio_to_the_first():
    results = [{"model": "ds_cnn", "way": way, "steps_per_s": speed}
               for way, speed in (("keras", 4.0), ("fused", 7.0), ("keras", 6.0), ("fused", 8.0))]
    table = model_step.ratio_table(results, ["keras", "fused"])
    assert table.splitlines()[2] == "| `ds_cnn` | 5.0 ± 1.4 | 7.5 ± 0.7 | 1.50 |"
