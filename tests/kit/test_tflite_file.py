"""tflite_file.py: one reading of a .tflite file gives every part of the kit its view of the model."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import tflite_file

pytestmark = pytest.mark.slow


def test_the_view_carries_the_input_and_output_quantization_litert_reads(converted_xs):
    _, int8_path = converted_xs
    m = tflite_file.load_model(int8_path)
    interpreter = Interpreter(model_path=str(int8_path))
    for tensor, details in ((m.inputs[0], interpreter.get_input_details()[0]),
                            (m.outputs[0], interpreter.get_output_details()[0])):
        scale, zero_point = details["quantization"]
        assert tensor.quantization == (pytest.approx(scale), zero_point)
        assert tensor.dtype == np.dtype(details["dtype"]).name


def test_the_view_holds_the_file_so_nothing_reads_it_twice(converted_xs):
    _, int8_path = converted_xs
    m = tflite_file.load_model(int8_path)
    assert m.content == int8_path.read_bytes() and m.file_size == len(m.content)
    assert tflite_file.load_model(m) is m


def test_a_damaged_model_is_refused_with_its_name(converted_xs, tmp_path):
    _, int8_path = converted_xs
    damaged = tmp_path / "damaged.tflite"
    content = bytearray(int8_path.read_bytes())
    content[8:] = b"\xff" * (len(content) - 8)
    damaged.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="damaged.tflite is damaged"):
        tflite_file.load_model(damaged)


def test_a_missing_model_says_to_convert_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="Convert the model first"):
        tflite_file.load_model(tmp_path / "missing.tflite")


def test_each_constant_knows_its_buffer_and_the_bytes_stored_there(converted_xs):
    m = tflite_file.load_model(converted_xs[1])
    for tensor in m.tensors:
        if tensor.is_constant:
            assert tensor.stored_bytes == tensor.bytes > 0 and tensor.buffer > 0, tensor
        else:
            assert tensor.stored_bytes == 0, tensor
    constants = [t for t in m.tensors if t.is_constant]
    assert len({t.buffer for t in constants}) == len(constants)  # the converter gave each its own
