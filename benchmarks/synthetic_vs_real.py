#!/usr/bin/env python3
"""Where does the synthetic set differ from real speech? Measures both, class by class.

    python benchmarks/synthetic_vs_real.py --recordings DIR [--data-dir SYNTHETIC_DIR]
                                           [--per-class 200] [--out build/synthetic_vs_real]

DIR holds real recordings in the Speech Commands layout (`<word>/*.wav`, `_silence_/*.wav`), e.g.
../shared/realdev; SYNTHETIC_DIR is the synthetic set (default: the kit's default set, made on
first use). For every class (each keyword with enough real clips, the other words pooled, all
words pooled, and silence) it prints a Markdown table of the medians (10th-90th percentile) of:

- active speech: the 20 ms frames within 20 dB of the clip's loudest frame; its duration
  (first to last active frame) and onset;
- peak level (loudest frame) and RMS level of the active span, in dB re one int16 step
  (a full-scale square wave is 90.3 dB);
- noise floor: the 10th percentile of the frame levels;
- spectral tilt: energy above 2 kHz against energy below it, in dB, over the active span;
- feature gap: how far the micro features' per-channel means lie apart, in pooled standard
  deviations, averaged over the channels (0 = the same).

It also draws side-by-side histograms and the per-channel feature means into OUT.
Synthetic silence is made as training makes it: a one-second slice of a background-noise file
at a volume drawn from [0, 1] (data.AudioProcessor).
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import data  # noqa: E402
import lab  # noqa: E402
import synthetic  # noqa: E402

FRAME_SECONDS = 0.02
ACTIVE_WITHIN_DB = 20.0
MIN_CLIPS_OF_A_WORD = 5  # keywords with fewer real clips are pooled into "other words"
MEASURES = ["duration", "onset", "peak_db", "rms_db", "noise_floor_db", "tilt_db"]
SILENCE = data.SILENCE_LABEL


# --- Measures of one clip (pure) --------------------------------------------------------------


def frame_levels(samples, sample_rate):
    """Level of each whole 20 ms frame in dB re one int16 step (samples in int16 units)."""
    frame = int(round(FRAME_SECONDS * sample_rate))
    count = len(samples) // frame
    frames = np.asarray(samples[: count * frame], dtype=np.float64).reshape(count, frame)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)


def clip_measures(samples, sample_rate):
    """The measures of one clip (int16 units): {duration, onset} in seconds, levels and tilt in dB."""
    levels = frame_levels(samples, sample_rate)
    active = np.flatnonzero(levels >= levels.max() - ACTIVE_WITHIN_DB)
    frame = int(round(FRAME_SECONDS * sample_rate))
    span = np.asarray(samples[active[0] * frame : (active[-1] + 1) * frame], dtype=np.float64)
    return {
        "duration": (active[-1] - active[0] + 1) * FRAME_SECONDS,
        "onset": active[0] * FRAME_SECONDS,
        "peak_db": float(levels.max()),
        "rms_db": float(10 * np.log10(np.mean(span**2) + 1e-10)),
        "noise_floor_db": float(np.percentile(levels, 10)),
        "tilt_db": synthetic.spectral_tilt(span, sample_rate),
    }


def channel_means(features):
    """Per-channel mean of a clip's micro features [frames, channels] (what the model sees)."""
    return np.asarray(features, dtype=np.float64).reshape(-1, features.shape[-1]).mean(axis=0)


def feature_gap(real_means, synthetic_means):
    """Mean over channels of |difference of the means| / pooled standard deviation ([clips, channels] each)."""
    spread = np.sqrt((real_means.var(axis=0) + synthetic_means.var(axis=0)) / 2) + 1e-9
    return float(np.mean(np.abs(real_means.mean(axis=0) - synthetic_means.mean(axis=0)) / spread))


# --- Clips of each class ------------------------------------------------------------------------


def class_names(recording_words):
    """The classes compared: keywords with enough real clips, then "other words", "all words", silence."""
    shown = [w for w in synthetic.CORE_WORDS[:10] if recording_words.get(w, 0) >= MIN_CLIPS_OF_A_WORD]
    return shown + ["other words", "all words", SILENCE]


def classes_of(word, shown):
    """The classes a clip of `word` belongs to (a word is also in "all words")."""
    if word == SILENCE:
        return [SILENCE]
    return [word if word in shown else "other words", "all words"]


def real_clips(recordings_dir, sample_rate):
    """{word folder: [int16 clip]} of the real recordings (any readable wav, as the kit reads them)."""
    clips = {}
    for folder in sorted(p for p in Path(recordings_dir).iterdir() if p.is_dir()):
        if folder.name.startswith("_") and folder.name != SILENCE:
            continue
        paths = sorted(folder.glob("*.wav"))
        if paths:
            clips[folder.name] = [data.load_recording(path, sample_rate) for path in paths]
    if not clips:
        raise ValueError(f"No recordings in {recordings_dir}: expected <word>/*.wav folders (Speech Commands layout).")
    return clips


def synthetic_clips(data_dir, words, per_class, sample_rate, rng):
    """{word: [int16 clip]}: up to per_class random clips of each word, and per_class silence clips
    made as training makes them (a slice of a background-noise file at a volume in [0, 1])."""
    data_dir = Path(data_dir)
    clips = {}
    for word in words:
        paths = sorted((data_dir / word).glob("*.wav"))
        chosen = rng.choice(len(paths), size=min(per_class, len(paths)), replace=False) if paths else []
        clips[word] = [data.load_recording(paths[i], sample_rate) for i in chosen]
    noises = [data.load_recording(p, sample_rate) for p in sorted((data_dir / "_background_noise_").glob("*.wav"))]
    if not noises:
        raise ValueError(f"{data_dir} has no _background_noise_/*.wav: is it a synthetic set (synthetic.py)?")
    silence = []
    for _ in range(per_class):
        noise = noises[rng.integers(len(noises))]
        start = rng.integers(len(noise) - sample_rate + 1)
        silence.append((noise[start : start + sample_rate] * rng.uniform()).astype(np.int16))
    clips[SILENCE] = silence
    return clips


def measure_clips(clips_by_word, shown, model_settings):
    """{class: {measure: [values], "channel_means": [clips, channels]}} of a set of clips."""
    sample_rate, desired = model_settings["sample_rate"], model_settings["desired_samples"]
    measured = {}
    for word, clips in clips_by_word.items():
        for clip in clips:
            fitted = data.fit_to_length(data.loudest_window(clip, desired), desired)
            values = clip_measures(fitted, sample_rate)
            values["channel_means"] = channel_means(data.compute_features(fitted, model_settings, micro=True))
            for name in classes_of(word, shown):
                entry = measured.setdefault(name, {key: [] for key in values})
                for key, value in values.items():
                    entry[key].append(value)
    return {name: {key: np.array(v) for key, v in entry.items()} for name, entry in measured.items()}


# --- Comparison and report ----------------------------------------------------------------------


def compare(real, synthetic_set, classes):
    """Table rows: per class, the clip counts, each measure's (median, 10th, 90th percentile) on
    both sides, and the feature gap."""
    rows = []
    for name in classes:
        if name not in real or name not in synthetic_set:
            continue
        row = {"class": name, "clips": (len(real[name]["duration"]), len(synthetic_set[name]["duration"]))}
        for measure in MEASURES:
            row[measure] = tuple(tuple(np.percentile(side[name][measure], [50, 10, 90]))
                                 for side in (real, synthetic_set))
        row["feature_gap"] = feature_gap(real[name]["channel_means"], synthetic_set[name]["channel_means"])
        rows.append(row)
    return rows


def format_table(rows):
    """The rows as a Markdown table: "real / synthetic" medians, with 10-90 % ranges."""
    def cell(pair, digits):
        (r, r10, r90), (s, s10, s90) = pair
        return (f"{r:.{digits}f} ({r10:.{digits}f}–{r90:.{digits}f}) / "
                f"{s:.{digits}f} ({s10:.{digits}f}–{s90:.{digits}f})")

    header = ["class", "clips real / synthetic", "active duration s", "onset s", "peak dB", "RMS dB",
              "noise floor dB", "tilt dB (>2 kHz vs <2 kHz)", "feature gap"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [row["class"], "%d / %d" % row["clips"], cell(row["duration"], 2), cell(row["onset"], 2),
                 cell(row["peak_db"], 0), cell(row["rms_db"], 0), cell(row["noise_floor_db"], 0),
                 cell(row["tilt_db"], 1), f"{row['feature_gap']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_comparison(real, synthetic_set, path):
    """Histograms of each measure over all word clips, and the per-channel feature means of words
    and of silence, real beside synthetic; saved to path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 4, figsize=(16, 7))
    for axis, measure in zip(axes.flat, MEASURES):
        values = [real["all words"][measure], synthetic_set["all words"][measure]]
        bins = np.histogram_bin_edges(np.concatenate(values), bins=30)
        for side, label in zip(values, ("real", "synthetic")):
            axis.hist(side, bins=bins, density=True, alpha=0.5, label=label)
        axis.set_title(f"{measure} (all words)")
    for axis, name in zip(axes.flat[len(MEASURES):], ("all words", SILENCE)):
        if name not in real or name not in synthetic_set:
            axis.set_visible(False)  # e.g. no real silence clips
            continue
        for side, label in ((real, "real"), (synthetic_set, "synthetic")):
            means = side[name]["channel_means"]
            centre, spread = means.mean(axis=0), means.std(axis=0)
            axis.plot(centre, label=label)
            axis.fill_between(np.arange(len(centre)), centre - spread, centre + spread, alpha=0.2)
        axis.set_title(f"micro feature mean per channel ({name})")
        axis.set_xlabel("channel")
    axes.flat[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=Path, required=True, help="real recordings, Speech Commands layout")
    parser.add_argument("--data-dir", type=Path, help="the synthetic set (default: the kit's default set)")
    parser.add_argument("--per-class", type=int, default=200, help="synthetic clips measured per word")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "synthetic_vs_real")
    args = parser.parse_args()
    if not args.recordings.is_dir():
        parser.exit(2, f"error: no folder {args.recordings}\n")

    settings = lab.model_settings(["yes", "no"])
    try:
        real_by_word = real_clips(args.recordings, settings["sample_rate"])
        classes = class_names({word: len(clips) for word, clips in real_by_word.items()})
        shown = classes[:-3]
        data_dir = args.data_dir or synthetic.default_dataset()
        words = sorted(w for w in real_by_word if w != SILENCE and (Path(data_dir) / w).is_dir())
        rng = np.random.default_rng(args.seed)
        synthetic_by_word = synthetic_clips(data_dir, words, args.per_class, settings["sample_rate"], rng)
    except ValueError as error:  # an unreadable recording, a folder that is not a dataset
        parser.exit(2, f"error: {error}\n")
    real = measure_clips(real_by_word, shown, settings)
    synthetic_set = measure_clips(synthetic_by_word, shown, settings)
    print(f"real: {args.recordings}   synthetic: {data_dir}")
    print(format_table(compare(real, synthetic_set, classes)))
    args.out.mkdir(parents=True, exist_ok=True)
    plot_comparison(real, synthetic_set, args.out / "synthetic_vs_real.png")
    print(f"histograms: {args.out / 'synthetic_vs_real.png'}")


if __name__ == "__main__":
    main()
