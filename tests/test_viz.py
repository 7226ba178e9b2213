"""minires.viz and ``minires graph``: the graph a learner sees."""
import re

import numpy as np
import pytest

import minires as mr
from minires import nn
from minires.cli import main
from minires.errors import ArgumentError, AutogradError


def _block_graph():
    block = nn.BasicBlock(4, 4, shortcut="B", fused=False).eval()  # each op of the equations, the join included
    x = mr.tensor(np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32))
    x = x.contiguous(memory_format=mr.channels_last if block.conv1.weight.is_contiguous(memory_format=mr.channels_last)
                     else mr.contiguous_format).requires_grad_()  # as inside a network: no conversion to draw
    y = block(x)
    loss = (y * mr.tensor(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))).sum()
    return mr.viz.graph(loss, names={"x": x, **dict(block.named_parameters())}), x


def _edges(dot):
    """{(source label, target label): edge label} from DOT text."""
    labels = dict(re.findall(r'  (n\d+) \[label="([^"]*)"', dot))
    return {(labels[a].split("\\n")[0], labels[b].split("\\n")[0]): text
            for a, b, text in re.findall(r'  (n\d+) -> (n\d+) \[label="([^"]*)"[^\]]*\]', dot)}


def test_the_dot_of_a_basic_block_shows_the_join_the_leaves_and_the_shapes():
    graph, _ = _block_graph()
    edges = _edges(graph.dot())
    assert edges[("x", "Conv2dBackward")] == "(2, 4, 5, 5)"  # the branch F
    assert edges[("x", "ResidualAddBackward")] == "(2, 4, 5, 5)"  # the identity shortcut
    assert edges[("conv1.weight", "Conv2dBackward")] == "(4, 4, 3, 3)"
    assert edges[("BatchNormBackward", "ResidualAddBackward")] == "(2, 4, 5, 5)"


def test_after_backward_the_two_gradients_reaching_x_add_up_to_its_grad():
    graph, _ = _block_graph()
    graph.backward()
    edges = _edges(graph.dot())
    through_branch = edges[("x", "Conv2dBackward")]
    through_shortcut = edges[("x", "ResidualAddBackward")]
    assert "|grad|" in through_branch and "|grad|" in through_shortcut
    # The join hands the same gradient to both of its sides: the shortcut's and F's edges carry equal norms.
    assert through_shortcut == edges[("BatchNormBackward", "ResidualAddBackward")]
    assert through_branch != through_shortcut  # what came back through F differs
    norms = {edge: value for edge, value in graph.grad_norms.items() if edge is not None}
    assert len(norms) == len([e for e in graph.edges if e[3] is not None])  # every edge of an op is annotated


def test_graph_files_dot_and_png(tmp_path):
    graph, _ = _block_graph()
    graph.backward()
    dot = graph.save(tmp_path / "g.dot")
    assert open(dot).read().startswith("digraph minires {")
    png = graph.save(tmp_path / "g.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ArgumentError, match=r"\.dot, \.svg or \.png"):
        graph.save(tmp_path / "g.jpg")


def test_a_tensor_without_a_graph_is_refused_with_a_reason():
    with pytest.raises(AutogradError, match="not made by an op that records a graph"):
        mr.viz.graph(mr.tensor([1.0]))


def test_minires_graph_draws_the_first_block(tmp_path, capsys):
    assert main(["graph", "--model", "resnet20", "--blocks", "1", "--out", str(tmp_path / "block.png")]) == 0
    assert "written to" in capsys.readouterr().out
    dot = (tmp_path / "block.dot").read_text()
    assert "ResidualAddBackward" in dot and "layer1.0.conv1.weight" in dot and "|grad|" in dot
    assert main(["graph", "--model", "resnet20", "--blocks", "9", "--out", str(tmp_path / "b.dot")]) == 2


def test_an_output_name_without_a_known_extension_is_named_once(tmp_path, capsys):
    assert main(["graph", "--out", str(tmp_path / "block")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minires graph: cannot write") and "graph: graph:" not in err
    assert "use a .dot, .svg or .png file name" in err and not (tmp_path / "block").exists()


def test_a_node_used_twice_shows_the_total_its_grad_receives(tmp_path):
    """x feeds the branch and the shortcut: its label carries ||sum of both edges' gradients||, which is
    ||x.grad||, and the PNG drawing (no Graphviz) routes the skipping edge as a side path."""
    graph, x = _block_graph()
    graph.backward()
    (total,) = graph.totals.values()  # in one block only x is used twice
    np.testing.assert_allclose(total, np.linalg.norm(x.grad.numpy().astype(np.float64)), rtol=1e-5)
    labels = [label for label in re.findall(r'label="([^"]*)"', graph.dot()) if label.startswith("x\\n")]
    assert labels == [f"x\\n(2, 4, 5, 5)\\ntotal |grad| {total:.3g}\\n= sum of its 2 edges' gradients"]
    assert open(graph.save(tmp_path / "g.png"), "rb").read(4) == b"\x89PNG"


def test_the_shortcut_is_the_one_side_path_in_a_block():
    graph, _ = _block_graph()
    (side,) = graph.side_paths()
    labels = {key: label.split("\n")[0] for key, (label, _) in graph.nodes.items()}
    assert (labels[side[0]], labels[side[1]]) == ("x", "ResidualAddBackward")
    assert re.search(r'n\d+ -> n\d+ \[label="[^"]*", weight=0, color=', graph.dot())  # and in DOT, for Graphviz
