"""data.py: the split rule, the features the firmware computes, and the AudioProcessor."""

import wave

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.lite.experimental.microfrontend.python.ops import audio_microfrontend_op

import data


def test_words_list_puts_silence_and_unknown_first():
    assert data.prepare_words_list(["yes", "no"]) == ["_silence_", "_unknown_", "yes", "no"]


@pytest.mark.parametrize(
    "filename, expected",
    [
        # The first entries of the published v0.02 validation_list.txt ...
        ("right/a69b9b3e_nohash_0.wav", "validation"),
        ("right/439c84f4_nohash_1.wav", "validation"),
        ("right/409c962a_nohash_1.wav", "validation"),
        ("right/dbaf8fc6_nohash_2.wav", "validation"),
        # ... and of testing_list.txt.
        ("right/bb05582b_nohash_3.wav", "testing"),
        ("right/97f4c236_nohash_2.wav", "testing"),
        ("right/f2e59fea_nohash_3.wav", "testing"),
        ("right/fdb5155e_nohash_2.wav", "testing"),
    ],
)
def test_which_set_matches_the_published_split_lists(filename, expected):
    assert data.which_set(filename, 10, 10) == expected


def test_which_set_keeps_all_recordings_of_a_speaker_together():
    splits = {data.which_set(f"/any/dir/{word}/c0ffee42_nohash_{n}.wav", 10, 10)
              for word in ("yes", "no") for n in range(5)}
    assert len(splits) == 1


def test_which_set_puts_about_the_asked_share_in_each_split():
    names = [f"{i:08x}_nohash_0.wav" for i in range(0, 4000 * 7919, 7919)]
    splits = [data.which_set(name, 10, 10) for name in names]
    assert 0.08 < splits.count("validation") / len(names) < 0.12
    assert 0.08 < splits.count("testing") / len(names) < 0.12


def _speech_like(seconds=1.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    envelope = np.exp(-((t - 0.5) ** 2) / 0.02)
    return (envelope * (3000 * np.sin(2 * np.pi * 220 * t) + 300 * rng.standard_normal(len(t)))).astype(np.int16)


def test_micro_features_are_exactly_what_the_frontend_op_gives(model_settings):
    samples = _speech_like()
    op = audio_microfrontend_op.audio_microfrontend(
        tf.constant(samples), sample_rate=16000, window_size=30, window_step=20, num_channels=40,
        out_scale=1, out_type=tf.float32,
    ).numpy() * (10.0 / 256.0)
    ours = data.compute_features(samples, model_settings, micro=True)
    np.testing.assert_array_equal(ours, op)


def test_micro_features_have_the_lab_shape_and_range(model_settings):
    features = data.compute_features(_speech_like(), model_settings, micro=True)
    assert features.shape == (49, 40)
    assert features.min() >= 0 and 10 < features.max() < 30


def test_float_samples_give_the_same_features_as_their_int16_values(model_settings):
    samples = _speech_like()
    np.testing.assert_array_equal(
        data.compute_features(samples.astype(np.float32) / 32768.0, model_settings),
        data.compute_features(samples, model_settings),
    )


def test_short_clips_are_zero_padded_at_the_end(model_settings):
    short = _speech_like(0.6)
    padded = np.concatenate([short, np.zeros(16000 - len(short), np.int16)])
    np.testing.assert_array_equal(
        data.compute_features(short, model_settings), data.compute_features(padded, model_settings)
    )


def test_mfcc_features_have_the_lab_shape(model_settings):
    features = data.compute_features(_speech_like(), model_settings, micro=False)
    assert features.shape == (49, 40) and np.isfinite(features).all()


@pytest.mark.parametrize(
    "frontend_output, expected",
    [(0, -128), (1, -128), (2, -127), (333, 0), (665, 127), (666, 127), (5000, 127)],
)
def test_quantize_features_reproduces_the_firmware_integer_arithmetic(frontend_output, expected):
    # The firmware computes (v * 256 + 333) // 666 - 128 from the frontend's 16-bit output v.
    assert data.quantize_features(np.array([frontend_output / 25.6]))[0] == expected


def test_quantize_features_agrees_with_the_formula_on_real_features(model_settings):
    features = data.compute_features(_speech_like(), model_settings)
    v = np.round(features * 25.6).astype(np.int64)
    expected = np.clip((v * 256 + 333) // 666 - 128, -128, 127)
    np.testing.assert_array_equal(data.quantize_features(features), expected)


def test_audio_processor_serves_three_splits_with_the_four_labels(audio_processor):
    for mode in audio_processor.Modes:
        labels = {int(label) for _, label in audio_processor.get_data(mode)}
        assert labels == {0, 1, 2, 3}, f"{mode}: {labels}"


def test_examples_are_flat_float_features_and_integer_labels(audio_processor, model_settings):
    features, label = next(iter(audio_processor.get_data(audio_processor.Modes.TRAINING, 0.8, 0.1, 1600)))
    assert features.shape == (model_settings["fingerprint_size"],) and features.dtype == tf.float32
    assert label.dtype.is_integer


def test_silence_and_unknown_are_the_asked_share_of_each_split(audio_processor):
    for mode in audio_processor.Modes:
        counts = np.bincount(audio_processor.labels(mode), minlength=4)
        wanted = counts[2] + counts[3]
        assert counts[0] == int(np.ceil(wanted * 0.25)), mode
        assert counts[1] == int(np.ceil(wanted * 0.25)), mode
        assert audio_processor.set_size(mode) == counts.sum()


def test_splits_share_no_speaker(audio_processor):
    speakers = {}
    for mode in audio_processor.Modes:
        files = [e["file"] for e in audio_processor.data_index[mode] if e["file"]]
        speakers[mode] = {f.split("/")[-1].split("_nohash_")[0] for f in files}
    modes = list(audio_processor.Modes)
    for i, a in enumerate(modes):
        for b in modes[i + 1:]:
            assert not speakers[a] & speakers[b], (a, b)


def test_validation_features_are_the_same_at_every_call(audio_processor):
    first = np.stack([x.numpy() for x, _ in audio_processor.get_data(audio_processor.Modes.VALIDATION)])
    again = np.stack([x.numpy() for x, _ in audio_processor.get_data(audio_processor.Modes.VALIDATION)])
    np.testing.assert_array_equal(first, again)


def test_validation_silence_is_quiet_noise_not_digital_zero(audio_processor):
    dataset = audio_processor.get_data(audio_processor.Modes.VALIDATION)
    silence = np.stack([x.numpy() for x, label in dataset if int(label) == 0])
    assert silence.std(axis=1).max() > 0


def test_training_augmentation_changes_at_every_pass(audio_processor):
    dataset = audio_processor.get_data(audio_processor.Modes.TRAINING, 0.8, 0.1, 1600)
    first_pass = sorted(float(x.numpy().sum()) for x, _ in dataset)
    second_pass = sorted(float(x.numpy().sum()) for x, _ in dataset)
    assert first_pass != second_pass


def test_training_without_augmentation_gives_the_clean_features(audio_processor, model_settings):
    # No shift and no noise: a word example must be the features of its wav file.
    training = audio_processor.Modes.TRAINING
    first_word = next(e["file"] for e in audio_processor.data_index[training] if e["file"])
    clean = data.compute_features(data.read_wav(first_word, 16000), model_settings)
    served = np.stack([x.numpy() for x, _ in audio_processor.get_data(training)])
    assert np.any(np.all(served == clean.reshape(1, -1), axis=1))


def test_augmentation_settings_are_refused_outside_training(audio_processor):
    with pytest.raises(ValueError, match="TRAINING"):
        audio_processor.get_data(audio_processor.Modes.VALIDATION, 0.8, 0.1, 1600)


def test_a_missing_wanted_word_is_named_with_the_words_that_exist(small_dataset, model_settings):
    with pytest.raises(ValueError, match=r"\['marvin'\] not found .* most clips first: .*down, .*left, .*yes"):
        data.AudioProcessor(None, small_dataset, 25, 25, ["yes", "marvin"], 10, 10, model_settings)


def test_a_split_without_speakers_is_a_clear_error(small_dataset, model_settings):
    with pytest.raises(ValueError, match="validation split .* no clips"):
        data.AudioProcessor(None, small_dataset, 25, 25, ["yes", "no"], 0, 10, model_settings)


def _write_wav(path, samples, rate=16000, channels=1):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.asarray(samples, "<i2").tobytes())


def test_a_wav_at_another_rate_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "phone.wav"
    _write_wav(path, np.zeros(44100), rate=44100)
    with pytest.raises(ValueError, match=r"phone\.wav.*16000 Hz.*44100 Hz.*sox"):
        data.read_wav(path, 16000)


def test_a_file_that_is_not_a_wav_is_named(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("not audio")
    with pytest.raises(ValueError, match=r"notes\.wav.*not a readable"):
        data.read_wav(path, 16000)


# --- The training feature store --------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(audio_processor):
    return audio_processor.feature_store(0.8, 0.1, 1600)


def _row_choice(store, row):
    return {key: values[row] for key, values in store.choices.items()}


def test_stored_features_are_the_frontend_output_of_the_augmented_audio(audio_processor, store, model_settings):
    set_size = len(store.labels)
    for row in (0, 5, set_size + 5, store.variants * set_size - 1):
        audio = audio_processor.augmented_audio(row % set_size, _row_choice(store, row), 1600)
        expected = data.compute_features(audio, model_settings).reshape(-1)
        served = store.features[row].astype(np.float32) * np.float32(data.FRONTEND_OUTPUT_SCALE)
        np.testing.assert_array_equal(served, expected)


def test_each_clip_is_stored_with_different_shifts_and_noise_levels(store):
    set_size = len(store.labels)
    rows = np.arange(store.variants) * set_size + 3  # every variant of clip 3
    assert store.variants >= 8
    assert len(np.unique(store.choices["offset"][rows])) > store.variants // 2
    assert len(np.unique(store.choices["background_volume"][rows])) > 1
    assert len({store.features[int(r)].tobytes() for r in rows}) == store.variants


def test_augmentation_choices_keep_the_asked_ranges(store):
    words = np.resize(store.labels != data.SILENCE_INDEX, len(store.choices["offset"]))
    assert store.choices["offset"].min() >= 0 and store.choices["offset"].max() <= 2 * 1600
    assert store.choices["background_volume"][words].max() <= 0.1
    assert 0.6 < np.mean(store.choices["background_volume"][words] > 0) < 0.95  # background_frequency 0.8


def test_training_examples_are_served_from_the_store(audio_processor, store):
    stored = {row.tobytes() for row in store.features}
    dataset = audio_processor.get_data(audio_processor.Modes.TRAINING, 0.8, 0.1, 1600)
    served = [np.round(x.numpy() / data.FRONTEND_OUTPUT_SCALE).astype(np.uint16) for x, _ in dataset.take(200)]
    assert all(row.tobytes() in stored for row in served)


def test_validation_features_are_those_of_the_clips_untouched_by_the_store(audio_processor, store, model_settings):
    validation = audio_processor.Modes.VALIDATION
    served = np.stack([x.numpy() for x, _ in audio_processor.get_data(validation)])
    for i, entry in enumerate(audio_processor.data_index[validation][:20]):
        if entry["file"]:
            clean = data.compute_features(data.read_wav(entry["file"], 16000), model_settings)
            np.testing.assert_array_equal(served[i], clean.reshape(-1))


def test_the_store_shrinks_so_that_the_whole_data_of_the_task_fits_the_limit(audio_processor, small_dataset,
                                                                             model_settings):
    variant_bytes = audio_processor.set_size(audio_processor.Modes.TRAINING) * model_settings["fingerprint_size"] * 2
    beside_store = sum(audio_processor.memory_plan(1).values()) - variant_bytes
    limit = beside_store + 3 * variant_bytes + 100
    processor = data.AudioProcessor(None, small_dataset, 25, 25, ["yes", "no"], 10, 10, model_settings,
                                    stored_variants=16, store_limit_bytes=limit)
    assert processor.stored_variants == 3
    assert sum(processor.memory_plan().values()) <= limit
    assert processor.feature_store(0.8, 0.1, 1600).nbytes == 3 * variant_bytes


def test_the_store_is_one_numpy_array_not_a_tensorflow_copy(store):
    assert isinstance(store.features, np.ndarray)


# --- Memory --------------------------------------------------------------------------------------

SIZES = {"training": 9_567, "validation": 1_200, "testing": 1_300}


def test_memory_plan_counts_the_store_the_evaluation_features_and_a_chunk_of_audio(model_settings):
    plan = data.memory_plan(SIZES, model_settings, 26, 2, 1600)
    assert plan["training feature store"] == 26 * 9_567 * 1960 * 2
    assert plan["validation and test features"] == 2_500 * 1960 * 4
    assert plan["working buffers"] == 2 * data.READ_CHUNK * 19_200 * 2


def test_without_a_store_the_plan_holds_all_training_audio(model_settings):
    plan = data.memory_plan(SIZES, model_settings, 0, 2, 1600)
    assert plan["training audio"] == 2 * 9_567 * 19_200 * 2
    assert "training feature store" not in plan


def test_variants_within_keeps_the_other_parts_inside_the_limit():
    assert data.variants_within(32, limit_bytes=1000, variant_bytes=100, other_bytes=350) == 6
    assert data.variants_within(4, limit_bytes=1000, variant_bytes=100, other_bytes=350) == 4
    assert data.variants_within(32, limit_bytes=100, variant_bytes=100, other_bytes=350) == 1
    assert data.variants_within(0, limit_bytes=1000, variant_bytes=100, other_bytes=0) == 0


def test_a_task_that_fits_gets_no_memory_message():
    plan = {"training feature store": 2**30, "working buffers": 2**28}
    assert data.memory_message(plan, available_bytes=4 * 2**30, variant_bytes=2**27, stored_variants=8) is None


def test_a_task_that_does_not_fit_is_told_the_figures_and_the_variants_that_fit():
    plan = {"training feature store": 8 * 2**28, "working buffers": 2**28}  # 2.25 GiB
    message = data.memory_message(plan, available_bytes=2 * 2**30, variant_bytes=2**28, stored_variants=8)
    assert "2.75 GiB" in message and "2.00 GiB available" in message
    assert "stored_variants=5" in message  # 5 x 0.25 + 0.25 + 0.5 headroom = 2.00 and "fewer keywords" in message


def test_when_even_one_variant_does_not_fit_the_message_says_fewer_keywords():
    plan = {"training feature store": 2**30, "validation and test features": 3 * 2**30}
    message = data.memory_message(plan, available_bytes=2 * 2**30, variant_bytes=2**30, stored_variants=1)
    assert "stored_variants=" not in message and "fewer keywords" in message


def test_the_audio_processor_refuses_a_task_beyond_the_available_memory_before_any_work(
        small_dataset, model_settings, monkeypatch):
    monkeypatch.setattr(data, "available_memory", lambda: 2**20)
    with pytest.raises(MemoryError, match=r"1 MiB|0\.00 GiB available"):
        data.AudioProcessor(None, small_dataset, 25, 25, ["yes", "no"], 10, 10, model_settings)


def test_stored_variants_zero_augments_every_example_anew(small_dataset, model_settings):
    processor = data.AudioProcessor(None, small_dataset, 25, 25, ["yes", "no"], 10, 10, model_settings,
                                    stored_variants=0)
    dataset = processor.get_data(processor.Modes.TRAINING, 0.8, 0.1, 1600)
    first = sorted(float(x.numpy().sum()) for x, _ in dataset)
    assert first != sorted(float(x.numpy().sum()) for x, _ in dataset)
    assert processor.stored_variants == 0


def test_validation_and_test_sets_state_their_size_so_keras_sees_where_a_pass_ends(audio_processor):
    # Without it Keras warns "Your input ran out of data" after every validation, misleading students.
    for mode in (audio_processor.Modes.VALIDATION, audio_processor.Modes.TESTING):
        assert int(audio_processor.get_data(mode).cardinality()) == audio_processor.set_size(mode)
