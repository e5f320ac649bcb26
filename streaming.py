"""Keyword spotting on a continuous recording, as the board does it.

On the microcontroller the model never sees a neat one-second clip. The firmware runs the micro
frontend on the microphone stream, invokes the model on the latest second of features again and
again, and turns the stream of scores into detections with TFLite-Micro's `RecognizeCommands`:
average each class's score over the last second, and report a command when the best average
passes a threshold, unless the same command was reported a moment ago.

This file holds what that needs besides the model itself (`test_tflite.detect_keywords` runs it):
- `recognize_commands`: that smoothing rule, over a whole sequence of scores;
- `make_stream`: a long recording of words at known times over background noise, from a folder in
  the Speech Commands layout, like TensorFlow's generate_streaming_test_wav.py;
- `stream_metrics` and `false_alarms_per_hour`: detections scored against the truth, like
  TensorFlow's test_streaming_accuracy.py (`stream_figures`: both, for one model's scores);
- `settings_table` and `choose_settings`: RecognizeCommands' averaging window and threshold chosen
  for a model on streams with known truth (the firmware's defaults suit TFLite-Micro's own model);
- `plot_stream`: the timeline picture.
"""

import csv
import glob
import os
from pathlib import Path

import numpy as np

import lab
from speech_commands import BACKGROUND_NOISE_DIR_NAME, SILENCE_INDEX, prepare_words_list, to_int16, which_set, write_wav

# RecognizeCommands' defaults in TFLite-Micro's micro_speech example.
AVERAGE_WINDOW_MS = 1000
DETECTION_THRESHOLD = 200  # of 255: an average probability above about 0.78
SUPPRESSION_MS = 1500
MINIMUM_COUNT = 3
# A detection counts for a spoken keyword when it comes within this time of the truth's time_ms.
TIME_TOLERANCE_MS = 750


# --- The firmware's smoothing rule ----------------------------------------------------------------


def recognize_commands(
    times_ms,
    scores,
    labels,
    average_window_ms=AVERAGE_WINDOW_MS,
    detection_threshold=DETECTION_THRESHOLD,
    suppression_ms=SUPPRESSION_MS,
    minimum_count=MINIMUM_COUNT,
):
    """TFLite-Micro's RecognizeCommands, fed one result after the other; returns its new commands.

    Args:
        times_ms: increasing times of the results, in ms from the start of the recording.
        scores: [len(times_ms), len(labels)] integer scores 0..255 (an int8 softmax output + 128).
        labels: class names; labels[0] is silence.

    For every result, as the firmware does: keep the results of the last average_window_ms (the
    newest included), and none if there are fewer than minimum_count or they span less than a
    quarter of the window; average each class's scores (integer division); the top class is a new
    command when its average is above detection_threshold and it differs from the previous command
    or came more than suppression_ms after it. After silence, any class may fire at once.
    (The firmware keeps at most 50 results; here the window keeps all of them.)

    Returns:
        [{"word", "time_ms", "score"}] for every new command, silence and unknown included.
    """
    times_ms = np.asarray(times_ms, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.int64)
    if scores.shape != (len(times_ms), len(labels)):
        raise ValueError(f"scores must be [{len(times_ms)} results, {len(labels)} labels], got {scores.shape}.")
    if np.any(np.diff(times_ms) < 0):
        raise ValueError("Results must come in increasing time order.")
    commands = []
    previous_label, previous_time = SILENCE_INDEX, None
    for newest, (now, first) in enumerate(zip(times_ms, _window_starts(times_ms, average_window_ms))):
        count = newest - first + 1
        if count < minimum_count or now - times_ms[first] < average_window_ms // 4:
            continue
        average = scores[first : newest + 1].sum(axis=0) // count
        top = int(np.argmax(average))  # the first of equal scores, as the firmware's strict ">"
        since_previous = np.inf if previous_label == SILENCE_INDEX else now - previous_time
        if average[top] > detection_threshold and (top != previous_label or since_previous > suppression_ms):
            previous_label, previous_time = top, int(now)
            commands.append({"word": labels[top], "time_ms": int(now), "score": int(average[top])})
    return commands


def _window_starts(times_ms, window_ms):
    """For every result, the index of the oldest result within window_ms before it (itself included)."""
    return np.searchsorted(times_ms, times_ms - window_ms, side="left")


def keyword_detections(times_ms, scores, wanted_words, **settings):
    """recognize_commands over a model's stream of scores, keeping the wanted words only: silence
    and unknown "commands" are the rule's way of saying that no keyword was heard."""
    commands = recognize_commands(times_ms, scores, prepare_words_list(wanted_words), **settings)
    return [c for c in commands if c["word"] in lab.keywords(wanted_words)]


# --- Streams with known truth -----------------------------------------------------------------------


def make_stream(
    data_dir,
    wanted_words,
    duration_s=60,
    keyword_share=0.5,
    word_interval_ms=2000,
    background_volume=0.1,
    split="testing",
    noise_dir=None,
    sample_rate=lab.SAMPLE_RATE,
    seed=0,
):
    """A long recording of one-second word clips over background noise, with its ground truth.

    Every word_interval_ms one clip lands at a random onset within the first half second of its
    slot: a wanted word with probability keyword_share, another word otherwise (keyword_share=0
    makes a keyword-free stream for counting false alarms). Clips come from one split of the
    folder (by the speaker hash, "testing" by default, so no training speaker is heard; None for
    all); the background is the wavs of noise_dir (default: the folder's _background_noise_) one
    after the other, looped and scaled by background_volume.

    Returns:
        (samples int16 [duration_s * sample_rate], truth): truth lists {"word", "time_ms"} of every
        keyword, time_ms being the end of its clip (when the whole word has been heard).
    """
    import data

    rng = np.random.default_rng(seed)
    wanted = [word.lower() for word in wanted_words]
    keywords, others = _clips_by_kind(Path(data_dir), wanted, split)
    if keyword_share > 0 and not any(keywords.values()):
        raise ValueError(f"No {split} clips of {wanted} in {data_dir}.")
    if keyword_share < 1 and not others:
        raise ValueError(f"No {split} clips of other words than {wanted} in {data_dir}.")
    length = int(duration_s * sample_rate)
    noise_dir = Path(noise_dir) if noise_dir else Path(data_dir) / BACKGROUND_NOISE_DIR_NAME
    mixed = background_volume * _looped_noise(noise_dir, length, sample_rate, rng)
    clip_samples = sample_rate  # one-second clips
    slot = int(word_interval_ms * sample_rate / 1000)
    truth = []
    for start in range(0, length - clip_samples - slot // 4 + 1, slot):
        onset = start + int(rng.integers(0, max(1, min(slot - clip_samples, sample_rate // 2) + 1)))
        if rng.random() < keyword_share:
            word = wanted[int(rng.integers(len(wanted)))]
            path = keywords[word][int(rng.integers(len(keywords[word])))]
            truth.append({"word": word, "time_ms": int((onset + clip_samples) * 1000 // sample_rate)})
        else:
            path = others[int(rng.integers(len(others)))]
        clip = data.fit_to_length(data.read_wav(path, sample_rate), clip_samples).astype(np.float64) / 32768
        mixed[onset : onset + clip_samples] += clip
    return to_int16(np.clip(mixed, -1.0, 32767 / 32768)), truth


def _clips_by_kind(data_dir, wanted, split):
    """({keyword: [paths]}, [paths of other words]) of one split of a Speech Commands folder."""
    keywords, others = {word: [] for word in wanted}, []
    for path in sorted(glob.glob(os.path.join(glob.escape(str(data_dir)), "*", "*.wav"))):
        word = os.path.basename(os.path.dirname(path)).lower()
        in_split = which_set(path, lab.VALIDATION_PERCENTAGE, lab.TESTING_PERCENTAGE) == split
        if word.startswith("_") or (split and not in_split):
            continue
        (keywords[word] if word in keywords else others).append(path)
    return keywords, others


def _looped_noise(noise_dir, length, sample_rate, rng):
    """`length` samples of the folder's noise recordings (float, full scale 1), from a random start."""
    import data

    paths = sorted(noise_dir.glob("*.wav"))
    if not paths:
        raise ValueError(f"{noise_dir} holds no noise recordings (*.wav).")
    noise = np.concatenate([data.read_wav(path, sample_rate) for path in paths]).astype(np.float64) / 32768
    start = int(rng.integers(len(noise)))
    return np.resize(np.roll(noise, -start), length)


def write_stream(wav_path, samples, truth, sample_rate=lab.SAMPLE_RATE):
    """Writes the stream as a 16-bit mono wav and its truth beside it as <name>.csv (word,time_ms)."""
    wav_path = Path(wav_path)
    write_wav(wav_path, samples, sample_rate)
    truth_path = wav_path.with_suffix(".csv")
    with open(truth_path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["word", "time_ms"])
        writer.writerows((item["word"], item["time_ms"]) for item in truth)
    return wav_path, truth_path


def read_truth(csv_path):
    """The ground truth written by write_stream: [{"word", "time_ms"}]."""
    with open(csv_path, newline="") as file:
        rows = list(csv.DictReader(file))
    if rows and not {"word", "time_ms"} <= set(rows[0]):
        raise ValueError(f"{csv_path}: expected the columns word,time_ms, found {', '.join(rows[0])}.")
    return [{"word": row["word"], "time_ms": int(float(row["time_ms"]))} for row in rows]


# --- Scoring the detections ---------------------------------------------------------------------------


def stream_metrics(detections, truth, time_tolerance_ms=TIME_TOLERANCE_MS):
    """Detections against the ground truth, as TensorFlow's StreamingAccuracyStats counts them.

    In time order, each detection takes the nearest not yet taken truth within time_tolerance_ms:
    "matched" when the words agree, "wrong" when they differ; a detection with no truth near is a
    "false alarm". Truth that no detection took is "missed".

    Returns:
        dict with keywords (truth count), matched, wrong, missed, false_alarms, and each of the
        first four as a share of the keywords (matched_rate, ...; None without truth).
    """
    taken = [False] * len(truth)
    matched = wrong = false_alarms = 0
    for detection in sorted(detections, key=lambda d: d["time_ms"]):
        near = [(abs(item["time_ms"] - detection["time_ms"]), i) for i, item in enumerate(truth)
                if not taken[i] and abs(item["time_ms"] - detection["time_ms"]) <= time_tolerance_ms]
        if not near:
            false_alarms += 1
            continue
        _, index = min(near)
        taken[index] = True
        if truth[index]["word"] == detection["word"]:
            matched += 1
        else:
            wrong += 1
    result = {"keywords": len(truth), "matched": matched, "wrong": wrong,
              "missed": len(truth) - sum(taken), "false_alarms": false_alarms}
    for key in ("matched", "wrong", "missed", "false_alarms"):
        result[key + "_rate"] = result[key] / len(truth) if truth else None
    return result


def false_alarms_per_hour(detections, duration_s):
    """Detections per hour of a keyword-free stream (every one of them is a false alarm)."""
    return len(detections) * 3600.0 / duration_s


# --- Choosing RecognizeCommands' settings for a model -------------------------------------------------

AVERAGE_WINDOWS_MS = (250, 500, 750, 1000)  # the settings choose_settings tries
DETECTION_THRESHOLDS = tuple(range(100, 250, 10))
MAX_FALSE_ALARMS_PER_HOUR = 10


def stream_figures(stream, truth, keyword_free, keyword_free_s, wanted_words, **recognize_settings):
    """One model's detections with these RecognizeCommands settings (none: the firmware's), scored:
    stream_metrics on the keyword stream, and keyword_free_false_alarms_per_hour.

    stream and keyword_free are (times_ms, scores) of the model on a stream with known truth and on
    a keyword-free stream of keyword_free_s seconds (test_tflite.stream_scores).
    """
    detections = keyword_detections(*stream, wanted_words, **recognize_settings)
    alarms = keyword_detections(*keyword_free, wanted_words, **recognize_settings)
    return {**stream_metrics(detections, truth),
            "keyword_free_false_alarms_per_hour": false_alarms_per_hour(alarms, keyword_free_s)}


def settings_table(stream, truth, keyword_free, keyword_free_s, wanted_words,
                   average_windows_ms=AVERAGE_WINDOWS_MS, detection_thresholds=DETECTION_THRESHOLDS):
    """How each RecognizeCommands setting does with one model: a list of rows, each the setting
    {average_window_ms, detection_threshold} and its stream_figures. The model is run once (its
    scores are the arguments), each setting only re-reads its scores.
    """
    rows = []
    for window in average_windows_ms:
        for threshold in detection_thresholds:
            settings = {"average_window_ms": window, "detection_threshold": threshold}
            rows.append({**settings, **stream_figures(stream, truth, keyword_free, keyword_free_s, wanted_words,
                                                      **settings)})
    return rows


def choose_settings(rows, max_false_alarms_per_hour=MAX_FALSE_ALARMS_PER_HOUR):
    """The row of settings_table that finds the most keywords (matched less wrong) with at most
    max_false_alarms_per_hour on the keyword-free stream; ties go to fewer false alarms there, then
    in the keyword stream, then to the higher threshold. Where no row keeps to the limit: the row
    with the fewest false alarms per hour (ties: the most keywords found).

    Choose on streams the model is not measured on (the synthetic validation split, say): settings
    chosen on the measured stream flatter it.
    """
    def found(row):
        return row["matched"] - row["wrong"]

    within = [row for row in rows if row["keyword_free_false_alarms_per_hour"] <= max_false_alarms_per_hour]
    if within:
        return max(within, key=lambda row: (found(row), -row["keyword_free_false_alarms_per_hour"],
                                            -row["false_alarms"], row["detection_threshold"]))
    return min(rows, key=lambda row: (row["keyword_free_false_alarms_per_hour"], -found(row)))


# --- The timeline picture ---------------------------------------------------------------------------


def plot_stream(samples, sample_rate, times_ms, scores, labels, detections, truth=()):
    """Waveform, smoothed scores per class, and detections against the truth, on one time axis."""
    import matplotlib.pyplot as plt

    figure, (wave_axis, score_axis) = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    seconds = np.arange(len(samples)) / sample_rate
    wave_axis.plot(seconds, np.asarray(samples) / 32768, linewidth=0.3, color="0.4")
    wave_axis.set_ylabel("waveform")
    smoothed = _moving_average(np.asarray(scores, float), np.asarray(times_ms), AVERAGE_WINDOW_MS)
    for index, label in enumerate(labels):
        # "_silence_" -> "silence": matplotlib leaves labels that start with "_" out of the legend.
        score_axis.plot(np.asarray(times_ms) / 1000, smoothed[:, index], label=label.strip("_"), linewidth=1)
    score_axis.axhline(DETECTION_THRESHOLD, color="k", linestyle=":", linewidth=0.8)
    for axis in (wave_axis, score_axis):
        for item in truth:
            axis.axvline(item["time_ms"] / 1000, color="tab:green", alpha=0.35, linewidth=4)
    for detection in detections:
        score_axis.annotate(detection["word"], (detection["time_ms"] / 1000, 250), ha="center", fontsize=8,
                            color="tab:red")
        score_axis.axvline(detection["time_ms"] / 1000, color="tab:red", linewidth=0.8)
    score_axis.set_ylim(0, 265)
    score_axis.set_ylabel(f"score, mean of {AVERAGE_WINDOW_MS} ms")
    score_axis.set_xlabel("time (s); green: keywords spoken, red: detections")
    score_axis.legend(loc="upper right", fontsize=8, ncol=len(labels))
    figure.tight_layout()
    return figure


def _moving_average(scores, times_ms, window_ms):
    """Each row's mean over the rows of the last window_ms (for the picture; the rule is above)."""
    sums = np.concatenate([np.zeros((1, scores.shape[1])), np.cumsum(scores, axis=0)])
    newest = np.arange(len(times_ms))
    first = _window_starts(times_ms, window_ms)
    return (sums[newest + 1] - sums[first]) / (newest - first + 1)[:, None]
