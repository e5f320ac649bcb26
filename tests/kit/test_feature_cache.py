"""The cache on disk beside the dataset: a second run reuses the evaluation features and the
training store; a changed dataset or setting misses; a half-written entry is never used."""

import shutil

import numpy as np
import pytest

import data

TRAINING, VALIDATION = data.AudioProcessor.Modes.TRAINING, data.AudioProcessor.Modes.VALIDATION
AUGMENTATION = (0.8, 0.1, 1600)


@pytest.fixture
def dataset(small_dataset, tmp_path):
    """A private copy of the small set (real copies: tests here change files)."""
    return shutil.copytree(small_dataset, tmp_path / "speech", ignore=shutil.ignore_patterns(data.CACHE_DIR_NAME))


def processor(dataset, model_settings, words=("yes", "no"), **options):
    return data.AudioProcessor(None, dataset, 25, 25, list(words), 10, 10, model_settings,
                               stored_variants=2, **options)


def forbid_computing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("computed although it was cached")

    monkeypatch.setattr(data.AudioProcessor, "_make_feature_store", fail)
    monkeypatch.setattr(data.AudioProcessor, "_compute_features", fail)


def test_the_cache_lives_in_the_dataset_folder_so_it_goes_with_it(dataset, model_settings):
    folder = processor(dataset, model_settings).cache_folder()
    assert folder.parent == dataset / data.CACHE_DIR_NAME


def test_a_second_run_with_the_same_inputs_reads_everything_from_the_cache(dataset, model_settings, monkeypatch):
    first = processor(dataset, model_settings)
    validation = first._cached_features(VALIDATION)
    store = first.feature_store(*AUGMENTATION)
    forbid_computing(monkeypatch)
    second = processor(dataset, model_settings)
    np.testing.assert_array_equal(second._cached_features(VALIDATION), validation)
    cached = second.feature_store(*AUGMENTATION)
    assert isinstance(cached.features, np.memmap)  # memory-mapped, not read into memory
    np.testing.assert_array_equal(cached.features, store.features)
    for key in store.choices:
        np.testing.assert_array_equal(cached.choices[key], store.choices[key])


def test_training_examples_are_served_from_a_memory_mapped_store(dataset, model_settings):
    processor(dataset, model_settings).feature_store(*AUGMENTATION)
    second = processor(dataset, model_settings)
    stored = {row.tobytes() for row in second.feature_store(*AUGMENTATION).features}
    served = second.get_data(TRAINING, *AUGMENTATION).take(50)
    assert all(np.round(x.numpy() / data.FRONTEND_OUTPUT_SCALE).astype(np.uint16).tobytes() in stored
               for x, _ in served)


def test_a_changed_clip_makes_a_new_cache_entry(dataset, model_settings):
    before = processor(dataset, model_settings).cache_folder()
    clip = sorted((dataset / "yes").glob("*.wav"))[0]
    clip.write_bytes(clip.read_bytes() + b"\0\0")  # one more sample: another size
    assert processor(dataset, model_settings).cache_folder() != before


def test_other_words_or_splits_use_another_entry(dataset, model_settings):
    folder = processor(dataset, model_settings).cache_folder()
    assert processor(dataset, model_settings, words=("yes", "up")).cache_folder() != folder
    other_split = data.AudioProcessor(None, dataset, 25, 25, ["yes", "no"], 20, 10, model_settings)
    assert other_split.cache_folder() != folder


def test_other_augmentation_settings_make_another_store(dataset, model_settings, monkeypatch):
    first = processor(dataset, model_settings)
    first.feature_store(*AUGMENTATION)
    made = []
    original = data.AudioProcessor._make_feature_store
    monkeypatch.setattr(data.AudioProcessor, "_make_feature_store",
                        lambda self, *args: made.append(args[0]) or original(self, *args))
    processor(dataset, model_settings).feature_store(0.5, 0.1, 1600)
    assert made == [(0.5, 0.1, 1600)]


def test_a_store_interrupted_while_written_is_never_used(dataset, model_settings, monkeypatch):
    first = processor(dataset, model_settings)
    monkeypatch.setattr(np, "savez", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        first.feature_store(*AUGMENTATION)
    monkeypatch.undo()
    assert not list(first.cache_folder().iterdir())  # neither a store nor its temporary folder
    made = []
    original = data.AudioProcessor._make_feature_store
    monkeypatch.setattr(data.AudioProcessor, "_make_feature_store",
                        lambda self, *args: made.append(args[0]) or original(self, *args))
    processor(dataset, model_settings).feature_store(*AUGMENTATION)
    assert len(made) == 1


def test_a_truncated_array_file_reads_as_missing(tmp_path):
    path = tmp_path / "validation.npy"
    data.write_array(path, np.ones((10, 4), np.float32))
    assert data.read_array(path, (10, 4)) is not None
    path.write_bytes(path.read_bytes()[:100])
    assert data.read_array(path, (10, 4)) is None
    assert data.read_array(tmp_path / "missing.npy", (10, 4)) is None


def test_an_array_of_another_shape_reads_as_missing(tmp_path):
    data.write_array(tmp_path / "testing.npy", np.ones((10, 4), np.float32))
    assert data.read_array(tmp_path / "testing.npy", (11, 4)) is None


def test_cache_false_writes_nothing(dataset, model_settings):
    off = processor(dataset, model_settings, cache=False)
    off.feature_store(*AUGMENTATION)
    off._cached_features(VALIDATION)
    assert not (dataset / data.CACHE_DIR_NAME).exists()


def test_the_cache_key_changes_with_every_part():
    base = data.cache_key([("yes/a.wav", 32044, 1)], [25, 25], {"sample_rate": 16000})
    assert data.cache_key([("yes/a.wav", 32044, 2)], [25, 25], {"sample_rate": 16000}) != base
    assert data.cache_key([("yes/a.wav", 32044, 1)], [25, 20], {"sample_rate": 16000}) != base
    assert data.cache_key([("yes/a.wav", 32044, 1)], [25, 25], {"sample_rate": 8000}) != base
    assert data.cache_key([("yes/a.wav", 32044, 1)], [25, 25], {"sample_rate": 16000}) == base


def test_the_cache_folder_is_not_taken_for_a_word_of_the_dataset(dataset, model_settings):
    import synthetic
    from conftest import SMALL_WORDS

    processor(dataset, model_settings).feature_store(*AUGMENTATION)
    (dataset / synthetic.MARKER_NAME).unlink(missing_ok=True)  # described as a real dataset: by its folders
    assert synthetic.describe_dataset(dataset)["words"] == len(SMALL_WORDS)
