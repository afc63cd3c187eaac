"""The soak's parts that need no server: the SVG writer, its round-number ticks, and the
soak's independence from the test suite (bench runs without pytest)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

from bench import svg

NS = {"svg": "http://www.w3.org/2000/svg"}


def chart() -> svg.Chart:
    return svg.Chart(
        title="soak <test> & more",
        subtitle="two panels",
        x_label="minutes",
        panels=[
            svg.Panel(
                "Memory",
                "MiB",
                [
                    svg.Series("api-1", [(0.0, 60.0), (1.0, 64.5), (2.0, 65.0)]),
                    svg.Series("projector", [(0.0, 40.0), (2.0, 44.0)]),
                    svg.Series("backends", [(0.0, 20.0), (2.0, 90.0)], dashed=True),
                ],
            ),
            svg.Panel(
                "Lag", "events", [svg.Series("head − checkpoint", [(0.0, 0.0), (1.0, 128.0), (2.0, 3.0)])]
            ),
        ],
        markers=[svg.Marker(1.5, "load ends")],
    )


def test_the_plot_is_svg_with_every_series_and_its_legend() -> None:
    root = ET.fromstring(svg.render(chart()))  # noqa: S314 (our own SVG)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    lines = root.findall(".//svg:polyline", NS)
    assert [line.get("data-name") for line in lines] == [
        "api-1",
        "projector",
        "backends",
        "head − checkpoint",
    ]
    assert all(len((line.get("points") or "").split()) >= 2 for line in lines)
    assert [t.text for t in root.findall(".//svg:text[@class='legend']", NS)] == [
        "api-1",
        "projector",
        "backends",
        "head − checkpoint",
    ]
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "soak <test> & more" in texts  # escaped in the file, read back whole
    assert {"Memory", "Lag", "MiB", "events", "minutes", "load ends"} <= set(texts)
    assert len(root.findall(".//svg:g[@class='panel']", NS)) == 2


def test_points_fall_inside_their_panel() -> None:
    root = ET.fromstring(svg.render(chart()))  # noqa: S314 (our own SVG)
    for panel in root.findall(".//svg:g[@class='panel']", NS):
        frame = next(r for r in panel.findall("svg:rect", NS) if r.get("fill") == "none")
        x0, y0 = float(frame.get("x", 0)), float(frame.get("y", 0))
        x1, y1 = x0 + float(frame.get("width", 0)), y0 + float(frame.get("height", 0))
        for line in panel.findall("svg:polyline", NS):
            for point in (line.get("points") or "").split():
                x, y = map(float, point.split(","))
                assert x0 <= x <= x1 and y0 <= y <= y1, (line.get("data-name"), x, y)


def test_ticks_are_round_numbers_covering_the_range() -> None:
    assert svg.ticks(0, 97, 5) == [0, 20, 40, 60, 80, 100]
    assert svg.ticks(0, 0.5, 10) == [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
    assert svg.ticks(60, 60) == [60, 70, 80, 90, 100, 110, 120]
    for low, high in [(0, 1), (3.2, 17.9), (0, 123_456), (40, 44)]:
        found = svg.ticks(low, high)
        assert found[0] <= low and found[-1] >= high and len(found) <= 8
    assert svg.number(25_000) == "25k" and svg.number(2.5) == "2.5"


def test_the_soak_needs_nothing_from_the_tests() -> None:
    probe = "import json, sys\nimport bench.soak\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert not {m for m in loaded if m.split(".")[0] in {"pytest", "_pytest", "tests"}}
