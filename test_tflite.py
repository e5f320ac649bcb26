"""Testing a converted .tflite model, on LiteRT or on TFLite-Micro's own kernels.

`tflite_test` runs a model over a split of the dataset, as the lab's notebook does, on one of three
runtimes ("tflm", "litert_reference", "litert": see runtimes.py, where it and TFLiteModel live).
Here: how far two runtimes lie apart, real recordings, and keyword detection on a long recording.

(A kit helper, not a pytest file: the tests live in tests/.)
"""

from pathlib import Path

import numpy as np

# The runtimes, the device's fallback and tflite_test live in runtimes.py; the notebook and the
# student tests know them under this module's name.
from runtimes import (  # noqa: F401 (the names the notebook and the student tests use)
    DEVICE_FIGURES,
    MODES,
    RUNTIMES,
    TFLM_MISSING,
    TFLiteModel,
    check_input_size,
    device_runtime,
    tflite_micro_available,
    tflite_test,
)
from speech_commands import SILENCE_INDEX, SILENCE_LABEL, UNKNOWN_WORD_INDEX, prepare_words_list
from test import get_accuracy, get_confusion_matrix


def compare_runtimes(tflite_path, features, runtimes=("litert_reference", "tflm"), tie_steps=16):
    """How far two runtimes' raw outputs (int8 steps) lie apart on the same feature vectors.

    Kernels round differently, so outputs may differ by a few steps, and a
    prediction can flip where the two best classes lie close together. Returns a dict: runtimes,
    count, max_difference (steps), share_differing (share of the examples with any output
    different), decisive (examples whose two best classes lie more than tie_steps apart in the
    first runtime) and decisive_agreement (share of those both runtimes classify alike).
    """
    first, second = (TFLiteModel(tflite_path, runtime) for runtime in runtimes)
    inputs = [first.quantize_input(x) for x in features]
    a = np.stack([first.output_values(x) for x in inputs]).astype(np.int64)
    b = np.stack([second.output_values(x) for x in inputs]).astype(np.int64)
    difference = np.abs(a - b)
    top_two = np.sort(a, axis=1)[:, -2:]
    decisive = (top_two[:, 1] - top_two[:, 0]) > tie_steps
    same_class = np.argmax(a, axis=1) == np.argmax(b, axis=1)
    return {
        "runtimes": tuple(runtimes),
        "count": len(a),
        "max_difference": int(difference.max()),
        "share_differing": float(np.mean(difference.any(axis=1))),
        "decisive": int(decisive.sum()),
        "decisive_agreement": float(np.mean(same_class[decisive])) if decisive.any() else 1.0,
    }


# --- Real recordings -----------------------------------------------------------------------------


def find_recordings(recordings_dir, wanted_words):
    """(path, label index) of every wav in a Speech Commands layout folder.

    <dir>/<word>/*.wav: a wanted word is its own class, any other word is unknown;
    <dir>/_silence_/*.wav is silence; other folders starting with "_" are skipped.
    """
    recordings_dir = Path(recordings_dir)
    if not recordings_dir.is_dir():
        raise FileNotFoundError(f"No folder {recordings_dir}.")
    words = prepare_words_list(wanted_words)
    found = []
    for folder in sorted(p for p in recordings_dir.iterdir() if p.is_dir()):
        name = folder.name.lower()
        if name == SILENCE_LABEL:
            label = SILENCE_INDEX
        elif name.startswith("_"):
            continue
        else:
            label = words.index(name) if name in words else UNKNOWN_WORD_INDEX
        found += [(path, label) for path in sorted(folder.iterdir()) if path.suffix.lower() == ".wav"]
    if not found:
        raise ValueError(
            f"No recordings in {recordings_dir}: expected <word>/*.wav (and _silence_/*.wav) folders."
        )
    return found


def evaluate_recordings(tflite_path, recordings_dir, wanted_words, model_settings, runtime="litert"):
    """Classifies real recordings exactly as the firmware would, and scores the model.

    Each clip is read (any PCM wav: downmixed to mono and resampled), zero-padded at the end if
    shorter than the clip duration or cut to its loudest window if longer, turned into micro
    frontend features, quantized with the model's own input scale and zero point, and classified.

    Returns a dict with accuracy, balanced_accuracy (mean recall over the classes present),
    confusion_matrix (rows expected, columns predicted, classes as speech_commands.prepare_words_list),
    count, errors [(file, expected, predicted)], cut (files longer than a clip), unreadable
    [(file, reason)] (left out, the others still scored) and per_class recall.
    """
    model = TFLiteModel(tflite_path, runtime)
    check_input_size(model, model_settings)
    words = prepare_words_list(wanted_words)
    expected, predicted, errors, cut, unreadable = [], [], [], [], []
    for path, label in find_recordings(recordings_dir, wanted_words):
        try:
            features, was_cut = recording_features(path, model_settings)
        except ValueError as error:
            unreadable.append((str(path), str(error)))
            continue
        if was_cut:
            cut.append(str(path))
        guess = int(np.argmax(model.predict(features.reshape(-1))))
        expected.append(label)
        predicted.append(guess)
        if guess != label:
            errors.append((str(path), words[label], words[guess]))
    if not expected:
        raise ValueError(f"None of the recordings in {recordings_dir} could be read: "
                         + "; ".join(reason for _, reason in unreadable[:5]))
    confusion_matrix = get_confusion_matrix(expected, predicted, model_settings)
    recall = recall_per_class(confusion_matrix)
    return {
        "accuracy": get_accuracy(expected, predicted),
        "balanced_accuracy": float(np.mean(list(recall.values()))),
        "confusion_matrix": confusion_matrix,
        "count": len(expected),
        "errors": errors,
        "cut": cut,
        "unreadable": unreadable,
        "per_class": {words[i]: r for i, r in recall.items()},
    }


def recording_features(path, model_settings):
    """(flat micro features, whether it was cut) of one recording, as the firmware would see it.

    Any PCM wav is read as mono at the model's rate; a clip longer than the model's is cut to its
    loudest window, a shorter one zero-padded at the end.
    """
    import data

    samples = data.load_recording(path, model_settings["sample_rate"])
    cut = len(samples) > model_settings["desired_samples"]
    if cut:
        samples = data.loudest_window(samples, model_settings["desired_samples"])
    return data.compute_features(samples, model_settings, micro=True).reshape(-1), cut


def recall_per_class(confusion_matrix):
    """{class index: recall} for every class with at least one example (rows are expected classes)."""
    confusion_matrix = np.asarray(confusion_matrix)
    totals = confusion_matrix.sum(axis=1)
    return {int(i): float(confusion_matrix[i, i] / totals[i]) for i in np.flatnonzero(totals)}


# --- Continuous recordings: what the board will do ---------------------------------------------------


def stream_scores(tflite_path, samples, model_settings, runtime=None, stride_frames=1):
    """The model's scores over a long recording, as the firmware computes them.

    The micro frontend runs once over the whole recording with its state carried
    (data.stream_features); every stride_frames feature frames, the latest spectrogram_length
    frames are quantized with the model's own input scale and zero point and classified.

    Returns:
        (times_ms, scores): the time of each result (the end of its newest frame, in ms from the
        start of the recording) and its scores 0..255 per class (int8 output + 128, as
        RecognizeCommands reads them; a float model's probabilities * 256).
    """
    import data

    model = TFLiteModel(tflite_path, runtime or device_runtime())
    check_input_size(model, model_settings)
    features = data.stream_features(samples, model_settings)
    frames = model_settings["spectrogram_length"]
    stride_ms = model_settings["window_stride_samples"] * 1000 / model_settings["sample_rate"]
    window_ms = model_settings["window_size_samples"] * 1000 / model_settings["sample_rate"]
    times_ms, scores = [], []
    for newest in range(frames - 1, len(features), stride_frames):
        window = features[newest - frames + 1 : newest + 1].reshape(-1)
        output = model.output_values(model.quantize_input(window))
        if model.output["dtype"] == np.float32:
            score = np.clip(np.floor(output * 256), 0, 255)
        else:
            score = output.astype(np.int64) + 128
        times_ms.append(int(round(newest * stride_ms + window_ms)))
        scores.append(score.astype(np.int64))
    return np.array(times_ms, np.int64), np.array(scores, np.int64).reshape(len(times_ms), -1)


def detect_keywords(tflite_path, wav_path, wanted_words, model_settings, runtime=None, stride_frames=1,
                    **recognize_settings):
    """Keywords the board would detect in a recording: [{"word", "time_ms", "score"}].

    stream_scores (the frontend over the whole recording, the model every stride_frames frames)
    and then TFLite-Micro's RecognizeCommands (streaming.recognize_commands; average_window_ms,
    detection_threshold, suppression_ms and minimum_count can be given). Only wanted words are
    returned: silence and unknown "commands" are the rule's way of saying nothing was heard.
    runtime: None for the device's (TFLite-Micro where installed, else LiteRT's reference
    kernels). Any wav evaluate_recordings reads is accepted (resampled and downmixed).
    """
    import data
    import streaming

    samples = data.load_recording(wav_path, model_settings["sample_rate"])
    times_ms, scores = stream_scores(tflite_path, samples, model_settings, runtime, stride_frames)
    return streaming.keyword_detections(times_ms, scores, wanted_words, **recognize_settings)


def print_stream_report(detections, metrics=None):
    """Each detection, then the streaming metrics when the truth was known."""
    for detection in detections:
        print(f"{detection['time_ms'] / 1000:8.2f} s  {detection['word']:<10} score {detection['score']}")
    if metrics:
        print(f"{metrics['keywords']} keywords spoken: {metrics['matched']} matched, {metrics['wrong']} "
              f"wrong, {metrics['missed']} missed; {metrics['false_alarms']} false alarm(s).")


def print_recordings_report(result, class_names=None):
    """The per-class table, balanced accuracy, confusion matrix and misclassified files."""
    matrix = result["confusion_matrix"]
    names = class_names or list(result["per_class"])
    print(f"{result['count']} recordings: accuracy {result['accuracy']:.3f}, "
          f"balanced accuracy {result['balanced_accuracy']:.3f}")
    print(f"{'class':<12}{'clips':>6}{'recall':>8}")
    for index, name in enumerate(names):
        clips = int(matrix[index].sum())
        if clips:
            print(f"{name:<12}{clips:>6}{matrix[index, index] / clips:>8.3f}")
    print("confusion matrix (rows: expected, columns: predicted):")
    print(matrix)
    if result["cut"]:
        print(f"{len(result['cut'])} recording(s) longer than a clip were cut to their loudest second.")
    if result["unreadable"]:
        print(f"{len(result['unreadable'])} recording(s) could not be read and were left out:")
        for path, reason in result["unreadable"]:
            print(f"  {reason}")
    if result["errors"]:
        print("misclassified:")
        for path, expected, predicted in result["errors"]:
            print(f"  {path}: {expected} -> {predicted}")


def main(argv=None):
    import argparse

    import lab

    parser = argparse.ArgumentParser(
        description="Check a .tflite keyword model on real recordings (--recordings) or on one long "
                    "recording, as the board would run it (--stream).")
    parser.add_argument("model", help="the .tflite file")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--recordings", help="folder in the Speech Commands layout")
    source.add_argument("--stream", help="a long wav: detections as the firmware makes them")
    parser.add_argument("--truth", help="with --stream: ground truth CSV (word,time_ms) to score against")
    parser.add_argument("--wanted-words", default="yes,no")
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="default: litert for --recordings, the device's for --stream (tflm, or "
                             "litert_reference where TFLite-Micro is not installed)")
    args = parser.parse_args(argv)
    wanted_words = lab.keywords(args.wanted_words)
    model_settings = lab.model_settings(wanted_words)
    try:
        if args.recordings:
            result = evaluate_recordings(args.model, args.recordings, wanted_words, model_settings,
                                         args.runtime or "litert")
            print_recordings_report(result, prepare_words_list(wanted_words))
        else:
            import streaming

            truth = streaming.read_truth(args.truth) if args.truth else None
            runtime = args.runtime or device_runtime()
            if args.runtime is None:
                print(f"Device figures: {DEVICE_FIGURES[runtime]}")
            detections = detect_keywords(args.model, args.stream, wanted_words, model_settings, runtime)
            print_stream_report(detections, streaming.stream_metrics(detections, truth) if truth else None)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
