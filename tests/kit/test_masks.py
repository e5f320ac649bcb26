"""SpecAugment-style masks on the training features (data.mask_features, get_data's mask settings)."""

import numpy as np
import pytest
import tensorflow as tf

import data


def _features(model_settings, batch=64, seed=0):
    values = np.random.default_rng(seed).uniform(1, 26, (batch, model_settings["fingerprint_size"]))
    return tf.constant(values.astype(np.float32))


def _images(features, model_settings):
    shape = (-1, model_settings["spectrogram_length"], model_settings["dct_coefficient_count"])
    return np.asarray(features).reshape(shape)


def _masked_bands(before, after, model_settings):
    """Per example: the masked frames and the masked channels (a masked value is the example's mean)."""
    changed = _images(before, model_settings) != _images(after, model_settings)
    return [(np.flatnonzero(c.all(axis=1)), np.flatnonzero(c.all(axis=0))) for c in changed]


def test_the_same_seed_masks_the_same_way(model_settings):
    features, seed = _features(model_settings), tf.constant([3, 4], tf.int64)
    first = data.mask_features(features, seed, model_settings, 10, 8)
    np.testing.assert_array_equal(first, data.mask_features(features, seed, model_settings, 10, 8))
    other = data.mask_features(features, tf.constant([3, 5], tf.int64), model_settings, 10, 8)
    assert not np.array_equal(first, other)


def test_masks_are_bands_no_wider_than_asked_set_to_the_example_s_mean(model_settings):
    features = _features(model_settings)
    masked = data.mask_features(features, tf.constant([1, 2], tf.int64), model_settings, 10, 8)
    images, means = _images(masked, model_settings), _images(features, model_settings).mean(axis=(1, 2))
    widths = []
    for image, mean, (frames, channels) in zip(images, means, _masked_bands(features, masked, model_settings)):
        for band in (frames, channels):
            assert len(band) == 0 or np.array_equal(band, np.arange(band[0], band[-1] + 1))  # one band
        assert len(frames) <= 10 and len(channels) <= 8
        np.testing.assert_allclose(image[frames, :], mean, rtol=1e-5)
        np.testing.assert_allclose(image[:, channels], mean, rtol=1e-5)
        widths.append((len(frames), len(channels)))
    assert len(set(widths)) > 10  # widths and places are drawn per example


def test_zero_widths_leave_the_features_as_they_are(model_settings):
    features = _features(model_settings)
    np.testing.assert_array_equal(data.mask_features(features, tf.constant([1, 2], tf.int64), model_settings, 0, 0),
                                  features)


def test_training_serves_masked_store_features_where_masks_are_asked(audio_processor, model_settings):
    store = audio_processor.feature_store(0.8, 0.1, 1600)
    stored = {row.tobytes() for row in store.features}
    dataset = audio_processor.get_data(audio_processor.Modes.TRAINING, 0.8, 0.1, 1600, time_mask_frames=10,
                                       frequency_mask_channels=8)
    served = [x.numpy() for x, _ in dataset.take(200)]
    unmasked = [np.round(x / data.FRONTEND_OUTPUT_SCALE).astype(np.uint16).tobytes() in stored for x in served]
    assert sum(unmasked) < len(served) / 4  # only examples whose two bands both came out 0 wide


def test_the_store_itself_keeps_the_frontend_s_features_when_masks_are_asked(audio_processor, model_settings):
    before = audio_processor.feature_store(0.8, 0.1, 1600).features.copy()
    next(iter(audio_processor.get_data(audio_processor.Modes.TRAINING, 0.8, 0.1, 1600, time_mask_frames=10,
                                       frequency_mask_channels=8).batch(100)))
    np.testing.assert_array_equal(audio_processor.feature_store(0.8, 0.1, 1600).features, before)


def test_masks_are_refused_outside_training(audio_processor):
    with pytest.raises(ValueError, match="TRAINING"):
        audio_processor.get_data(audio_processor.Modes.VALIDATION, time_mask_frames=10)
