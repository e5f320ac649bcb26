#!/usr/bin/env python3
"""Throughput of the kit's data pipeline, beside the micro frontend op alone and the seed kit's.

    python benchmarks/data_pipeline.py [--data-dir DIR] [--n 10000] [--rounds 3]
        [--peer-harness ../shared/peers/bench_peer.py --peer-dir /tmp/peers]

Settings are the lab's for yes,no (lab.audio_processor and lab.flags: shares, split, audio
settings, micro features, augmentation, batch size). Measured, in examples per second:
  train       get_data(TRAINING, <the lab's augmentation>).repeat().batch(<batch size>), as
              train.py uses it
  val_compute validation features as the first get_data(VALIDATION) call computes them, clips
              read and features computed (later calls serve them from memory, later processes from
              the cache beside the dataset)
  op_alone    the micro frontend op alone over the same clips, held in memory, in a parallel
              tf.data map: the best that computing features at every step could do (the feature
              store computes them once and serves them)
  peer        the seed kit's pipeline via the shared harness, when --peer-harness is given
Rounds are interleaved so that a slow moment of the machine hits every pipeline alike; the
median is reported. Without --data-dir the default synthetic dataset is made (or reused).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tensorflow as tf  # noqa: E402

import data  # noqa: E402
import lab  # noqa: E402
import synthetic  # noqa: E402

WANTED_WORDS = ["yes", "no"]
FLAGS = lab.flags(wanted_words=",".join(WANTED_WORDS))  # the lab's augmentation and batch size
BATCH = FLAGS.batch_size


def examples_per_second(dataset, n, warmup=500):
    """Draws `warmup` examples, then times at least n examples of a batched dataset."""
    iterator = iter(dataset)
    seen = 0
    while seen < warmup:
        seen += int(next(iterator)[0].shape[0])
    timed = 0
    start = time.perf_counter()
    while timed < n:
        timed += int(next(iterator)[0].shape[0])
    return timed / (time.perf_counter() - start)


def op_alone_dataset(audio, model_settings):
    """The micro frontend op over in-memory int16 clips, nothing else."""
    clips = tf.data.Dataset.from_tensor_slices(tf.constant(audio)).repeat()
    features = clips.map(
        lambda clip: (data.features_from_audio(clip, model_settings), 0),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    return features.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def val_compute_per_second(audio_processor, n):
    """Validation features as the first get_data(VALIDATION) call computes them (clips read, then
    their features); the split is computed again until at least n examples are timed."""
    computed = 0
    start = time.perf_counter()
    while computed < n:
        computed += len(audio_processor._compute_features(audio_processor.Modes.VALIDATION))
    return computed / (time.perf_counter() - start)


def peer_train_per_second(harness, peer_dir, data_dir, n):
    """Runs the seed kit's harness in a subprocess; returns its training examples per second."""
    result = subprocess.run(
        [sys.executable, str(harness), str(data_dir), "--n", str(n)],
        env={**os.environ, "PEER_DIR": str(peer_dir)},
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--n", type=int, default=10000, help="examples timed per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer-harness", type=Path, default=None, help="the shared bench_peer.py")
    parser.add_argument("--peer-dir", type=Path, default=Path("/tmp/peers"), help="folder of the peer's data.py")
    args = parser.parse_args()

    data_dir = args.data_dir or synthetic.default_dataset()
    audio_processor = lab.audio_processor(data_dir, WANTED_WORDS)
    model_settings = audio_processor.model_settings
    time_shift_samples = int(FLAGS.time_shift_ms * model_settings["sample_rate"] / 1000)
    train = audio_processor.get_data(audio_processor.Modes.TRAINING, FLAGS.background_frequency,
                                     FLAGS.background_volume, time_shift_samples)
    train = train.repeat().batch(BATCH).prefetch(tf.data.AUTOTUNE)
    op_alone = op_alone_dataset(audio_processor._read_rows(audio_processor.Modes.TRAINING, 0,
                                                           audio_processor.set_size(audio_processor.Modes.TRAINING)),
                                model_settings)

    results = {"train": [], "op_alone": [], "val_compute": [], "peer_train": [], "peer_val": []}
    for _ in range(args.rounds):
        results["op_alone"].append(examples_per_second(op_alone, args.n))
        results["train"].append(examples_per_second(train, args.n))
        results["val_compute"].append(val_compute_per_second(audio_processor, args.n))
        if args.peer_harness:
            peer = peer_train_per_second(args.peer_harness, args.peer_dir, data_dir, args.n)
            results["peer_train"].append(peer["train_ex_per_s"])
            results["peer_val"].append(peer["val_ex_per_s"])

    median = {key: round(statistics.median(values), 1) for key, values in results.items() if values}
    median["train_vs_op_alone"] = round(median["train"] / median["op_alone"], 3)
    if "peer_train" in median:
        median["train_vs_peer"] = round(median["train"] / median["peer_train"], 3)
        median["val_compute_vs_peer"] = round(median["val_compute"] / median["peer_val"], 3)
    median.update(cpus=os.cpu_count(), rounds=args.rounds, n=args.n, tf=tf.__version__,
                  set_size={m.name: audio_processor.set_size(m) for m in audio_processor.Modes})
    print(json.dumps(median))


if __name__ == "__main__":
    main()
