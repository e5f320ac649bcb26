"""Keyword spotting on a continuous recording: the firmware's smoothing rule, streams, metrics."""

import numpy as np
import pytest

import data
import streaming
import test_tflite

LABELS = ["_silence_", "_unknown_", "yes", "no"]
STEP_MS = 20


def _scores(rows):
    """[(label index, how many results)] -> times every 20 ms and one-hot 0/255 scores."""
    scores = []
    for label, count in rows:
        one_hot = np.zeros(len(LABELS), np.int64)
        one_hot[label] = 255
        scores += [one_hot] * count
    return np.arange(len(scores)) * STEP_MS, np.array(scores)


def test_the_stream_picture_has_a_legend_entry_for_every_score_line():
    import matplotlib

    matplotlib.use("Agg")
    times, scores = _scores([(0, 60), (2, 60), (1, 60), (3, 60)])
    detections = streaming.keyword_detections(times, scores, ["yes", "no"])
    figure = streaming.plot_stream(np.zeros(16000 * 5, np.int16), 16000, times, scores, LABELS, detections)
    score_axis = figure.axes[1]
    legend = [text.get_text() for text in score_axis.get_legend().get_texts()]
    assert legend == ["silence", "unknown", "yes", "no"]
    assert len(legend) == len([line for line in score_axis.get_lines() if len(line.get_xdata()) > 2])


# --- recognize_commands, on hand-made scores ---------------------------------------------------------


def test_a_keyword_fires_when_its_one_second_average_passes_200():
    times, scores = _scores([(0, 60), (2, 80)])
    commands = [c for c in streaming.recognize_commands(times, scores, LABELS) if c["word"] == "yes"]
    # The window holds the 51 results of the last 1000 ms; 41 of 255 average 205 > 200, 40 give 200.
    assert commands[0]["time_ms"] == times[60 + 40]
    assert commands[0]["score"] == 41 * 255 // 51


def test_the_same_keyword_is_suppressed_for_1500_ms():
    times, scores = _scores([(2, 300)])
    fired = [c["time_ms"] for c in streaming.recognize_commands(times, scores, LABELS)]
    assert np.all(np.diff(fired) == 1520)  # the first result more than 1500 ms later


def test_another_keyword_fires_without_waiting_for_the_suppression():
    times, scores = _scores([(2, 120), (3, 60)])
    commands = streaming.recognize_commands(times, scores, LABELS)
    last_yes = [c["time_ms"] for c in commands if c["word"] == "yes"][-1]
    first_no = [c["time_ms"] for c in commands if c["word"] == "no"][0]
    assert first_no == times[120 + 40]  # as soon as its average passes 200
    assert first_no - last_yes < 1500


def test_the_average_is_an_integer_division_as_on_the_board():
    # 201, 201, 199 average 200.33: the firmware's integer average is 200, not above the threshold.
    times = [0, 300, 600]
    scores = [[0, 0, 201, 54], [0, 0, 201, 54], [0, 0, 199, 56]]
    assert streaming.recognize_commands(times, scores, LABELS) == []
    scores[2][2] = 202
    assert [c["word"] for c in streaming.recognize_commands(times, scores, LABELS)] == ["yes"]


def test_too_few_results_in_the_window_give_no_command():
    times, scores = [0, 500], [[0, 0, 255, 0]] * 2
    assert streaming.recognize_commands(times, scores, LABELS) == []
    assert streaming.recognize_commands(times, scores, LABELS, minimum_count=2) != []


def test_results_out_of_time_order_are_refused():
    with pytest.raises(ValueError, match="increasing time"):
        streaming.recognize_commands([0, 40, 20], [[255, 0, 0, 0]] * 3, LABELS)


# --- stream_metrics ----------------------------------------------------------------------------------


def test_stream_metrics_count_matched_wrong_missed_and_false_alarms():
    truth = [{"word": "yes", "time_ms": 2000}, {"word": "no", "time_ms": 5000}, {"word": "yes", "time_ms": 9000}]
    detections = [
        {"word": "yes", "time_ms": 2300},  # matched
        {"word": "yes", "time_ms": 5200},  # wrong: "no" was said
        {"word": "no", "time_ms": 7000},  # false alarm: nothing said near
    ]
    metrics = streaming.stream_metrics(detections, truth)
    assert (metrics["matched"], metrics["wrong"], metrics["missed"], metrics["false_alarms"]) == (1, 1, 1, 1)
    assert metrics["matched_rate"] == pytest.approx(1 / 3)


def test_a_keyword_detected_twice_counts_once_and_the_second_is_a_false_alarm():
    truth = [{"word": "yes", "time_ms": 2000}]
    detections = [{"word": "yes", "time_ms": 2100}, {"word": "yes", "time_ms": 2600}]
    metrics = streaming.stream_metrics(detections, truth)
    assert (metrics["matched"], metrics["false_alarms"]) == (1, 1)


def test_false_alarms_per_hour():
    assert streaming.false_alarms_per_hour([{}] * 3, duration_s=1800) == 6.0


# --- Choosing RecognizeCommands' settings ---------------------------------------------------------------


def _brief_yes_stream():
    """A "yes" scored 255 for 300 ms among silence, said at 2 s: its one-second average (about 76) stays
    below silence's, its 250 ms average reaches 255. The keyword-free stream has one 300 ms "no"."""
    stream = _scores([(0, 85), (2, 15), (0, 100)])
    keyword_free = _scores([(0, 85), (3, 15), (0, 100)])
    return stream, [{"word": "yes", "time_ms": 2000}], keyword_free


def test_the_settings_table_scores_every_window_and_threshold_on_the_same_scores():
    stream, truth, keyword_free = _brief_yes_stream()
    rows = streaming.settings_table(stream, truth, keyword_free, 4, ["yes", "no"],
                                    average_windows_ms=(250, 1000), detection_thresholds=(50, 200))
    found = {(row["average_window_ms"], row["detection_threshold"]): row["matched"] for row in rows}
    assert found == {(250, 50): 1, (250, 200): 1, (1000, 50): 0, (1000, 200): 0}
    alarms = {(row["average_window_ms"], row["detection_threshold"]): row["keyword_free_false_alarms_per_hour"]
              for row in rows}
    assert alarms[(250, 200)] == 900.0 and alarms[(1000, 200)] == 0.0


def _row(window, threshold, matched, per_hour, false_alarms=0):
    return {"average_window_ms": window, "detection_threshold": threshold, "matched": matched, "wrong": 0,
            "false_alarms": false_alarms, "keyword_free_false_alarms_per_hour": per_hour}


def test_the_chosen_settings_find_the_most_keywords_within_the_false_alarm_limit():
    rows = [_row(250, 100, 90, 40.0), _row(500, 150, 70, 8.0), _row(1000, 200, 20, 0.0)]
    assert streaming.choose_settings(rows, max_false_alarms_per_hour=10) == rows[1]


def test_of_settings_that_find_as_many_keywords_the_one_with_fewer_false_alarms_is_chosen():
    rows = [_row(250, 120, 70, 6.0), _row(500, 150, 70, 6.0, false_alarms=1), _row(750, 140, 70, 0.0)]
    assert streaming.choose_settings(rows) == rows[2]


def test_a_setting_that_finds_more_keywords_but_as_many_more_wrong_ones_is_not_preferred():
    rows = [_row(250, 100, 80, 6.0), _row(500, 150, 75, 6.0)]
    rows[0]["wrong"] = 10
    assert streaming.choose_settings(rows) == rows[1]


def test_of_equal_settings_the_one_with_fewer_false_alarms_in_the_keyword_stream_then_the_higher_threshold_wins():
    rows = [_row(250, 120, 70, 6.0, false_alarms=2), _row(500, 130, 70, 6.0), _row(750, 160, 70, 6.0)]
    assert streaming.choose_settings(rows) == rows[2]
    assert streaming.choose_settings(rows[:2]) == rows[1]


def test_where_no_setting_keeps_the_limit_the_one_with_the_fewest_false_alarms_is_chosen():
    rows = [_row(250, 100, 90, 400.0), _row(1000, 240, 5, 30.0), _row(750, 240, 9, 30.0)]
    assert streaming.choose_settings(rows, max_false_alarms_per_hour=10) == rows[2]


# --- make_stream ---------------------------------------------------------------------------------------


def test_a_stream_has_the_asked_length_and_truth_at_the_ends_of_keyword_clips(small_dataset):
    samples, truth = streaming.make_stream(small_dataset, ["yes", "no"], duration_s=20, seed=3)
    assert samples.dtype == np.int16 and len(samples) == 20 * 16000
    assert truth and {item["word"] for item in truth} <= {"yes", "no"}
    assert all(1000 <= item["time_ms"] <= 20000 for item in truth)
    assert np.all(np.diff([item["time_ms"] for item in truth]) >= 1500)


def test_a_stream_is_the_same_for_a_seed_and_differs_for_another(small_dataset):
    first, truth = streaming.make_stream(small_dataset, ["yes", "no"], duration_s=10, seed=1)
    again, truth_again = streaming.make_stream(small_dataset, ["yes", "no"], duration_s=10, seed=1)
    other, _ = streaming.make_stream(small_dataset, ["yes", "no"], duration_s=10, seed=2)
    np.testing.assert_array_equal(first, again)
    assert truth == truth_again and not np.array_equal(first, other)


def test_a_keyword_free_stream_has_no_truth(small_dataset):
    _, truth = streaming.make_stream(small_dataset, ["yes", "no"], duration_s=10, keyword_share=0.0)
    assert truth == []


def test_a_written_stream_reads_back_with_its_truth(small_dataset, tmp_path):
    samples, truth = streaming.make_stream(small_dataset, ["yes"], duration_s=6, seed=0)
    wav_path, truth_path = streaming.write_stream(tmp_path / "stream.wav", samples, truth)
    np.testing.assert_array_equal(data.read_wav(wav_path, 16000), samples)
    assert streaming.read_truth(truth_path) == truth


# --- Features and scores over a whole recording ----------------------------------------------------------


def _speech_like_stream(seconds=3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(seconds * 16000) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t)
    tone = np.sin(2 * np.pi * (300 + 200 * np.sin(2 * np.pi * 0.7 * t)) * t)
    return data.to_int16(0.3 * envelope * tone + 0.01 * rng.standard_normal(len(t)))


def test_the_first_second_of_a_stream_has_the_features_of_that_second_as_a_clip(model_settings):
    samples = _speech_like_stream()
    stream = data.stream_features(samples, model_settings)
    clip = data.compute_features(samples[:16000], model_settings)
    np.testing.assert_array_equal(stream[: model_settings["spectrogram_length"]], clip)


def test_later_stream_features_carry_the_frontend_state_instead_of_restarting(model_settings):
    samples = _speech_like_stream()
    stream = data.stream_features(samples, model_settings)
    # The second second starts at frame 50 (50 frames x 320 samples = 16000 samples).
    restarted = data.compute_features(samples[16000:32000], model_settings)
    assert len(stream) == 1 + (len(samples) - 480) // 320
    assert not np.array_equal(stream[50:99], restarted)


@pytest.fixture(scope="module")
def loudness_model(audio_processor, model_settings, tmp_path_factory):
    """An int8 'yes' detector by loudness for the labels silence, unknown, yes: a window whose
    features average above 1.0 is "yes", a quieter one silence. No training, so its detections on a
    stream of words over silence are known in advance."""
    import keras

    import convert

    settings = dict(model_settings, label_count=3)
    inputs = keras.Input(shape=(settings["fingerprint_size"],))
    outputs = keras.layers.Dense(3, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    k, size = 6.0, settings["fingerprint_size"]
    weights = np.zeros((size, 3), np.float32)
    weights[:, 0], weights[:, 2] = -k / size, k / size
    model.layers[-1].set_weights([weights, np.array([k, -8.0, -k], np.float32)])
    path = tmp_path_factory.mktemp("loudness") / "loudness.tflite"
    return convert.convert(model, audio_processor, None, True, "int8", path), settings


@pytest.mark.slow
def test_stream_scores_are_the_model_on_each_window_of_the_whole_recording_features(loudness_model):
    path, settings = loudness_model
    samples = _speech_like_stream(seconds=2)
    times, scores = test_tflite.stream_scores(path, samples, settings, runtime="litert_reference", stride_frames=7)
    features = data.stream_features(samples, settings)
    model = test_tflite.TFLiteModel(path, "litert_reference")
    for i, newest in enumerate(range(48, len(features), 7)):
        window = features[newest - 48 : newest + 1].reshape(-1)
        np.testing.assert_array_equal(scores[i], model.output_values(model.quantize_input(window)).astype(int) + 128)
        assert times[i] == newest * 20 + 30  # the end of the newest frame


@pytest.mark.slow
def test_detect_keywords_finds_the_words_of_a_stream_at_their_times(loudness_model, small_dataset, tmp_path):
    path, settings = loudness_model
    samples, truth = streaming.make_stream(small_dataset, ["yes"], duration_s=30, keyword_share=1.0,
                                           background_volume=0.0, seed=0)
    wav_path, _ = streaming.write_stream(tmp_path / "words.wav", samples, truth)
    detections = test_tflite.detect_keywords(path, wav_path, ["yes"], settings, runtime="litert_reference")
    metrics = streaming.stream_metrics(detections, truth)
    assert metrics["matched"] >= 0.8 * len(truth), (metrics, detections, truth)
    assert metrics["false_alarms"] <= 1, (metrics, detections, truth)


@pytest.mark.slow
def test_detect_keywords_reports_nothing_on_silence(loudness_model, tmp_path):
    path, settings = loudness_model
    wav_path, _ = streaming.write_stream(tmp_path / "quiet.wav", np.zeros(5 * 16000, np.int16), [])
    assert test_tflite.detect_keywords(path, wav_path, ["yes"], settings, runtime="litert_reference") == []


@pytest.mark.slow
def test_the_command_line_scores_a_stream_against_its_truth(loudness_model, small_dataset, tmp_path, capsys):
    path, _ = loudness_model
    samples, truth = streaming.make_stream(small_dataset, ["yes"], duration_s=10, keyword_share=1.0,
                                           background_volume=0.0, seed=1)
    wav_path, truth_path = streaming.write_stream(tmp_path / "words.wav", samples, truth)
    test_tflite.main([str(path), "--stream", str(wav_path), "--truth", str(truth_path), "--wanted-words", "yes",
                      "--runtime", "litert_reference"])
    assert f"{len(truth)} keywords spoken:" in capsys.readouterr().out
