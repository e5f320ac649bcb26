"""Model settings and the model zoo of the kit.

`prepare_model_settings` turns the lab's audio settings into the sizes every other module needs.
`get_model` builds a Keras model by architecture name: the model takes the flat feature vector
(`fingerprint_size` values) and returns `label_count` softmax probabilities.
"""

import keras


def prepare_model_settings(
    label_count,
    sample_rate,
    clip_duration_ms,
    window_size_ms,
    window_stride_ms,
    dct_coefficient_count,
):
    """Calculates the sizes the data pipeline and the models share.

    Args:
        label_count: How many classes to recognize (silence + unknown + wanted words).
        sample_rate: Audio samples per second.
        clip_duration_ms: Length of each audio clip.
        window_size_ms: Length of one feature frame.
        window_stride_ms: Time between the starts of two frames.
        dct_coefficient_count: Channels (frequency bins) per frame.

    Returns:
        Dict with desired_samples, window_size_samples, window_stride_samples, spectrogram_length,
        dct_coefficient_count, fingerprint_size, label_count and sample_rate.
    """
    desired_samples = int(sample_rate * clip_duration_ms / 1000)
    window_size_samples = int(sample_rate * window_size_ms / 1000)
    window_stride_samples = int(sample_rate * window_stride_ms / 1000)
    length_minus_window = desired_samples - window_size_samples
    if length_minus_window < 0:
        spectrogram_length = 0
    else:
        spectrogram_length = 1 + int(length_minus_window / window_stride_samples)
    fingerprint_size = dct_coefficient_count * spectrogram_length
    return {
        "desired_samples": desired_samples,
        "window_size_samples": window_size_samples,
        "window_stride_samples": window_stride_samples,
        "spectrogram_length": spectrogram_length,
        "dct_coefficient_count": dct_coefficient_count,
        "fingerprint_size": fingerprint_size,
        "label_count": label_count,
        "sample_rate": sample_rate,
    }
