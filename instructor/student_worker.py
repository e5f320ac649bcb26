"""The student's side of grading: runs the student's functions and hands back plain values.

    python student_worker.py STUDENT_CODE_DIR KIT_DIR

The grader never imports a student's code. It starts this worker in a jail (instructor/jail.py)
and sends it one JSON request per line on standard input:

    {"module": "metrics", "names": true}                              -> the module's public names
    {"module": "metrics", "function": "get_student_metrics", "args": [...]}   -> the call's value

and reads one JSON reply per line, {"value": ...} or {"error": "..."} ("refused": true when the
value is not one that can be handed back). Error texts go to the worker's log only: the grader
words its failure messages itself. Values travel as JSON only
(encode / decode below: numbers, text, lists, tuples, dicts, NumPy arrays and scalars, a Keras
model as its architecture and weights, a Keras callback as its settings), so nothing the worker
sends can run code in the grader: the grader rebuilds Keras objects itself, from Keras's own
classes. The student's prints go to standard error, never into the replies.

This file is copied next to the submission before it runs: inside the jail instructor/ is hidden.
"""

import importlib
import inspect
import json
import os
import sys
import traceback

# --- Values as JSON ------------------------------------------------------------------------------


def encode(value):
    """value as JSON-ready data; raises TypeError for anything that is not a plain value."""
    import numpy as np

    if value is None or isinstance(value, (bool, int, float, str)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(item) for item in value]}
    if isinstance(value, dict):
        return {"__dict__": [[encode(key), encode(item)] for key, item in value.items()]}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"__scalar__": value.item(), "dtype": str(value.dtype)}
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(value, keras.Model):
        return {"__keras_model__": value.to_json(), "weights": [encode(w) for w in value.get_weights()]}
    if keras is not None and isinstance(value, keras.callbacks.Callback):
        return _encode_callback(value, keras)
    raise TypeError(f"a {type(value).__name__} cannot be handed to the grader (plain values, arrays, "
                    f"Keras models and callbacks only)")


def _encode_callback(callback, keras):
    """A callback as the Keras class it is (or derives from) and the constructor settings it holds."""
    base = next(c for c in type(callback).__mro__ if getattr(keras.callbacks, c.__name__, None) is c)
    settings = {}
    for name in inspect.signature(base.__init__).parameters:
        if name != "self" and hasattr(callback, name):
            try:
                settings[name] = encode(getattr(callback, name))
            except TypeError:
                pass  # a setting that is not a plain value keeps Keras's default
    return {"__callback__": base.__name__, "settings": settings}


def decode(data):
    """The value of encoded data; Keras objects are rebuilt from Keras's own classes only."""
    import numpy as np

    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    if "__tuple__" in data:
        return tuple(decode(item) for item in data["__tuple__"])
    if "__dict__" in data:
        return {decode(key): decode(item) for key, item in data["__dict__"]}
    if "__ndarray__" in data:
        return np.array(data["__ndarray__"], dtype=_numeric_dtype(data["dtype"])).reshape(data["shape"])
    if "__scalar__" in data:
        return _numeric_dtype(data["dtype"]).type(data["__scalar__"])
    if "__keras_model__" in data:
        return _keras_model(data["__keras_model__"], [decode(w) for w in data["weights"]])
    if "__callback__" in data:
        import keras

        kind = getattr(keras.callbacks, str(data["__callback__"]), None)
        if not (isinstance(kind, type) and issubclass(kind, keras.callbacks.Callback)):
            raise ValueError(f"not a Keras callback: {data['__callback__']!r}")
        return kind(**{name: decode(value) for name, value in data["settings"].items()})
    raise ValueError(f"unknown encoded value with keys {sorted(data)[:5]}")


def _numeric_dtype(name):
    import numpy as np

    dtype = np.dtype(str(name))
    if dtype.kind not in "biuf":
        raise ValueError(f"not a numeric dtype: {name!r}")
    return dtype


def _keras_model(architecture, weights):
    """A Keras model from its JSON architecture: Keras layers only (no Lambda code, no other modules)."""
    import keras

    config = json.loads(architecture)
    modules = _modules_named(config)
    if any(not module.startswith("keras") for module in modules):
        raise ValueError(f"the model uses classes from outside Keras ({', '.join(sorted(modules))})")
    model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    model.set_weights(weights)
    return model


def _modules_named(config):
    """Every "module" a serialized Keras config names, at any depth."""
    found = set()
    if isinstance(config, dict):
        if isinstance(config.get("module"), str):
            found.add(config["module"])
        for value in config.values():
            found |= _modules_named(value)
    elif isinstance(config, list):
        for value in config:
            found |= _modules_named(value)
    return found


# --- Serving calls -------------------------------------------------------------------------------


def answer(request):
    """The reply to one request: the module's public names, or a call's encoded value."""
    module = importlib.import_module(f"student.{request['module']}")
    if request.get("names"):
        return {"value": [name for name in dir(module) if not name.startswith("_")]}
    function = getattr(module, request["function"])
    value = function(*decode(request["args"]))
    try:
        return {"value": encode(value)}
    except TypeError as error:
        return {"error": f"TypeError: {error}", "refused": True}


def serve(student_code_dir, kit_dir):
    """Answers requests from standard input until it closes."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # from here on, anything printed goes to standard error
    sys.path[:0] = [student_code_dir, kit_dir]
    os.chdir(kit_dir)
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line))
        except BaseException as error:  # noqa: B036 - SystemExit, pytest.skip(), ... are this call's failure
            traceback.print_exc()  # into the worker's log, for whoever debugs the submission
            reply = {"error": f"{type(error).__name__}: {error}"[:4000]}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
