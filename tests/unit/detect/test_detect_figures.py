"""detect's multi-system charts: a grid, not a strip, and one legend that covers no bar."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from audioprobe.detect import figures  # noqa: E402

SYSTEMS = [f"sys{i}" for i in range(7)]  # the default comparison: 3 VADs + 4 LLM systems


@pytest.fixture
def drawn(monkeypatch):
    """Capture each figure `_save` is given instead of writing it."""
    got = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: got.append(fig))
    yield got
    plt.close("all")


def _grid_shape(fig) -> tuple[int, int]:
    axes = [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    xs = {round(a.get_position().x0, 3) for a in axes}
    ys = {round(a.get_position().y0, 3) for a in axes}
    return len(ys), len(xs)


def _reliability_rows():
    return [{"system": s, "lo": lo, "hi": lo + 0.05, "confidence": lo + 0.02, "accuracy": 0.9, "count": 5}
            for s in SYSTEMS for lo in np.arange(0.5, 1.0, 0.05)]


def test_seven_systems_are_a_three_column_grid_whose_labels_stay_readable(drawn, tmp_path):
    heat = [{"system": s, "snr_db": snr, "duration_ms": d, "error_rate": 0.1} for s in SYSTEMS
            for snr in (-5.0, 0.0) for d in (200, 500)]
    results = {s: {"y": np.array([True, False]), "pred": np.array([True, True])} for s in SYSTEMS}
    figures.reliability(_reliability_rows(), SYSTEMS, tmp_path / "r.png", [])
    figures.confusion(results, SYSTEMS, tmp_path / "c.png", [])
    figures.error_heatmaps(heat, SYSTEMS, tmp_path / "e.png", [])
    for fig in drawn:
        assert _grid_shape(fig) == (3, 3), fig  # 7 panels: 3 rows of at most 3 (was 1 row of 7)
        # at most ~11.5 in wide: on an 800 px page a 7 pt label stays ~7 px (a 7-panel strip: ~4 px)
        assert fig.get_size_inches()[0] <= 11.5


def test_reliability_has_one_figure_legend_and_none_inside_a_panel(drawn, tmp_path):
    figures.reliability(_reliability_rows(), SYSTEMS[:2], tmp_path / "r.png", [])
    fig = drawn[0]
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sorted(labels) == sorted(["accuracy", "(mean confidence, accuracy)", "perfect calibration"])


def test_titles_fit_the_figure_and_the_legend_clears_them(drawn, tmp_path):
    """A long title with its banners is wrapped inside the figure; the reliability legend overlaps no title line."""
    banners = ["synthetic data: a smoke test, not a finding about speech",
               "random-init weights: these numbers say nothing about the pretrained model"]
    figures.reliability(_reliability_rows(), SYSTEMS[:2], tmp_path / "r.png", banners)
    fig = drawn[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    legend = fig.legends[0].get_window_extent(renderer)
    assert 0 <= title.x0 and title.x1 <= fig.bbox.width  # not cut at the edges
    assert not title.overlaps(legend)
    assert all(not title.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)


@pytest.mark.parametrize("inches", [6.0, 11.0])
def test_a_long_title_is_wrapped_inside_a_figure_of_any_width(inches):
    """The psychometric title (the longest) and its banners stay inside the figure: none is cut at an edge."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(inches, 4))
    text = ("psychometric fits (gamma 0.5, lapse <= max); DT50 dashed, DT75 dotted, shaded 95 % CI (hatched to "
            "the range edge, open arrowhead: the CI goes on past the tested range)")
    figures._title(fig, text, ["random-init weights: these numbers say nothing about the pretrained model"])
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    plt.close(fig)
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width
