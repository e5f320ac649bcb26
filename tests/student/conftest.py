"""Fixtures of the student tests: small models converted on the spot (no dataset needed), the
device's runtime, and a time limit per test, so that code that hangs fails its own test instead of
the whole run."""

import os
import signal

import pytest

import models
import runtimes

TEST_SECONDS = float(os.getenv("MICROKWS_TEST_SECONDS", "120"))
GRADING_PLUGIN = "instructor.grading_plugin"  # loaded when the grader runs these tests


def device_runtime_here(config):
    """The runtime that stands for the device in this run: the kit's (TFLite-Micro where it is
    installed, else LiteRT's reference kernels and the kit's planner), but always TFLite-Micro
    when the grader runs the tests."""
    return "tflm" if config.pluginmanager.hasplugin(GRADING_PLUGIN) else runtimes.device_runtime()


def pytest_terminal_summary(terminalreporter, config):
    """One line saying whose figures the device tests used."""
    terminalreporter.write_line(f"Device figures: {runtimes.DEVICE_FIGURES[device_runtime_here(config)]}")


@pytest.fixture(scope="session")
def device_runtime(pytestconfig):
    """The device's runtime (device_runtime_here); in a grading run without TFLite-Micro the tests
    that need it fail rather than grade on other kernels."""
    runtime = device_runtime_here(pytestconfig)
    if runtime == "tflm" and not runtimes.tflite_micro_available():
        pytest.fail("The grader measures on TFLite-Micro, which does not import here: grade on Linux x86_64 "
                    "with the tflite-micro package installed.", pytrace=False)
    return runtime


def _time_limit(phase, item):
    """Fails the test when one phase of it (setup, call, teardown) runs over TEST_SECONDS. Where
    the OS has no interval timer (Windows), the run's overall time limit is the only one."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        pytest.fail(f"{item.name}: the {phase} ran over {TEST_SECONDS:.0f} s (an endless loop?)", pytrace=False)

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, TEST_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _time_limit("setup", item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _time_limit("test", item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _time_limit("teardown", item)


def convert_int8(model, path):
    """Full-integer int8 conversion at batch 1, calibrated on random features in the lab's range,
    with non-zero biases so that the ROM formulas see every bias a trained model has
    (convert.convert_without_data)."""
    import convert

    return convert.convert_without_data(model, path, calibration_examples=20)


@pytest.fixture(scope="session")
def micro_kws_xs_int8(tmp_path_factory, model_settings):
    """An (untrained) int8 micro_kws_xs: sizes and operations do not depend on training."""
    model = models.get_model(model_settings, "micro_kws_xs")
    return convert_int8(model, tmp_path_factory.mktemp("student") / "micro_kws_xs.tflite")


@pytest.fixture(scope="session")
def student_model(model_settings):
    return models.get_model(model_settings, "kws_model_student", model_name="kws_model_student")


@pytest.fixture(scope="session")
def student_model_int8(tmp_path_factory, student_model):
    return convert_int8(student_model, tmp_path_factory.mktemp("student") / "kws_model_student.tflite")
