"""Exact figures, checked at grading only: the grader copies this file into the student tests of
the kit copy it grades in, so the public tests need not state the answers."""

import estimate


def test_micro_kws_xs_needs_48000_macs(micro_kws_xs_int8):
    got = estimate.estimate_model_macs(estimate.load_model(micro_kws_xs_int8))
    assert got == 48000, f"MACs of micro_kws_xs: got {got}"


def test_micro_kws_xs_weights_take_8112_bytes(micro_kws_xs_int8):
    got = estimate.estimate_model_rom(estimate.load_model(micro_kws_xs_int8))
    assert got == 8112, f"ROM of micro_kws_xs: got {got}"


def test_micro_kws_xs_needs_4000_bytes_of_ram_at_best_and_7928_at_worst(micro_kws_xs_int8):
    got = estimate.estimate_model_ram(estimate.load_model(micro_kws_xs_int8))
    assert got == (4000, 7928), f"RAM of micro_kws_xs: got {got}"
