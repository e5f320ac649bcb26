"""Running a .tflite model: the runtimes, TFLite-Micro's availability and the device's fallback.

Three runtimes:
- "tflm": TFLite-Micro's own kernels, the ones the microcontroller runs: the device's figures;
- "litert_reference": LiteRT's reference kernels, nearly TFLite-Micro's integer arithmetic: the
  outputs differ by a few int8 steps at most, where classes lie close together (see
  test_tflite.compare_runtimes); the device's stand-in where TFLite-Micro is not installed;
- "litert": LiteRT with its default optimized kernels (XNNPACK), fastest, a few steps off.
int8 inputs are quantized, and int8 outputs read, with the model's own scale and zero point.

The measuring modules (estimate.py, challenge.py) and the testing one (test_tflite.py) share it.
"""

import numpy as np

from test import get_accuracy, get_confusion_matrix
from tflite_file import load_model

RUNTIMES = ("litert", "litert_reference", "tflm")
MODES = {"train": "TRAINING", "training": "TRAINING", "validation": "VALIDATION",
         "test": "TESTING", "testing": "TESTING"}
TFLM_MISSING = ("TFLite-Micro (the tflite-micro package) is not installed here: it is published for Linux "
                "x86_64 only. The kit uses LiteRT's reference kernels (runtime=\"litert_reference\") instead.")


def tflite_micro_available():
    """True where the tflite-micro package imports (its wheels exist for Linux x86_64 only)."""
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError:
        return False
    return True


def device_runtime():
    """The runtime whose figures stand for the device: TFLite-Micro, else LiteRT's reference kernels."""
    return "tflm" if tflite_micro_available() else "litert_reference"


# What stands for the device under each runtime device_runtime() can return: the kernels that
# classify and the arena figure (estimate.arena_usage), in one line for a report.
DEVICE_FIGURES = {
    "tflm": "TFLite-Micro's kernels and arena, as on the microcontroller",
    "litert_reference": "LiteRT's reference kernels and the kit's memory planner (TFLite-Micro is not installed "
                        "here, it is published for Linux x86_64 only; the grader measures with TFLite-Micro)",
}


class TFLiteModel:
    """A .tflite model (a path or a tflite_file.Model) ready to classify flat feature vectors, one at
    a time (batch 1)."""

    def __init__(self, tflite_path, runtime="litert"):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}.")
        model = load_model(tflite_path)
        content = model.content
        self.path, self.runtime = model.path, runtime
        kernels = OpResolverType.BUILTIN_REF if runtime == "litert_reference" else OpResolverType.AUTO
        litert = Interpreter(model_content=content, experimental_op_resolver_type=kernels)
        litert.allocate_tensors()
        self.input = litert.get_input_details()[0]
        self.output = litert.get_output_details()[0]
        if runtime != "tflm":
            self._interpreter = litert
        elif not tflite_micro_available():
            raise RuntimeError(TFLM_MISSING)
        else:
            from tflite_micro.python.tflite_micro import runtime as tflm

            self._interpreter = tflm.Interpreter.from_bytes(content)

    @property
    def input_size(self):
        return int(np.prod(self.input["shape"]))

    def quantize_input(self, features):
        """Float features -> the model's input type, with its own scale and zero point."""
        features = np.asarray(features, np.float32).reshape(self.input["shape"])
        if self.input["dtype"] == np.float32:
            return features
        scale, zero_point = self.input["quantization"]
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(features / scale) + zero_point, info.min, info.max).astype(self.input["dtype"])

    def output_values(self, model_input):
        """The model's raw output (int8 steps for an int8 model) for one input in its input type."""
        if self.runtime == "tflm":
            self._interpreter.set_input(model_input, 0)
            self._interpreter.invoke()
            output = self._interpreter.get_output(0)
        else:
            self._interpreter.set_tensor(self.input["index"], model_input)
            self._interpreter.invoke()
            output = self._interpreter.get_tensor(self.output["index"])
        return np.array(output).reshape(-1)

    def predict_quantized(self, model_input):
        """Class probabilities (float) for one input already in the model's input type."""
        output = self.output_values(model_input)
        if self.output["dtype"] != np.float32:
            scale, zero_point = self.output["quantization"]
            output = (output.astype(np.float32) - zero_point) * scale
        return output

    def predict(self, features):
        """Class probabilities for one flat float feature vector."""
        return self.predict_quantized(self.quantize_input(features))


def check_input_size(model, model_settings):
    if model.input_size != model_settings["fingerprint_size"]:
        raise ValueError(
            f"{model.path} takes {model.input_size} input values but the model settings give "
            f"{model_settings['fingerprint_size']} features ({model_settings['spectrogram_length']} x "
            f"{model_settings['dct_coefficient_count']}): convert a model trained with these settings."
        )


def tflite_test(model_settings, audio_processor, tflite_path, mode="test", runtime="litert"):
    """Runs a .tflite model (a path or a tflite_file.Model) over a split of the dataset.

    Args:
        mode: "test", "validation" or "training".
        runtime: one of RUNTIMES: "litert", "litert_reference" or "tflm" (the device's kernels).

    Returns:
        (accuracy, confusion_matrix)
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}.")
    model = TFLiteModel(tflite_path, runtime)
    check_input_size(model, model_settings)
    dataset = audio_processor.get_data(audio_processor.Modes[MODES[mode]])
    expected, predicted = [], []
    for features, label in dataset.as_numpy_iterator():
        expected.append(int(label))
        predicted.append(int(np.argmax(model.predict(features))))
    return get_accuracy(expected, predicted), get_confusion_matrix(expected, predicted, model_settings)
