"""A synthetic Speech-Commands-style dataset, spoken by eSpeak NG, for working offline.

The real dataset is a 2.3 GB download. This module writes a small set of the same layout
(`<word>/<speaker>_nohash_<n>.wav`, 16 kHz mono 16-bit, one second, plus `_background_noise_/`)
on this machine, so the whole lab runs without network access (how long it takes: README).

A "speaker" is a fixed eSpeak voice configuration (language voice, variant, base pitch, pitch range,
speaking rate and vocal-tract length); every utterance varies these a little and is placed at a
random onset, in a randomly drawn room, through a randomly drawn microphone, at a random level.
Options of the recipe (FLITE_RECIPE, FESTIVAL_RECIPE) have shares of the speakers spoken by Flite or
Festival instead, whose voices are built from recordings of real people (flite_voices.py,
festival_voices.py); the default set is eSpeak only.
Speaker ids are hashed by `speech_commands.which_set` like real speakers, so the splits stay speaker-disjoint.

What it is good for: running and testing the whole flow, and learning the keyword task well enough
to see the effects of model size and quantization. What it is not: a replacement for real voices;
a model trained on it recognizes real people worse than one trained on real recordings.
"""

import concurrent.futures
import ctypes
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.signal

import lab
import speech_commands
from files import publish, remove_leftovers, work_in_progress
from speech_commands import which_set, write_wav

# The 35 words of Speech Commands v0.02: the 20 core words are recorded more often, as in the real set.
CORE_WORDS = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
]
AUXILIARY_WORDS = [
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "backward", "forward", "follow", "learn", "visual",
]
WORDS = CORE_WORDS + AUXILIARY_WORDS
# Any other English word is an "unknown" too: each speaker also says a few of these, so the unknown
# class learns more than the 35 words. Homophones of the dataset's words (know, too, for, ate,
# write, won...) are left out: they sound like keywords.
EXTRA_UNKNOWN_WORDS = """
about above across act add after again age ago air all almost alone along also always am and
animal answer any apple april area arm around art ask away baby back bad bag ball bank base bath
bear beat become been before begin behind bell best better between big bill black blue board boat
body book boss both bottle box boy bread break bridge bright bring brother brown build burn bus
busy buy cake call came camera can candle car card care carry case catch cause center chair
chance change cheap check child choose city class clean clear clock close cloud coat cold color
come common cook cool copy corner count country cover cow cross cup cut dance dark daughter day
dead deal dear deep desk dinner door draw dream dress drink drive drop dry during early earth east
easy eat edge egg else empty end enjoy enough even evening event ever every example eye face fact
fall family far farm fast father fear feel few field fill film find fine finger fire first fish
flat floor flower fly food foot free fresh friend front fruit full fun game garden gate girl give
glass gold good great green ground group grow guess half hand hang hard hat head hear heart heat
heavy hello help here high hill hold hole home hope horse hot hour huge hungry ice idea inside iron
island job join jump just keep key kid kind king kitchen knee lady lake land large last late laugh
lead leaf leg less letter level life light like line lion list little live long look lot loud love
low lunch machine main make man many map mark market matter may meat meet middle milk mind minute
miss moment money month moon more morning most mother mountain mouth move much music must name
near neck need never new news next nice night noise north nose note nothing number ocean offer
office often oil old only open orange other outside over page paint paper park part party pass
past path pay pen people pick picture piece pink place plan plant plate play please pocket point
poor pretty price print problem pull push queen question quick quiet race radio rain reach read
ready real red remember rest rice rich ride ring river road rock roof room round rule run safe salt
same sand save say school sea season seat second see sell send serve shape share sharp ship shirt
shoe shop short show shut side sign silver simple sing sister sit size skin sky sleep slow small
smile snow soft some song soon sorry sound south space speak special speed spring square staff
stand star start station stay step still stone store story street strong student study sugar summer
sun sure sweet swim table take talk tall taste teach team tell test thank thick thin thing think
third through throw ticket time tired today together tomorrow tonight top touch town toy train
travel true try turn under until use usual very view visit voice wait walk wall want warm wash
watch water wave way wear weather week welcome west wet what wheel when where which white why
wide wife wild wind window winter wish with woman wonder wood word work world write year young
""".split()
EXTRA_UNKNOWN_WORDS = [w for w in EXTRA_UNKNOWN_WORDS if w not in ("write",)]

# How utterances are made varied; recorded in the dataset's marker, so a changed recipe makes a
# new dataset. (benchmarks/real_speech.py measures what each ingredient does on real voices.)
RECIPE = {
    # Words of EXTRA_UNKNOWN_WORDS each speaker says once. Off by default: on real recordings it
    # lowered the balanced accuracy twice (docs/real_speech.md), as it thins out the dataset's own
    # other words among the unknowns.
    "extra_unknown_words": 0,
    "endings": ["", ".", "?", "!", ","],  # eSpeak gives "yes?", "yes!", "yes." other pitch contours
    "reverb_probability": 0.6,  # share of utterances spoken in a random room
    "band_limit_probability": 0.7,  # share of microphones that cut the highs
    # Background noise files; babble and dishes taught the model real silence (0.65 -> 0.90 recall).
    "noise_kinds": ["white", "pink", "brown", "hum", "running_tap", "fan", "babble", "dishes"],
    "rate_range": [120, 230],  # speakers' base speaking rates, words per minute (slower was worse)
    "utterance_rate_range": [0.8, 1.25],  # each utterance's rate, as a factor of its speaker's
    # Speakers' vocal-tract scale (>1: shorter tract, higher formants and pitch), read into the resampling.
    "vocal_tract_range": [0.88, 1.14],
    "utterance_tract_range": [0.97, 1.03],  # each utterance's scale, as a factor of its speaker's
    "snr_range": [20, 50],  # level of the clip's own noise below its speech, dB
    # Dynamic range compression of each utterance, an amount drawn from this range (0: none, 0.5: 2:1); None: none.
    "compression_range": None,
    "noise_exponent_range": None,  # its colour, 1 / f**exponent drawn from this range; None: white
    # Each utterance's spectral tilt (energy above 2 kHz against below, dB) drawn from this range,
    # or None to keep the voice's own; eSpeak's voices are darker than real ones (docs/real_speech.md).
    "tilt_range": None,
    # Share of clips whose recording stops after the word and is padded with digital zeros to one
    # second, as about one real Speech Commands clip in six is.
    "zero_padding_probability": 0.0,
}

# The Flite option: a share of the speakers are Flite voices (flite_voices.py), each made into many
# speakers by its own pitch, tempo and vocal-tract length (RECIPE["vocal_tract_range"]); their
# utterances vary by the recipe's endings, utterance_rate_range and utterance_tract_range, and pass
# through the same rooms, microphones, levels and noise. Needs the `flite` program. A recipe that
# names any of these entries gets all of them (and records them in its marker, with the engines'
# versions); RECIPE itself stays without them, so the default set and its marker are unchanged.
FLITE_RECIPE = {
    "flite_share": 0.0,  # share of speakers spoken by Flite, drawn per speaker (0: none)
    "flite_voices": ["awb", "rms", "slt", "kal16"],
    "flite_pitch_range": [0.8, 1.3],  # speakers' pitch, a factor of the voice's own (rms keeps its own)
    "flite_tempo_range": [0.8, 1.25],  # speakers' speaking rate, a factor of the voice's own
}
PITCH_JITTER = 0.04  # each utterance's pitch: its speaker's times exp(normal(0, this))
ENGINE_STREAM = 2  # the speaker's random stream (after seed and id) that draws its engine and its voice
# The Festival option, in the same way (festival_voices.py): a share of the speakers are Festival
# voices, drawn after the Flite share from the same number, so adding Festival to a recipe leaves
# its Flite speakers as they were. Needs the `festival` program and its voice packages.
FESTIVAL_RECIPE = {
    "festival_share": 0.0,  # share of speakers spoken by Festival (0: none)
    "festival_voices": ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"],
    "festival_pitch_range": [0.8, 1.3],  # speakers' pitch, a factor of the voice's own (the HTS voice keeps its own)
    "festival_tempo_range": [0.8, 1.25],  # speakers' speaking rate, a factor of the voice's own
}
OPTIONS = [FLITE_RECIPE, FESTIVAL_RECIPE]  # the recipe's options for engines besides eSpeak

SAMPLE_RATE = speech_commands.SAMPLE_RATE
CLIP_SAMPLES = SAMPLE_RATE * speech_commands.CLIP_DURATION_MS // 1000
DEFAULT_SPEAKERS = 400
SPEAKERS_PER_TASK = 25  # speakers one worker process speaks before it is replaced
CORE_REPETITIONS = 2  # utterances of each core word per speaker
NOISE_SECONDS = 60  # length of each background noise file
MARKER_NAME = ".microkws-synthetic.json"
TILT_SPLIT_HZ = 2000.0  # where spectral_tilt splits low from high
MAX_TILT_CHANGE_DB = 30.0
SHELF_OCTAVES = 1 / 6  # the highs' gain rises over this band just below TILT_SPLIT_HZ

# eSpeak NG's English voices and the voice variants (timbres) its data ships.
ENGLISH_VOICES = ["en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-us-nyc"]
VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt6", "Alex", "Andy", "Annie", "Denis", "Gene",
    "Jacky", "Lee", "Michael", "Mike", "Tweaky", "adam", "anika", "aunty", "belinda",
    "benjamin", "boris", "whisper", "david", "edward", "iven", "iven2", "iven3", "john",
    "kaukovalta", "linda", "max", "michel", "norbert", "pablo", "paul", "pedro", "quincy",
    "rob", "robert", "steph", "steph2", "steph3", "travis", "victor", "zac", "grandma",
    "grandpa", "ed", "ian", "shelby", "m8", "Alicia", "Andrea", "Storm", "mike2", "klatt5",
]
# No variant may draw from the C library's rand(), whose numbers differ between glibc, macOS and
# Windows whatever the seed: only the breath noise of eSpeak's speechPlayer synthesizer ("klatt 6"
# with "breath") does, so "caleb" and "Reed" gave way to "whisper" and "mike2", at their places in
# the list so that every other speaker keeps its voice. All other noise in eSpeak NG comes from its
# own generator, seeded by espeak_ng_SetRandSeed, the same everywhere.


def describe_dataset(data_dir):
    """What a dataset folder is, for a run's provenance: {"kind", "path"}, plus the recipe of a
    synthetic set (which remakes it exactly anywhere) or the word folders of a real one."""
    data_dir = Path(data_dir).resolve()
    marker = data_dir / MARKER_NAME
    if marker.is_file():
        return {"kind": "synthetic", "path": str(data_dir), "settings": json.loads(marker.read_text())}
    words = sorted(p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    return {"kind": "speech_commands", "path": str(data_dir), "words": len(words)}


def default_dataset_dir():
    """Where the kit keeps the default synthetic dataset: datasets/ in the kit (git ignores it)."""
    return Path(__file__).resolve().parent / "datasets" / "synthetic_speech_commands"


def default_settings():
    """The recorded settings (as in the set's marker file) of the default synthetic dataset."""
    return json.loads(json.dumps(_settings(0, DEFAULT_SPEAKERS, WORDS, RECIPE)))


def default_dataset():
    """The default synthetic dataset, made on first use; one made by an older kit is made anew."""
    data_dir = default_dataset_dir()
    marker = data_dir / MARKER_NAME
    if marker.exists() and json.loads(marker.read_text()) != default_settings():
        shutil.rmtree(data_dir)  # the kit's own cache, recognised by its marker
    return make_synthetic_dataset(data_dir, seed=0, speakers=DEFAULT_SPEAKERS, words=WORDS)


# --- eSpeak NG through ctypes -------------------------------------------------------------------


class ESpeak:
    """eSpeak NG from the espeakng-loader wheel, in synchronous mode (audio via a callback)."""

    AUDIO_OUTPUT_SYNCHRONOUS = 2
    RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4  # espeak_PARAMETER values
    POS_CHARACTER = 1
    CHARS_UTF8 = 1

    def __init__(self):
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.sample_rate = self.lib.espeak_Initialize(
            self.AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError("eSpeak NG failed to initialize (is espeakng-loader installed?).")
        self._chunks = []
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._callback = callback_type(self._collect)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, numsamples, events):
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0  # 0 = go on synthesizing

    def speak(self, text, voice, rate, pitch, pitch_range, volume=100, noise_seed=0):
        """Speaks text; returns float32 samples in [-1, 1] at self.sample_rate (22,050 Hz)."""
        # eSpeak's noise (breath, whisper, Klatt aspiration) comes from its own generator, seeded
        # here before every utterance (see VARIANTS for the one source that would not be).
        self.lib.espeak_ng_SetRandSeed(int(noise_seed))
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}.")
        for parameter, value in ((self.RATE, rate), (self.PITCH, pitch), (self.RANGE, pitch_range),
                                 (self.VOLUME, volume)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        encoded = text.encode("utf-8")
        self.lib.espeak_Synth(encoded, len(encoded) + 1, 0, self.POS_CHARACTER, 0, self.CHARS_UTF8,
                              None, None)
        self.lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0


def espeak_version():
    """The version of the eSpeak NG library the kit speaks with, e.g. "1.52.0"."""
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Info.restype = ctypes.c_char_p
    return lib.espeak_Info(None).decode()


# --- Speakers and utterances --------------------------------------------------------------------


def _split_of(speaker_id):
    return which_set(f"{speaker_id}_nohash_0.wav", lab.VALIDATION_PERCENTAGE, lab.TESTING_PERCENTAGE)


def speaker_ids(count, seed):
    """`count` 8-hex speaker ids, 10 % in validation and 10 % in testing under the hash split.

    The ids are hashes like the real dataset's, and the split is still decided by `which_set`;
    the ids are only chosen so that even a small set has speakers in every split.
    """
    wanted = {"validation": max(1, round(count * 0.1)), "testing": max(1, round(count * 0.1))}
    wanted["training"] = max(1, count - wanted["validation"] - wanted["testing"])
    chosen = {split: [] for split in wanted}
    i = 0
    while any(len(chosen[s]) < wanted[s] for s in wanted):
        candidate = hashlib.sha1(f"microkws-{seed}-{i}".encode()).hexdigest()[:8]
        split = _split_of(candidate)
        if len(chosen[split]) < wanted[split]:
            chosen[split].append(candidate)
        i += 1
    return sorted(chosen["training"] + chosen["validation"] + chosen["testing"])


def make_speaker(speaker_id, seed, recipe=RECIPE, exclude=WORDS):
    """A fixed voice configuration for one synthetic speaker, drawn from its id.

    The speaker also says recipe["extra_unknown_words"] words of EXTRA_UNKNOWN_WORDS (none of `exclude`).
    With recipe["flite_share"] or ["festival_share"] > 0 those shares of speakers (drawn from a
    stream of their own, so the others keep the voices they have without them) are Flite or
    Festival voices: {"engine": "flite" or "festival", ...}.
    """
    rng = np.random.default_rng([seed, int(speaker_id, 16)])
    pool = [w for w in EXTRA_UNKNOWN_WORDS if w not in exclude]
    extra_words = min(recipe["extra_unknown_words"], len(pool))
    speaker = {
        "extra_words": [str(w) for w in rng.choice(pool, size=extra_words, replace=False)],
        "id": speaker_id,
        "voice": ENGLISH_VOICES[rng.integers(len(ENGLISH_VOICES))],
        "variant": VARIANTS[rng.integers(len(VARIANTS))],
        "pitch": int(rng.integers(20, 80)),  # eSpeak 0..99, 50 is the voice's default
        "range": int(rng.integers(20, 90)),
        "rate": int(rng.integers(*recipe["rate_range"])),  # words per minute
        "vocal_tract": float(rng.uniform(*recipe["vocal_tract_range"])),  # >1: shorter tract, higher formants
    }
    engine_rng = np.random.default_rng([seed, int(speaker_id, 16), ENGINE_STREAM])
    draw = engine_rng.random()
    flite_share = recipe.get("flite_share", 0.0)
    if draw < flite_share:
        engine = "flite"
    elif draw < flite_share + recipe.get("festival_share", 0.0):
        engine = "festival"
    else:
        return speaker
    voices = recipe[f"{engine}_voices"]
    return {
        "extra_words": speaker["extra_words"],
        "id": speaker_id,
        "engine": engine,
        "voice": str(voices[engine_rng.integers(len(voices))]),
        "pitch": float(engine_rng.uniform(*recipe[f"{engine}_pitch_range"])),  # f0 factor
        "tempo": float(engine_rng.uniform(*recipe[f"{engine}_tempo_range"])),  # rate factor
        "vocal_tract": float(engine_rng.uniform(*recipe["vocal_tract_range"])),
    }


def _room_impulse_response(rng, rt60, sample_rate):
    """A simple room: a direct path followed by exponentially decaying noise reaching -60 dB at rt60."""
    length = int(rt60 * sample_rate)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    tail[: int(0.003 * sample_rate)] = 0.0  # first reflections arrive a few ms after the direct path
    direct_to_reverberant = 10 ** (rng.uniform(-3, 12) / 20)
    tail *= 1.0 / (direct_to_reverberant * np.sqrt(np.sum(tail**2)) + 1e-9)
    tail[0] = 1.0
    return tail


@functools.lru_cache(maxsize=None)
def _butterworth(order, cutoff, kind):
    """Butterworth filter sections; cutoffs come on a 10 Hz grid, so designs are reused."""
    return scipy.signal.butter(order, cutoff, kind, fs=SAMPLE_RATE, output="sos")


@functools.lru_cache(maxsize=None)
def _resampling_filter(up, down):
    """The low-pass FIR that scipy.signal.resample_poly designs for up/down, designed once."""
    rate = max(up, down)
    return scipy.signal.firwin(2 * 10 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))


def _microphone(rng, audio, band_limit_probability):
    """A random microphone / channel: a high-pass and often a low-pass of random cut-offs."""
    audio = scipy.signal.sosfilt(_butterworth(2, round(rng.uniform(40, 300), -1), "highpass"), audio)
    if rng.random() < band_limit_probability:
        audio = scipy.signal.sosfilt(_butterworth(4, round(rng.uniform(3000, 7600), -1), "lowpass"), audio)
    return audio


def render_utterance(espeak, speaker, word, rng, recipe=RECIPE):
    """One second of `speaker` saying `word`: float32 samples at 16 kHz.

    espeak (an ESpeak) speaks eSpeak speakers; a Flite or Festival speaker is spoken by that program.
    Either way the word then passes through the same room, microphone, level and noise.
    """
    return _record(_speeches(espeak, speaker, [(word, rng)], recipe)[0], rng, recipe)


def _speeches(espeak, speaker, utterances, recipe):
    """The speech of each (word, rng) of utterances, before the room: one utterance at a time, but
    Festival's in one process. Each draws from its own rng, which then goes on to its recording."""
    if speaker.get("engine") == "festival":
        return _festival_speeches(speaker, utterances, recipe)
    if speaker.get("engine") == "flite":
        return [_flite_speech(speaker, word, rng, recipe) for word, rng in utterances]
    return [_espeak_speech(espeak, speaker, word, rng, recipe) for word, rng in utterances]


def _espeak_speech(espeak, speaker, word, rng, recipe):
    """An eSpeak speaker saying word, at 16 kHz, its pitch, rate and vocal tract varied a little."""
    voice = f"{speaker['voice']}+{speaker['variant']}"
    endings = recipe["endings"]
    speech = espeak.speak(
        word + endings[rng.integers(len(endings))],
        voice,
        rate=speaker["rate"] * rng.uniform(*recipe["utterance_rate_range"]),
        pitch=np.clip(speaker["pitch"] + rng.normal(0, 8), 0, 99),
        pitch_range=np.clip(speaker["range"] + rng.normal(0, 10), 0, 99),
        noise_seed=rng.integers(2**31),
    )
    tract = speaker["vocal_tract"] * rng.uniform(*recipe["utterance_tract_range"])
    return change_vocal_tract(speech, espeak.sample_rate, tract)


def _flite_speech(speaker, word, rng, recipe):
    """A Flite speaker saying word, at 16 kHz, its pitch, tempo and vocal tract varied a little."""
    import flite_voices

    text, pitch, tempo, tract = _utterance_settings(speaker, word, rng, recipe)
    speech, rate = flite_voices.speak(flite_voices.find_flite(), text, speaker["voice"],
                                      f0_shift=pitch, duration_stretch=1 / tempo)
    return change_vocal_tract(speech, rate, tract)


def _festival_speeches(speaker, utterances, recipe):
    """A Festival speaker saying each (word, rng) of utterances, at 16 kHz, its pitch, tempo and
    vocal tract varied a little: all in one festival process (festival_voices.speak_many)."""
    import festival_voices

    settings = [_utterance_settings(speaker, word, rng, recipe) for word, rng in utterances]
    spoken = festival_voices.speak_many(festival_voices.find_festival(), speaker["voice"],
                                        [(text, pitch, tempo) for text, pitch, tempo, _ in settings])
    return [change_vocal_tract(speech, rate, setting[3]) for (speech, rate), setting in zip(spoken, settings)]


def _utterance_settings(speaker, word, rng, recipe):
    """What a Flite or Festival speaker's utterance varies: (text, pitch factor, tempo factor, vocal tract)."""
    endings = recipe["endings"]  # drawn as for eSpeak, though these engines say a lone word alike with most
    tempo = speaker["tempo"] * rng.uniform(*recipe["utterance_rate_range"])
    text = word + endings[rng.integers(len(endings))]
    pitch = speaker["pitch"] * np.exp(rng.normal(0, PITCH_JITTER))
    tract = speaker["vocal_tract"] * rng.uniform(*recipe["utterance_tract_range"])
    return text, pitch, tempo, tract


def change_vocal_tract(speech, rate, tract):
    """speech recorded at `rate` Hz, resampled to 16 kHz as if it had been recorded at rate / tract:
    pitch and formants shift together, like a longer (tract < 1) or shorter vocal tract."""
    up, down = SAMPLE_RATE // 50, int(round(rate / tract / 50))
    # resample_poly reduces up/down before it applies a given filter, so the filter must be designed
    # for the reduced ratio too; designed for 320/440 it cut a 16 kHz voice at about 200 Hz.
    common = np.gcd(up, down)
    up, down = up // common, down // common
    if up == down:
        return speech
    return scipy.signal.resample_poly(speech, up, down, window=_resampling_filter(up, down))


def _record(speech, rng, recipe):
    """One second clip of speech (16 kHz) at a random onset, in a random room, through a random
    microphone, at a random level, over the clip's own noise."""
    # Trim the engine's leading and trailing silence, keep at most 0.95 s.
    loud = np.flatnonzero(np.abs(speech) > 0.02 * (np.max(np.abs(speech)) + 1e-9))
    if len(loud):
        speech = speech[loud[0] : loud[-1] + 1]
    speech = speech[: int(0.95 * CLIP_SAMPLES)]
    if recipe["compression_range"] is not None:
        speech = compress(speech, rng.uniform(*recipe["compression_range"]))
    if rng.random() < recipe["reverb_probability"]:
        speech = scipy.signal.fftconvolve(speech, _room_impulse_response(rng, rng.uniform(0.1, 0.6), SAMPLE_RATE))
        speech = speech[:CLIP_SAMPLES]
    clip = np.zeros(CLIP_SAMPLES)
    onset = rng.integers(0, CLIP_SAMPLES - len(speech) + 1)
    clip[onset : onset + len(speech)] = speech
    clip = _microphone(rng, clip, recipe["band_limit_probability"])
    if recipe["tilt_range"] is not None:
        clip = set_spectral_tilt(clip, rng.uniform(*recipe["tilt_range"]))
    clip *= 10 ** (rng.uniform(-28, -3) / 20) / (np.max(np.abs(clip)) + 1e-9)
    noise_level = np.sqrt(np.mean(clip**2)) * 10 ** (-rng.uniform(*recipe["snr_range"]) / 20)
    if recipe["noise_exponent_range"] is None:
        noise = rng.standard_normal(CLIP_SAMPLES)  # white
    else:  # coloured, as rooms and microphones mostly are: 1 / f**exponent
        noise = _coloured_noise(rng, CLIP_SAMPLES, rng.uniform(*recipe["noise_exponent_range"]))
        noise /= np.sqrt(np.mean(noise**2))
    clip += noise * noise_level
    if recipe["zero_padding_probability"] and rng.random() < recipe["zero_padding_probability"]:
        clip[rng.integers(onset + len(speech), CLIP_SAMPLES + 1):] = 0.0  # the recording stopped here
    return clip.astype(np.float32)


def compress(speech, amount, floor_db=40.0):
    """speech with its dynamics compressed, as a phone's or laptop's automatic gain control does:
    the quieter parts of a word (consonants) are raised against the loudest (vowels).

    amount 0 changes nothing, 0.5 halves every level difference in dB (2:1); a 20 ms envelope
    sets the gain, and what lies more than floor_db below the peak (pauses) is not raised further.
    """
    window = int(0.02 * SAMPLE_RATE)
    envelope = np.sqrt(np.convolve(speech**2, np.ones(window) / window, mode="same"))
    peak = envelope.max() + 1e-12
    envelope = np.maximum(envelope, peak * 10 ** (-floor_db / 20))
    return speech * (envelope / peak) ** (-amount)


def spectral_tilt(audio, sample_rate=SAMPLE_RATE):
    """Energy above TILT_SPLIT_HZ against energy below it, in dB (real speech: about -15 dB)."""
    return _tilt_of_spectrum(np.fft.rfftfreq(len(audio), 1 / sample_rate), np.abs(np.fft.rfft(audio)) ** 2)


def _tilt_of_spectrum(frequencies, power):
    high = frequencies >= TILT_SPLIT_HZ
    return float(10 * np.log10((power[high].sum() + 1e-12) / (power[~high].sum() + 1e-12)))


def set_spectral_tilt(audio, target_db, max_change_db=MAX_TILT_CHANGE_DB):
    """audio with its highs raised or lowered so that its spectral_tilt is target_db.

    A shelf, as a microphone or a mouth makes: the gain rises over the SHELF_OCTAVES below
    TILT_SPLIT_HZ (raised cosine) and is flat above it; lower down nothing changes. A few steps
    find the shelf's height; it is at most max_change_db either way, so a voice with hardly any
    highs is not turned into amplified noise.
    """
    frequencies = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
    rise = np.clip(np.log2(np.maximum(frequencies, 1.0) / TILT_SPLIT_HZ) / SHELF_OCTAVES + 1.0, 0.0, 1.0)
    shelf = 0.5 - 0.5 * np.cos(np.pi * rise)
    spectrum = np.fft.rfft(audio)
    change = 0.0
    for _ in range(4):
        tilt = _tilt_of_spectrum(frequencies, np.abs(spectrum * (1 + (10 ** (change / 20) - 1) * shelf)) ** 2)
        change = float(np.clip(change + target_db - tilt, -max_change_db, max_change_db))
    return np.fft.irfft(spectrum * (1 + (10 ** (change / 20) - 1) * shelf), len(audio))


# --- Background noise ---------------------------------------------------------------------------


def _coloured_noise(rng, n, exponent):
    """Noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    frequencies[0] = frequencies[1]
    spectrum /= frequencies ** (exponent / 2)
    return np.fft.irfft(spectrum, n)


def _babble(rng, n, espeak, streams=5):
    """Several eSpeak voices talking at once, none of them clearly: like a busy room."""
    mixture = np.zeros(n)
    for _ in range(streams):
        position = int(rng.integers(0, SAMPLE_RATE))
        while position < n:
            voice = f"{ENGLISH_VOICES[rng.integers(len(ENGLISH_VOICES))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
            word = EXTRA_UNKNOWN_WORDS[rng.integers(len(EXTRA_UNKNOWN_WORDS))]
            speech = espeak.speak(word, voice, rate=rng.uniform(140, 220), pitch=rng.uniform(20, 80), pitch_range=50,
                                  noise_seed=rng.integers(2**31))
            speech = scipy.signal.resample_poly(speech, 320, 441, window=_resampling_filter(320, 441))
            end = min(n, position + len(speech))
            mixture[position:end] += speech[: end - position]
            position = end + int(rng.uniform(0.05, 0.4) * SAMPLE_RATE)
    return mixture


def _clinks(rng, n):
    """Dishes: short ringing clinks at random moments over a little running water."""
    t = np.arange(int(0.15 * SAMPLE_RATE)) / SAMPLE_RATE
    water = scipy.signal.sosfilt(_butterworth(4, 2000, "highpass"), rng.standard_normal(n)) * 0.05
    for start in np.cumsum(rng.exponential(SAMPLE_RATE / 3, size=int(4 * n / SAMPLE_RATE))).astype(int):
        if start + len(t) >= n:
            break
        frequency, decay = rng.uniform(1500, 6000), rng.uniform(0.01, 0.06)
        ring = sum(np.sin(2 * np.pi * frequency * k * t) / k for k in (1, 2.7, 5.1)) * np.exp(-t / decay)
        water[start : start + len(t)] += rng.uniform(0.2, 1.0) * ring
    return water


def make_background_noise(seed, seconds=NOISE_SECONDS, kinds=None):
    """Background noise recordings of different colours and textures: {file name: float samples}."""
    kinds = RECIPE["noise_kinds"] if kinds is None else kinds
    rng = np.random.default_rng([seed, 1])
    n = seconds * SAMPLE_RATE
    t = np.arange(n) / SAMPLE_RATE
    makers = {
        "white": lambda: rng.standard_normal(n),
        "pink": lambda: _coloured_noise(rng, n, 1),
        "brown": lambda: _coloured_noise(rng, n, 2),
        "hum": lambda: sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 8))
        + 0.05 * rng.standard_normal(n),
        "running_tap": lambda: scipy.signal.sosfilt(
            scipy.signal.butter(4, [900, 5000], "bandpass", fs=SAMPLE_RATE, output="sos"), rng.standard_normal(n))
        * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * t)),
        "fan": lambda: scipy.signal.sosfilt(
            scipy.signal.butter(2, [80, 1200], "bandpass", fs=SAMPLE_RATE, output="sos"), rng.standard_normal(n))
        + 0.3 * np.sin(2 * np.pi * 120 * t),
        "babble": lambda: _babble(rng, n, ESpeak()),
        "dishes": lambda: _clinks(rng, n),
    }
    unknown = [kind for kind in kinds if kind not in makers]
    if unknown:
        raise ValueError(f"Unknown noise kind(s) {unknown}; choose from {sorted(makers)}.")
    noises = {f"{kind}.wav": makers[kind]() for kind in kinds}
    return {name: 0.5 * x / np.max(np.abs(x)) for name, x in noises.items()}


# --- Writing the dataset ------------------------------------------------------------------------

def _speak_speakers(out_dir, speakers, words, seed, recipe):
    """Worker task: writes every utterance of a chunk of speakers into out_dir.

    eSpeak keeps state from one utterance to the next (its pitch flutter runs on), so each chunk
    runs in a fresh process (see make_synthetic_dataset): its output then depends only on the chunk.
    """
    espeak = ESpeak()
    for speaker in speakers:
        utterances, paths = [], []
        for word in words + speaker["extra_words"]:
            (Path(out_dir) / word).mkdir(exist_ok=True)
            repetitions = CORE_REPETITIONS if word in CORE_WORDS else 1
            for n in range(repetitions):
                word_seed = int(hashlib.sha1(word.encode()).hexdigest()[:8], 16)
                utterances.append((word, np.random.default_rng([seed, int(speaker["id"], 16), word_seed, n])))
                paths.append(Path(out_dir) / word / f"{speaker['id']}_nohash_{n}.wav")
        speeches = _speeches(espeak, speaker, utterances, recipe)
        for (_, rng), speech, path in zip(utterances, speeches, paths):
            write_wav(path, _record(speech, rng, recipe))


def _write_background_noise(out_dir, seed, kinds):
    """Worker task: writes the background noise files into out_dir."""
    (Path(out_dir) / "_background_noise_").mkdir()
    for name, noise in make_background_noise(seed, kinds=kinds).items():
        write_wav(Path(out_dir) / "_background_noise_" / name, noise)


def _run_in_worker(function_name, arguments):
    """Runs one of this file's task functions in a fresh `python synthetic.py --worker` process."""
    task = json.dumps({"function": function_name, "arguments": arguments})
    worker = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker"], input=task,
                            capture_output=True, text=True)
    if worker.returncode != 0:
        raise RuntimeError(f"A speech worker failed ({function_name}):\n{worker.stderr[-2000:]}")


def _worker():
    """The worker's side: one task, as JSON on standard input."""
    task = json.loads(sys.stdin.read())
    {"_speak_speakers": _speak_speakers, "_write_background_noise": _write_background_noise}[task["function"]](
        *task["arguments"])


def _settings(seed, speakers, words, recipe, engines=None):
    """What a dataset is made from, as recorded in its marker file; engines ({name: version}) is
    recorded where a recipe uses an engine besides eSpeak."""
    # version 5: no voice variant draws from the C library's rand() (see VARIANTS)
    # version 6: the vocal-tract resampling keeps the voice's whole band (see change_vocal_tract)
    settings = {"seed": seed, "speakers": speakers, "words": list(words), "recipe": recipe, "version": 6}
    return settings if engines is None else {**settings, "engines": engines}


def full_recipe(overrides=None):
    """RECIPE with overrides; with an option's entries (FLITE_RECIPE, FESTIVAL_RECIPE) too where the
    overrides name any of them."""
    overrides = overrides or {}
    recipe = dict(RECIPE)
    for option in OPTIONS:
        if any(key in option for key in overrides):
            recipe.update(option)
    return {**recipe, **overrides}


def engines_of(recipe):
    """The engines a recipe speaks with and their versions, {"espeak-ng": ..., "flite": ..., "festival":
    ...}, or None for eSpeak alone (as the default set). Checks first that each engine and the
    recipe's voices are there: a RuntimeError says how to install it, a ValueError names a voice it lacks."""
    flite_share, festival_share = recipe.get("flite_share", 0.0), recipe.get("festival_share", 0.0)
    if flite_share <= 0 and festival_share <= 0:
        return None
    if not 0 <= flite_share <= 1 or not 0 <= festival_share <= 1 or flite_share + festival_share > 1:
        raise ValueError(f"flite_share and festival_share must lie in [0, 1] and add up to at most 1, got "
                         f"{flite_share} and {festival_share}.")
    engines = {"espeak-ng": espeak_version()}
    if flite_share > 0:
        import flite_voices

        flite = flite_voices.find_flite()
        _check_voices("flite", recipe["flite_voices"], flite_voices.available_voices(flite))
        engines["flite"] = flite_voices.flite_version(flite)
    if festival_share > 0:
        import festival_voices

        festival = festival_voices.find_festival()
        _check_voices("festival", recipe["festival_voices"], festival_voices.available_voices(festival),
                      festival_voices.INSTALL_HELP)
        engines["festival"] = festival_voices.festival_version(festival)
    return engines


def _check_voices(engine, wanted, available, install_help=""):
    if not wanted:
        raise ValueError(f"{engine}_voices must name at least one voice.")
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise ValueError(f"This {engine} has no voice(s) {missing}; it has {available}.\n{install_help}".strip())


def make_synthetic_dataset(data_dir, seed=0, speakers=DEFAULT_SPEAKERS, words=WORDS, recipe=None, processes=None):
    """Writes the synthetic dataset into data_dir (or reuses it) and returns its path.

    Every speaker says each of `words` (the core words CORE_REPETITIONS times) and a few other
    English words, which serve as more unknowns; `recipe` overrides entries of RECIPE (or of
    FLITE_RECIPE or FESTIVAL_RECIPE, for Flite or Festival voices: the `flite` or `festival`
    program must then be installed).

    Deterministic for given arguments. The set is built in a temporary folder beside data_dir and
    renamed when complete, so an interrupted run never leaves a dataset that looks complete.
    """
    data_dir = Path(data_dir)
    recipe = full_recipe(recipe)
    settings = _settings(seed, speakers, words, recipe, engines_of(recipe))
    marker = data_dir / MARKER_NAME
    if marker.exists():
        if json.loads(marker.read_text()) == settings:
            return data_dir
        raise ValueError(
            f"{data_dir} holds a synthetic dataset made with other settings "
            f"({marker.read_text().strip()}). Delete it or choose another folder."
        )
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ValueError(f"{data_dir} exists and is not empty: choose an empty or new folder.")
    unknown = [w for w in words if not re.fullmatch(r"[a-z]+", w)]
    if unknown:
        raise ValueError(f"Words must be plain lower-case English words, got {unknown}.")
    if speakers < 3:
        raise ValueError("A synthetic dataset needs at least 3 speakers (one for each split).")

    from tqdm.auto import tqdm

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(data_dir.parent, f".{data_dir.name}-building-")  # what a killed run left
    building = work_in_progress(data_dir.parent, f".{data_dir.name}-building-", folder=True)
    try:
        for word in words:
            (building / word).mkdir()
        profiles = [make_speaker(sid, seed, recipe, words)
                    for sid in speaker_ids(speakers, seed)]
        chunks = [profiles[i:i + SPEAKERS_PER_TASK] for i in range(0, len(profiles), SPEAKERS_PER_TASK)]
        # Every task runs in a fresh Python process started as `python synthetic.py --worker`: its
        # output does not depend on which process ran what before, and (unlike multiprocessing's
        # spawn) it never imports the caller's script, so any caller works: a notebook, a script
        # with or without a main guard, `python -c`, a script on standard input.
        tasks = [("_write_background_noise", [str(building), seed, recipe["noise_kinds"]])]
        tasks += [("_speak_speakers", [str(building), chunk, list(words), seed, recipe]) for chunk in chunks]
        with concurrent.futures.ThreadPoolExecutor(processes or os.cpu_count() or 1) as pool:
            done = concurrent.futures.as_completed([pool.submit(_run_in_worker, *task) for task in tasks])
            for task in tqdm(done, total=len(tasks), desc="Speaking the synthetic dataset", unit="task"):
                task.result()
        (building / MARKER_NAME).write_text(json.dumps(settings))
        if data_dir.exists():
            data_dir.rmdir()
        publish(building, data_dir, folder=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return data_dir


def main(argv=None):
    """Command line: python synthetic.py DIR [--seed N] [--speakers N]."""
    import argparse

    parser = argparse.ArgumentParser(description="Write the synthetic Speech-Commands-style dataset.")
    parser.add_argument("data_dir", help="an empty or new folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speakers", type=int, default=DEFAULT_SPEAKERS, help="number of synthetic speakers")
    args = parser.parse_args(argv)
    try:
        path = make_synthetic_dataset(args.data_dir, seed=args.seed, speakers=args.speakers)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    print(f"Synthetic dataset ready in {path}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        _worker()
    else:
        main()
