#!/usr/bin/env python3
"""The real dataset's size on one machine: time to the first training batch, and peak memory.

    python benchmarks/full_size.py [--data-dir /tmp/microkws_full_size] [--tasks yes_no,ten,all]
        [--source datasets/synthetic_speech_commands] [--fraction 1.0] [--runs 2] [--json FILE]

Every figure the kit quotes elsewhere comes from the synthetic set, far smaller than Speech
Commands v0.02, which the notebook trains on by default (105,829 clips). This script first makes a
dataset of the real one's size and layout from the synthetic set: each word gets exactly as many
clips as in v0.02 (REAL_WORD_COUNTS), its synthetic clips taken again and again under new speaker
ids ("aliases", hashes of the speaker and the round), so that the speaker hash of the split
spreads them over training, validation and testing as it spreads real speakers. The clips are
hard links (no extra disk space) where the file system allows, copies otherwise;
_background_noise_ is kept. The folder is made under a temporary name and renamed when complete,
and reused if present.

Then, for each task (yes/no, ten words, all 35 words), each in a new process, as the notebook's
cells call the kit (the lab's AudioProcessor, lab.audio_processor; then train.train's
`get_data(TRAINING, ...).repeat().batch(...).prefetch(...)` with the lab's augmentation and batch
size; then the validation and test splits), it measures the seconds to the data index (the
AudioProcessor's construction), to the first training batch, to the validation and to the test
features, and the process's peak resident memory (ru_maxrss, measured by the kernel, after each
of these stages). `--runs 2` runs each task a second time in another new process: what a student
pays after restarting the kernel (the second run reads what the first cached in
<data-dir>/.microkws_cache; `--no-cache` turns the cache off, and a cache left by an earlier
invocation makes even the first run a second one: remove that folder to measure a first run).

`--fraction 0.25` makes a quarter of the real size (each word's count scaled), for a quick look
on a busy machine; say so wherever its figures are quoted.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Clips per word in Speech Commands v0.02 (105,829 in all).
REAL_WORD_COUNTS = {
    "backward": 1664, "bed": 2014, "bird": 2064, "cat": 2031, "dog": 2128, "down": 3917,
    "eight": 3787, "five": 4052, "follow": 1579, "forward": 1557, "four": 3728, "go": 3880,
    "happy": 2054, "house": 2113, "learn": 1575, "left": 3801, "marvin": 2100, "nine": 3934,
    "no": 3941, "off": 3745, "on": 3845, "one": 3890, "right": 3778, "seven": 3998,
    "sheila": 2022, "six": 3860, "stop": 3872, "three": 3727, "tree": 1759, "two": 3880,
    "up": 3723, "visual": 1592, "wow": 2123, "yes": 4044, "zero": 4052,
}
TEN_WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
TASKS = {"yes_no": ["yes", "no"], "ten": TEN_WORDS, "all": sorted(REAL_WORD_COUNTS)}
TASK_NAMES = {"yes_no": "yes/no", "ten": "ten words", "all": "all 35 words"}
BACKGROUND_NOISE_DIR_NAME = "_background_noise_"


# --- The alias layout (pure) --------------------------------------------------------------------


def alias_speaker(speaker, round_number):
    """The speaker id of `speaker`'s clips in alias round `round_number` (round 0: the speaker itself)."""
    if round_number == 0:
        return speaker
    return hashlib.sha1(f"{speaker}/alias-{round_number}".encode()).hexdigest()[:8]


def alias_layout(clips_by_word, target_counts):
    """Which source clip becomes which file: {word: [(source name, new name), ...]}.

    Each word's clips (file names `<speaker>_nohash_<n>.wav`) are taken in sorted order, round
    after round, under the speaker's alias of that round, until the word has its target count
    (the last round takes a prefix, so whole speakers, as sorted). Words without a target are
    left out.
    """
    layout = {}
    for word, target in target_counts.items():
        names = sorted(clips_by_word.get(word, []))
        if not names:
            raise ValueError(f"The source dataset has no clips of {word!r}; it needs every word of the target.")
        pairs = []
        round_number = 0
        while len(pairs) < target:
            for name in names[: target - len(pairs)]:
                speaker, rest = name.split("_nohash_", 1)
                pairs.append((name, f"{alias_speaker(speaker, round_number)}_nohash_{rest}"))
            round_number += 1
        layout[word] = pairs
    return layout


def scaled_counts(counts, fraction):
    """Each word's count times `fraction`, at least one clip."""
    return {word: max(1, round(count * fraction)) for word, count in counts.items()}


# --- Making the dataset (files) ------------------------------------------------------------------


def link_or_copy(source, destination):
    """A hard link where the file system allows it, a copy otherwise. Returns True for a link."""
    try:
        os.link(source, destination)
        return True
    except OSError:
        shutil.copy2(source, destination)
        return False


def make_full_size(source, destination, target_counts):
    """Writes the alias dataset into `destination` (made under a temporary name, then renamed).

    Returns (clips, how many were copies rather than links). An existing complete `destination`
    is reused as it is.
    """
    from tqdm import tqdm

    source, destination = Path(source), Path(destination)
    if destination.exists():
        clips = (sum(1 for _ in destination.glob("*/*.wav"))
                 - sum(1 for _ in destination.glob(f"{BACKGROUND_NOISE_DIR_NAME}/*.wav")))
        return clips, None
    clips_by_word = {d.name: [p.name for p in d.glob("*.wav")] for d in source.iterdir()
                     if d.is_dir() and not d.name.startswith(("_", "."))}
    layout = alias_layout(clips_by_word, target_counts)
    partial = destination.with_name(f".{destination.name}-partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    copies = 0
    try:
        shutil.copytree(source / BACKGROUND_NOISE_DIR_NAME, partial / BACKGROUND_NOISE_DIR_NAME,
                        copy_function=lambda s, d: link_or_copy(s, d))
        with tqdm(total=sum(len(pairs) for pairs in layout.values()), desc="Linking clips", unit=" clips") as bar:
            for word, pairs in layout.items():
                (partial / word).mkdir()
                for name, new_name in pairs:
                    copies += not link_or_copy(source / word / name, partial / word / new_name)
                    bar.update()
        os.replace(partial, destination)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return sum(len(pairs) for pairs in layout.values()), copies


# --- One measured run (in its own process) -------------------------------------------------------


def peak_rss_bytes():
    """This process's peak resident memory so far, as the kernel counts it (VmHWM)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def run_once(data_dir, words, cache=True):
    """The notebook's data path for `words`, timed stage by stage in this process; returns figures."""
    import tensorflow as tf

    import lab

    flags = lab.flags(wanted_words=",".join(words))  # the lab's augmentation and batch size
    figures = {}
    started = time.perf_counter()

    def stage(name):
        figures[f"{name}_s"] = round(time.perf_counter() - started, 1)
        figures[f"{name}_peak_bytes"] = peak_rss_bytes()

    processor = lab.audio_processor(data_dir, words, cache=cache)
    stage("index")
    time_shift_samples = int(flags.time_shift_ms * processor.model_settings["sample_rate"] / 1000)
    training = processor.get_data(processor.Modes.TRAINING, flags.background_frequency, flags.background_volume,
                                  time_shift_samples)
    next(iter(training.repeat().batch(flags.batch_size).prefetch(tf.data.AUTOTUNE)))
    stage("first_batch")
    next(iter(processor.get_data(processor.Modes.VALIDATION).batch(flags.batch_size)))
    stage("validation")
    next(iter(processor.get_data(processor.Modes.TESTING).batch(flags.batch_size)))
    stage("test")
    figures.update(
        training_examples=processor.set_size(processor.Modes.TRAINING),
        stored_variants=processor.stored_variants,
        peak_bytes=peak_rss_bytes(),
    )
    return figures


def run_in_new_process(data_dir, task, cache=True):
    """run_once in a fresh Python process (nothing cached in memory); returns its figures."""
    command = ([sys.executable, __file__, "--data-dir", str(data_dir), "--child", task]
               + ([] if cache else ["--no-cache"]))
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# --- The table (pure) ----------------------------------------------------------------------------


def gib(n_bytes):
    return f"{n_bytes / 2**30:.2f}"


def markdown_table(results):
    """One row per task and run: seconds to each stage (from the start) and peak memory in GiB."""
    columns = ["task", "run", "training examples", "stored variants", "s to data index",
               "s to first training batch", "s to validation features", "s to test features",
               "peak memory (GiB)"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in results:
        row = [TASK_NAMES.get(r["task"], r["task"]), str(r["run"]), f"{r['training_examples']:,}",
               str(r["stored_variants"]), f"{r['index_s']:.1f}", f"{r['first_batch_s']:.1f}",
               f"{r['validation_s']:.1f}", f"{r['test_s']:.1f}", gib(r["peak_bytes"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/microkws_full_size"),
                        help="where the full-size dataset is made (or reused); not inside datasets/")
    parser.add_argument("--source", type=Path, default=ROOT / "datasets" / "synthetic_speech_commands")
    parser.add_argument("--tasks", default="yes_no,ten,all")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the real size (default 1)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each task, each in a new process")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures here")
    parser.add_argument("--no-cache", action="store_true", help="AudioProcessor(cache=False): no cache on disk")
    parser.add_argument("--child", choices=sorted(TASKS), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # one run in this process (the driver below starts one process per run)
        print(json.dumps(run_once(args.data_dir, TASKS[args.child], cache=not args.no_cache)))
        return

    counts = scaled_counts(REAL_WORD_COUNTS, args.fraction)
    clips, copies = make_full_size(args.source, args.data_dir, counts)
    how = "reused" if copies is None else f"{clips - copies:,} hard links, {copies:,} copies"
    print(f"{args.data_dir}: {clips:,} clips ({how}), {args.fraction:g} of the real size.", flush=True)
    results = []
    for task in args.tasks.split(","):
        for run in range(1, args.runs + 1):
            result = {"task": task, "run": run, **run_in_new_process(args.data_dir, task, cache=not args.no_cache)}
            print(json.dumps(result), flush=True)
            results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print()
    print(markdown_table(results))


if __name__ == "__main__":
    main()
