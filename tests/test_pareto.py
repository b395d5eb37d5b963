"""The Pareto frontier and chart files of s1/eval/pareto.py."""

from s1.eval.pareto import chart_paths, embedded_charts, frontier, plot_pareto, series_styles


def test_frontier_keeps_only_non_dominated_points():
    pts = [("bf 512", 500, 40.0), ("nowait", 300, 40.0), ("maj@4", 2000, 45.0), ("bf 128", 120, 20.0),
           ("bad", 800, 30.0), ("tie-worse", 120, 10.0)]
    # nowait dominates bf 512 (fewer tokens, same accuracy); bad is dominated by nowait; tie-worse by bf 128
    assert [p[0] for p in frontier(pts)] == ["bf 128", "nowait", "maj@4"]
    assert frontier([]) == []


def test_chart_paths_one_or_per_benchmark(tmp_path):
    assert chart_paths(tmp_path, ["aime24"]) == {tmp_path / "pareto.png": "aime24"}
    # several: pareto.png is the first benchmark's, and each has its own file
    assert chart_paths(tmp_path, ["b", "a"]) == {tmp_path / "pareto.png": "b", tmp_path / "pareto_b.png": "b",
                                                 tmp_path / "pareto_a.png": "a"}
    assert embedded_charts(["aime24"]) == [("pareto.png", "aime24")]
    assert embedded_charts(["b", "a"]) == [("pareto_b.png", "b"), ("pareto_a.png", "a")]


def test_plot_writes_one_png_per_benchmark(tmp_path):
    paths = plot_pareto({"a": [("x", 10, 5.0), ("y", 0, 1.0), ("x", 30, 6.0)], "b": [("x", 20, 7.0)]}, tmp_path)
    assert sorted(p.name for p in paths) == ["pareto.png", "pareto_a.png", "pareto_b.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_every_series_of_an_all_methods_chart_has_its_own_colour_and_marker():
    styles = series_styles(70)
    assert len(set(styles)) == 70     # eval.methods=[all] draws ~23 series; 10 colours alone would repeat at 11
