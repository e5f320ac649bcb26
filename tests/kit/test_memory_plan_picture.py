"""The memory-plan picture (section 10.4): every buffer labelled, no label over another."""

import itertools
from types import SimpleNamespace

import matplotlib

import estimate

matplotlib.use("Agg")


def _plan(sizes_and_lifetimes):
    """A plan of buffers stacked in the order given: [(size, first step, last step)]."""
    buffers, offsets, offset = [], [], 0
    for index, (size, first, last) in enumerate(sizes_and_lifetimes):
        buffers.append(estimate.Buffer(SimpleNamespace(index=index), size, first, last))
        offsets.append(offset)
        offset += size
    return estimate.MemoryPlan(buffers, offsets, offset, "greedy")


def _label_boxes(figure):
    renderer = figure.canvas.get_renderer()
    labels = [t for t in figure.axes[0].texts if t.get_text().startswith("#")]
    return labels, [t.get_window_extent(renderer) for t in labels]


def test_labels_of_small_buffers_side_by_side_do_not_overlap():
    plan = _plan([(4000, 0, 1), (16, 0, 1), (16, 0, 1), (32, 0, 2), (16, 1, 2), (2000, 1, 2)])
    labels, boxes = _label_boxes(estimate.plot_memory_plan(plan))
    assert len(labels) == 6
    assert not [(a, b) for a, b in itertools.combinations(range(6), 2) if boxes[a].overlaps(boxes[b])]


def test_a_label_with_room_stays_on_its_bar():
    plan = _plan([(2000, 0, 1), (2000, 1, 2)])
    labels, _ = _label_boxes(estimate.plot_memory_plan(plan))
    assert sorted(label.get_position()[1] for label in labels) == [1000, 3000]


def test_the_label_of_a_buffer_at_the_bottom_stays_inside_the_picture():
    figure = estimate.plot_memory_plan(_plan([(16, 0, 1), (4000, 1, 2)]))
    axes_box = figure.axes[0].get_window_extent(figure.canvas.get_renderer())
    _, boxes = _label_boxes(figure)
    assert all(axes_box.y0 <= box.y0 and box.y1 <= axes_box.y1 for box in boxes)
