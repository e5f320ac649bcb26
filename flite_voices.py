"""Flite, CMU's small speech synthesizer, as a second engine for the synthetic dataset (an option).

eSpeak NG makes every voice with one formant synthesizer. Flite's voices are built from recordings
of real people: awb (a Scottish man), rms (an American man) and slt (an American woman) are
statistical parametric (clustergen) voices, kal16 (an American man) joins recorded diphones. They
render consonants and transitions the way those people said them.

Flite is a system program, not a Python package, so it is an option of the synthetic recipe
(synthetic.FLITE_RECIPE) and never needed by the default dataset. Each call runs `flite` once and
reads the wav it writes; Flite draws no random numbers, so the same text and settings give the
same samples.
"""

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

VOICES = ["awb", "rms", "slt", "kal16"]  # built into Debian's, Ubuntu's and Homebrew's flite

INSTALL_HELP = """Flite (the `flite` program) is not installed, and this recipe asks for Flite voices (flite_share > 0).
Install it, then run again:
  Debian / Ubuntu / WSL:  sudo apt-get install flite
  macOS (Homebrew):       brew install flite
  Google Colab:           !apt-get install -y flite
Windows without WSL has no flite package: use WSL, or a recipe without flite_share (the default)."""


def find_flite():
    """The path of the `flite` program; a RuntimeError saying how to install it where it is missing."""
    path = shutil.which("flite")
    if path is None:
        raise RuntimeError(INSTALL_HELP)
    return path


def flite_version(flite):
    """Flite's version as it states it, e.g. "flite-2.2-current Sep 2018" (`flite --version`
    exits with status 1, so only its output counts)."""
    output = subprocess.run([flite, "--version"], capture_output=True, text=True).stdout
    lines = [line.split("version:", 1)[1].split("(")[0].strip() for line in output.splitlines() if "version:" in line]
    if not lines:
        raise RuntimeError(f"{flite} --version did not state a version: {output.strip()!r}")
    return lines[0]


def available_voices(flite):
    """The voices built into this flite (`flite -lv`)."""
    output = subprocess.run([flite, "-lv"], capture_output=True, text=True, check=True).stdout
    return output.split(":", 1)[-1].split()


def speak(flite, text, voice, f0_shift=1.0, duration_stretch=1.0):
    """Speaks text in a Flite voice: (float32 samples in [-1, 1], sample rate).

    f0_shift scales the voice's pitch (rms, whose pitch model ignores it, keeps its own);
    duration_stretch > 1 speaks slower.
    """
    with tempfile.TemporaryDirectory(prefix="microkws-flite-") as folder:
        out = Path(folder) / "speech.wav"
        command = [flite, "-voice", voice, "--setf", f"f0_shift={f0_shift:.4f}",
                   "--setf", f"duration_stretch={duration_stretch:.4f}", "-t", text, "-o", str(out)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not out.is_file():
            raise RuntimeError(f"flite failed on {text!r} in voice {voice!r}: {result.stderr.strip()}")
        with wave.open(str(out)) as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise RuntimeError(f"flite wrote a wav other than mono 16-bit for voice {voice!r}.")
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
            return samples.astype(np.float32) / 32768.0, wav.getframerate()
