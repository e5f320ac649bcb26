"""Converting a trained Keras model to TFLite: float32, or int8 for the microcontroller.

int8 conversion is full-integer post-training quantization: weights and activations become int8
(biases int32), calibrated on NUM_REP_DATA_SAMPLES validation examples, with int8 input and output.
The model is converted with a fixed batch of 1, as it runs on the board.

`export_c_array` writes the .tflite as a C array for a TFLite-Micro firmware.

Each training run keeps its converted models in its own folder (`<run>/models/`, see
`run_models_dir`), so converting a new design never overwrites an earlier one. The files a
submission hands in live in the kit's `models/`: `copy_run_models` puts one chosen run's there.
"""

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

import data
import lab
from checkpoints import read_run_record, run_of_checkpoint, with_weights
from files import write_atomically

NUM_REP_DATA_SAMPLES = 100  # validation examples used to calibrate the int8 ranges


def convert(model, audio_processor, checkpoint, quantize, inference_type, tflite_path,
            pin_input_quantization=False):
    """Converts model with the checkpoint's weights and writes tflite_path.

    The weights are loaded into a batch-1 copy: the model passed in keeps its own.

    Args:
        model: The Keras model (its architecture must match the checkpoint).
        audio_processor: Source of the representative (validation) examples.
        checkpoint: A .weights.h5 file to load first, or None to convert the weights as they are.
        quantize: False for a float32 model, True for int8 post-training quantization.
        inference_type: "fp32" or "int8": the type of the model's input and output tensors.
        tflite_path: Where to write the model; the folder is created.
        pin_input_quantization: int8 only: fix the input quantization to the firmware's feature
            mapping (scale 666 / (25.6 * 256), zero point -128, see data.quantize_features), so
            features computed on the board feed the model unchanged.

    Returns:
        The path written. A `<model>.json` beside it records the model's provenance (the run.json
        of the checkpoint's run, see provenance.py; provenance.read reads it back) and, for int8
        models, the input and output scale and zero point.
    """
    if inference_type not in ("fp32", "int8"):
        raise ValueError(f"inference_type must be 'fp32' or 'int8', got {inference_type!r}.")
    if inference_type == "int8" and not quantize:
        raise ValueError("An int8 input/output needs quantize=True.")
    if pin_input_quantization and inference_type != "int8":
        raise ValueError("pin_input_quantization applies to int8 models only.")
    converter = tf.lite.TFLiteConverter.from_keras_model(with_weights(model, checkpoint, batch_size=1))
    if quantize:
        quantizing(converter, _representative_dataset(audio_processor, pin_input_quantization),
                   int8_io=inference_type == "int8")
    tflite_model = converter.convert()

    tflite_path = Path(tflite_path)
    description = {"provenance": read_run_record(checkpoint) if checkpoint else None}
    if inference_type == "int8":
        description.update(model_quantization(tflite_model))
        if pin_input_quantization and not _is_firmware_mapping(description["input"]):
            raise RuntimeError(
                f"The converter chose input quantization {description['input']} instead of the "
                "firmware mapping; the model was not written."
            )
    write_atomically(tflite_path, tflite_model)
    write_atomically(tflite_path.with_suffix(".json"), json.dumps(description, indent=2) + "\n")
    return tflite_path


def quantizing(converter, representative_dataset, int8_io):
    """The converter set up for post-training full-integer quantization (int8 kernels only), calibrated
    on representative_dataset; int8_io: int8 input and output tensors too, as the board takes them."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def convert_without_data(keras_model, tflite_path, calibration_examples=8):
    """keras_model as a full-integer int8 .tflite at batch 1 (int8 input and output), calibrated on
    random features in the frontend's range instead of data: for what does not depend on training
    (operators, shapes, sizes, MACs, memory plans). Its biases are drawn anew in a batch-1 copy first,
    small and non-zero, since the converter drops an all-zero bias (as an untrained layer's is);
    keras_model itself is left as it is. Returns the path written."""
    import models

    copy = models.with_batch_size(keras_model, 1)
    rng = np.random.default_rng(0)
    for layer in copy.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype("float32"))
    size = copy.input_shape[-1]
    converter = quantizing(
        tf.lite.TFLiteConverter.from_keras_model(copy),
        lambda: ([rng.uniform(0, 26, (1, size)).astype(np.float32)] for _ in range(calibration_examples)),
        int8_io=True)
    write_atomically(tflite_path, converter.convert())
    return Path(tflite_path)


def _representative_dataset(audio_processor, pin_input_quantization):
    """Generator of exactly NUM_REP_DATA_SAMPLES validation examples, one per batch.

    To pin the input quantization, the examples are clipped to the firmware's int8 range
    [0, 255 * scale] and the first one holds both ends of it, so the calibrated input range is
    exactly the firmware's.
    """
    features = np.stack([x.numpy() for x, _ in
                         audio_processor.get_data(audio_processor.Modes.VALIDATION).take(NUM_REP_DATA_SAMPLES)])
    if len(features) < NUM_REP_DATA_SAMPLES:
        features = np.resize(features, (NUM_REP_DATA_SAMPLES, features.shape[1]))
    if pin_input_quantization:
        high = 255 * data.INT8_FEATURE_SCALE
        features = np.clip(features, 0.0, high)
        features[0, 0], features[0, -1] = 0.0, high

    def generate():
        for example in features:
            yield [example[np.newaxis, :].astype(np.float32)]

    return generate


def model_quantization(tflite_model):
    """{"input": {...}, "output": {...}} scale and zero point of a model's input and output."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=bytes(tflite_model))
    result = {}
    for key, details in (("input", interpreter.get_input_details()[0]),
                         ("output", interpreter.get_output_details()[0])):
        scale, zero_point = details["quantization"]
        result[key] = {"scale": float(scale), "zero_point": int(zero_point), "dtype": details["dtype"].__name__}
    return result


def print_input_quantization(tflite_path):
    """The int8 model's input scale and zero point beside the firmware's feature mapping."""
    quantization = json.loads(Path(tflite_path).with_suffix(".json").read_text())["input"]
    print(f"Input quantization: scale {quantization['scale']:.6f}, zero point {quantization['zero_point']} "
          f"(firmware features: scale {data.INT8_FEATURE_SCALE:.6f}, zero point {data.INT8_FEATURE_ZERO_POINT})")


def _is_firmware_mapping(quantization):
    return (abs(quantization["scale"] - data.INT8_FEATURE_SCALE) < 1e-6 * data.INT8_FEATURE_SCALE
            and quantization["zero_point"] == data.INT8_FEATURE_ZERO_POINT)


def export_c_array(tflite_path, out_dir, variable_name="g_model"):
    """Writes model_data.cc / model_data.h: the model as an aligned const unsigned char array.

    What `xxd -i` gives, but 16-byte aligned (TFLite-Micro reads the flatbuffer in place) and with
    a declared length. Returns (cc_path, h_path).
    """
    model_bytes = Path(tflite_path).read_bytes()
    out_dir = Path(out_dir)
    header = (
        f"// The model {Path(tflite_path).name} as a C array, written by MicroKWS convert.py.\n"
        "#ifndef MODEL_DATA_H_\n#define MODEL_DATA_H_\n\n"
        f"extern const unsigned char {variable_name}[];\n"
        f"extern const unsigned int {variable_name}_len;\n\n"
        "#endif  // MODEL_DATA_H_\n"
    )
    rows = [", ".join(f"0x{b:02x}" for b in model_bytes[i:i + 12]) for i in range(0, len(model_bytes), 12)]
    source = (
        f"// The model {Path(tflite_path).name} as a C array, written by MicroKWS convert.py.\n"
        '#include "model_data.h"\n\n'
        f"alignas(16) const unsigned char {variable_name}[] = {{\n  " + ",\n  ".join(rows) + "\n};\n"
        f"const unsigned int {variable_name}_len = {len(model_bytes)};\n"
    )
    cc_path, h_path = out_dir / "model_data.cc", out_dir / "model_data.h"
    write_atomically(h_path, header)
    write_atomically(cc_path, source)
    return cc_path, h_path


def run_models_dir(checkpoint):
    """Where the models converted from a checkpoint go: the models/ folder of the checkpoint's run."""
    return run_of_checkpoint(checkpoint) / "models"


def model_paths(models_dir, model_name, wanted_words):
    """The file names of a model for some keywords ("yes,no") in a folder.

    {"float": <name>_<words>.tflite, "int8": <name>_<words>_quantized.tflite, "c_array": <name>_<words>_c/}
    """
    base = Path(models_dir) / f"{model_name}_{lab.keyword_stem(wanted_words)}"
    return {"float": base.with_name(base.name + ".tflite"),
            "int8": base.with_name(base.name + "_quantized.tflite"),
            "c_array": base.with_name(base.name + "_c")}


def copy_run_models(run_dir, models_dir, model_name, wanted_words):
    """Copies a run's converted models (both .tflite files with their .json, and the C array) into
    models_dir, where submit.py looks for them. Returns the paths written.

    Nothing is copied unless the run has all of them.
    """
    source, target = (model_paths(Path(run_dir) / "models", model_name, wanted_words),
                      model_paths(models_dir, model_name, wanted_words))
    pairs = []
    for key in ("float", "int8"):
        pairs += [(source[key], target[key]), (source[key].with_suffix(".json"), target[key].with_suffix(".json"))]
    pairs += [(source["c_array"] / name, target["c_array"] / name) for name in ("model_data.cc", "model_data.h")]
    missing = [str(s) for s, _ in pairs if not s.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Run {Path(run_dir).name} has no converted {model_name} models for {wanted_words} ({missing[0]} is "
            "missing): convert a checkpoint of that run first (section 7)."
        )
    for s, t in pairs:
        write_atomically(t, s.read_bytes())
    return [t for _, t in pairs]
