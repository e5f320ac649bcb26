"""The conventions of the Speech Commands dataset (Warden, 2018), in one place and without TensorFlow.

    <data_dir>/<word>/<speaker>_nohash_<n>.wav     one-second clips, 16 kHz mono 16-bit
    <data_dir>/_background_noise_/*.wav            longer noise recordings

The class labels (silence and unknown first), the speaker-hash split into training / validation /
testing, and how to tell that a folder holds such a dataset. `data.py` (the real data pipeline),
`synthetic.py` (the offline dataset) and the tools that read recordings all use these, and one
rule for turning float samples into 16-bit ones.
"""

import glob
import hashlib
import os
import re
import wave

import numpy as np

MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # ~134M, the constant of the dataset's split rule
SILENCE_LABEL = "_silence_"
SILENCE_INDEX = 0
UNKNOWN_WORD_LABEL = "_unknown_"
UNKNOWN_WORD_INDEX = 1
BACKGROUND_NOISE_DIR_NAME = "_background_noise_"
SAMPLE_RATE = 16000  # every clip: 16 kHz mono, 16-bit
CLIP_DURATION_MS = 1000  # and one second long (shorter ones are padded with silence)


def prepare_words_list(wanted_words):
    """Prepends the silence and unknown classes to the wanted words.

    Index 0 is always silence and index 1 unknown, as the lab's labels
    `["silence", "unknown"] + words` assume.
    """
    return [SILENCE_LABEL, UNKNOWN_WORD_LABEL, *wanted_words]


def which_set(filename, validation_percentage, testing_percentage):
    """Decides which split ("training", "validation" or "testing") a file belongs to.

    This is the Speech Commands rule: the speaker id (the file name without `_nohash_...`) is
    hashed with SHA-1, so every recording of one speaker lands in the same split, and the split of
    a file never changes when files are added. It gives the same answers as the dataset's
    published validation_list.txt and testing_list.txt.
    """
    base_name = os.path.basename(filename)
    hash_name = re.sub(r"_nohash_.*$", "", base_name)
    hash_name_hashed = hashlib.sha1(hash_name.encode("utf-8")).hexdigest()
    percentage_hash = (int(hash_name_hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (
        100.0 / MAX_NUM_WAVS_PER_CLASS
    )
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < (testing_percentage + validation_percentage):
        return "testing"
    return "training"


def has_dataset(data_dir):
    """True when data_dir holds at least one `<word>/*.wav` clip."""
    return bool(glob.glob(os.path.join(glob.escape(str(data_dir)), "*", "*.wav")))


def to_int16(samples):
    """Float samples in [-1, 1] -> int16, as a 16-bit microphone would deliver them (full scale 32768)."""
    return np.clip(np.round(np.asarray(samples, np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path, samples, sample_rate=SAMPLE_RATE):
    """Writes a 16-bit mono wav: int16 samples as they are, float samples in [-1, 1] via to_int16."""
    samples = np.asarray(samples)
    pcm = (samples if samples.dtype == np.int16 else to_int16(samples)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
