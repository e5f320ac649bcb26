"""Festival, Edinburgh's speech synthesis system, as a third engine for the synthetic dataset (an option).

Like Flite's, Festival's voices are built from recordings of real people, with two other methods:
kal_diphone and ked_diphone (two American men) join recorded diphones, and
cmu_us_slt_arctic_hts (an American woman) is an HTS voice, a statistical model trained on her
recordings. They say words differently from both eSpeak's formants and Flite's voices.

Festival is a system program with its voices in system packages, so it is an option of the
synthetic recipe (synthetic.FESTIVAL_RECIPE), never needed by the default dataset. Starting
Festival and loading a voice costs more than speaking a word, so one `festival` process speaks all
of one speaker's words: speak_many writes them a Scheme script and reads the wavs it writes.
Festival draws no random numbers: the same words and settings give the same samples.
"""

import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

# Debian's and Ubuntu's festvox-kallpc16k, festvox-kdlpc16k and festvox-us-slt-hts.
VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]

INSTALL_HELP = """Festival (the `festival` program) or its voices are not installed, and this recipe asks for
Festival voices (festival_share > 0). Install them, then run again:
  Debian / Ubuntu / WSL:  sudo apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
  Google Colab:           !apt-get install -y festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
macOS and Windows without WSL: no package of these voices was checked for this kit; use Linux or WSL,
or a recipe without festival_share (the default)."""

TIMEOUT_S = 300  # one speaker's words take about a second; a festival that hangs is stopped

# Scheme run before the utterances: remembers the voice's own settings, so that every utterance's
# pitch and tempo are set relative to them rather than to the last utterance's.
PROLOGUE = """(voice_{voice})
(set! microkws_lr_params int_lr_params)
(define (microkws_scaled name factor)
  (list name (* factor (car (cdr (assoc name microkws_lr_params))))))
"""
# A diphone voice takes its pitch from int_lr_params and its tempo from Duration_Stretch.
DIPHONE_UTTERANCE = """(set! int_lr_params (list (microkws_scaled 'target_f0_mean {pitch:.4f})
  (microkws_scaled 'target_f0_std {pitch:.4f}) (assoc 'model_f0_mean microkws_lr_params)
  (assoc 'model_f0_std microkws_lr_params)))
(Parameter.set 'Duration_Stretch {stretch:.4f})
(utt.save.wave (utt.synth (Utterance Text "{text}")) "{path}" 'riff)
"""
# An HTS voice makes its own pitch (no setting moves it; its speakers still draw a pitch factor,
# so that every Festival speaker draws the same numbers) and takes its tempo from its engine's
# speech-rate option "-r", read when the voice is selected.
HTS_PROLOGUE = "(set! microkws_hts_params {voice}::hts_engine_params)\n"
HTS_UTTERANCE = """(set! {voice}::hts_engine_params (append microkws_hts_params '(("-r" {tempo:.4f}))))
(voice_{voice})
(utt.save.wave (utt.synth (Utterance Text "{text}")) "{path}" 'riff)
"""


def find_festival():
    """The path of the `festival` program; a RuntimeError saying how to install it where it is missing."""
    path = shutil.which("festival")
    if path is None:
        raise RuntimeError(INSTALL_HELP)
    return path


def festival_version(festival):
    """Festival's version as it states it, e.g. "2.5.0:release December 2017"."""
    output = subprocess.run([festival, "--version"], capture_output=True, text=True).stdout
    if "System:" not in output:
        raise RuntimeError(f"{festival} --version did not state a version: {output.strip()!r}")
    return output.split("System:", 1)[1].strip()


def available_voices(festival):
    """The voices this festival has installed (its voice.list)."""
    result = subprocess.run([festival, "-b", "(print (voice.list))"], capture_output=True, text=True)
    return result.stdout.strip().strip("()").split()


def is_hts(voice):
    return voice.endswith("_hts")


def speak_many(festival, voice, utterances):
    """Speaks each utterance, a (text, pitch, tempo) tuple, in one Festival voice: a list of
    (float32 samples in [-1, 1], sample rate).

    pitch scales the voice's mean pitch and its range (an HTS voice keeps its own); tempo > 1
    speaks faster. A text is a word with at most an ending such as "?" (other characters refused).
    All words are spoken by one festival process. Festival 2.5's diphone voices crash on a few
    words at a low pitch (kal_diphone on "up!" below about 0.75 of its own); then the words are
    spoken one by one, and a word that crashes is spoken at the voice's own pitch and tempo.
    """
    # The script is Scheme code: only plain words, voice names and file names go into it.
    if not re.fullmatch(r"[a-z0-9_]+", voice):
        raise ValueError(f"A Festival voice is named in lower-case letters, digits and _, not {voice!r}.")
    for text, _, _ in utterances:
        if not re.fullmatch(r"[A-Za-z' ]+[.,?!]?", text):
            raise ValueError(f"Festival is given plain words to speak, not {text!r}.")
    try:
        return _speak(festival, voice, utterances)
    except RuntimeError:
        if len(utterances) > 1:
            return [speak_many(festival, voice, [utterance])[0] for utterance in utterances]
        text, pitch, tempo = utterances[0]
        if (pitch, tempo) == (1.0, 1.0):
            raise
        return _speak(festival, voice, [(text, 1.0, 1.0)])


def _speak(festival, voice, utterances):
    """One festival process speaking the utterances; a RuntimeError with its output if any is missing."""
    with tempfile.TemporaryDirectory(prefix="microkws-festival-") as folder:
        names = [f"{i}.wav" for i in range(len(utterances))]  # relative to the folder festival runs in
        script = PROLOGUE.format(voice=voice) + (HTS_PROLOGUE.format(voice=voice) if is_hts(voice) else "")
        template = HTS_UTTERANCE if is_hts(voice) else DIPHONE_UTTERANCE
        for (text, pitch, tempo), name in zip(utterances, names):
            script += template.format(voice=voice, text=text, pitch=pitch, tempo=tempo, stretch=1 / tempo, path=name)
        (Path(folder) / "speak.scm").write_text(script)
        result = subprocess.run([festival, "-b", "speak.scm"], cwd=folder, capture_output=True, text=True,
                                timeout=TIMEOUT_S)
        paths = [Path(folder) / name for name in names]
        missing = [text for (text, _, _), path in zip(utterances, paths) if not path.is_file()]
        if result.returncode != 0 or missing or "SIOD ERROR" in result.stdout + result.stderr:
            raise RuntimeError(f"festival failed in voice {voice!r} ({len(missing)} of {len(paths)} words not "
                               f"spoken): {(result.stdout + result.stderr).strip()[-500:]}")
        return [_read_wav(path, voice) for path in paths]


def _read_wav(path, voice):
    with wave.open(str(path)) as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise RuntimeError(f"festival wrote a wav other than mono 16-bit for voice {voice!r}.")
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return samples.astype(np.float32) / 32768.0, wav.getframerate()
