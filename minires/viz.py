"""See the autograd graph: ``mr.viz.graph(output)`` walks the graph behind any output and renders it as
Graphviz DOT text (always), or as SVG/PNG (through the ``dot`` program when Graphviz is installed, else drawn
with matplotlib). Nodes are ops (``ResidualAddBackward``) and leaf tensors (with names when given); each edge
carries the shape of the tensor flowing along it. ``Graph.backward()`` runs the backward pass and labels every
edge with the norm of the gradient sent back along it, so the split at a residual join is there to read:
the input x gets one gradient through the branch F and one through the shortcut, and they add.

    g = mr.viz.graph(loss, names={"x": x, **dict(block.named_parameters())})
    g.backward()
    g.save("block.png")        # or .svg, or .dot
"""
import io
import os
import shutil

import numpy as np

from . import backend, op_hooks
from .errors import ArgumentError, ArgumentTypeError, AutogradError, MissingDependencyError
from .files import atomic_write_bytes
from .plotting import pyplot
from .autograd import topological_order
from .tensor import Tensor


class Graph:
    """The ops and leaves behind one output, and the edges between them (captured when made)."""

    def __init__(self, output, names=None):
        if not isinstance(output, Tensor):
            raise ArgumentTypeError(f"graph: expected a Tensor, got {type(output).__name__}")
        if output.grad_fn is None:
            raise AutogradError("graph: this tensor was not made by an op that records a graph (does an input "
                                "require grad, outside no_grad()?)")
        labels = {id(t): name for name, t in (names or {}).items()}
        self.output = output
        self.nodes = {}  # key -> (label, kind) with kind "op" or "leaf"
        self.edges = []  # (source key, target key, shape, (function, input index) or None)
        for node in topological_order(output._node):
            fn = node.creator
            if fn is None:
                tensor = node.tensor()
                name = labels.get(id(tensor), "tensor") if tensor is not None else "tensor"
                self.nodes[id(node)] = (f"{name}\n{_shape(node.shape)}", "leaf")
                continue
            self.nodes[id(fn)] = (fn.display_name(), "op")
            for index, parent in enumerate(fn.inputs):
                if parent is not None:
                    source = id(parent.creator) if parent.creator is not None else id(parent)
                    self.edges.append((source, id(fn), parent.shape, (id(fn), index)))
        self.nodes["output"] = (f"output\n{_shape(output.shape)}", "output")
        self.edges.append((id(output.grad_fn), "output", output.shape, None))
        self.grad_norms = {}  # (function, input index) -> ||gradient sent back along that edge||; None: output
        # a node used more than once (x: by the branch and by the shortcut) gets the sum of its edges' gradients
        uses = {}
        for source, _, _, edge in self.edges:
            uses.setdefault(source, []).append(edge)
        self.fan_out = {source: edges for source, edges in uses.items() if len(edges) > 1}
        self.totals = {}  # node key -> ||sum of the gradients on its edges||: what its .grad receives

    def backward(self, grad=None):
        """``output.backward(grad)``, recording the norm of the gradient that each op sends to each input,
        and for a node with several uses the norm of their sum (the engine's ``+=``)."""
        parts = {edge: [] for edges in self.fan_out.values() for edge in edges}

        def record(node, phase, inputs, run):
            result = run()
            if phase == "backward":
                for index, g in enumerate(result if isinstance(result, tuple) else (result,)):
                    if g is not None:
                        self.grad_norms[(id(node), index)] = backend.l2_norm(g)
                        if (id(node), index) in parts:
                            parts[(id(node), index)].append(backend.to_numpy(g).astype(np.float64))
            return result

        with op_hooks.registered(record):
            self.output.backward(grad)
        for source, edges in self.fan_out.items():
            arrays = [a for edge in edges for a in parts[edge]]
            if len(arrays) == len(edges) and len({a.shape for a in arrays}) == 1:
                self.totals[source] = float(np.sqrt((sum(arrays) ** 2).sum()))
        upstream = np.ones(self.output.shape) if grad is None else backend.to_numpy(getattr(grad, "data", grad))
        self.grad_norms[None] = backend.l2_norm(upstream)
        return self

    def dot(self):
        """The graph as Graphviz DOT text, inputs at the top, the output at the bottom."""
        lines = ["digraph minires {", '  node [fontname="Helvetica", fontsize=11];', '  edge [fontsize=9];']
        keys = {key: f"n{i}" for i, key in enumerate(self.nodes)}
        for key, (label, kind) in self.nodes.items():
            label = self.node_label(key)
            style = {"op": 'shape=box, style="rounded,filled", fillcolor="#dbe8f6"',
                     "leaf": 'shape=box, style=filled, fillcolor="#f6e7c1"',
                     "output": 'shape=box, style=filled, fillcolor="#d5ecd4"'}[kind]
            lines.append(f'  {keys[key]} [label="{_escape(label)}", {style}];')
        side = self.side_paths()
        for source, target, shape, edge in self.edges:
            # a side path (the shortcut) must not pull the chain of ops out of line: no weight, drawn in blue
            look = ', weight=0, color="#2b6cb0", penwidth=1.6' if (source, target, shape, edge) in side else ""
            lines.append(f'  {keys[source]} -> {keys[target]} [label="{_escape(self.edge_label(shape, edge))}"{look}];')
        return "\n".join(lines + ["}"]) + "\n"

    def depths(self):
        """Each node's row in a layered drawing: one below the deepest of its inputs; a leaf just above the
        first op that uses it."""
        depth = {key: 0 for key in self.nodes}
        for source, target, *_ in self.edges:  # longest path from the inputs: the edges come in topological order
            depth[target] = max(depth[target], depth[source] + 1)
        for key, (_, kind) in self.nodes.items():
            if kind == "leaf":
                depth[key] = min(depth[target] for source, target, *_ in self.edges if source == key) - 1
        return depth

    def side_paths(self, depth=None):
        """The edges that skip one row or more (a shortcut from x to the join): drawn beside the chain.
        ``depth``: ``depths()`` when the caller has it already."""
        depth = self.depths() if depth is None else depth
        return [e for e in self.edges if depth[e[1]] - depth[e[0]] > 1]

    def node_label(self, key):
        label = self.nodes[key][0]
        if key in self.totals:
            label += f"\ntotal |grad| {self.totals[key]:.3g}\n= sum of its {len(self.fan_out[key])} edges' gradients"
        return label

    def edge_label(self, shape, edge):
        label = _shape(shape)
        if edge in self.grad_norms:
            label += f"\n|grad| {self.grad_norms[edge]:.3g}"
        return label

    def save(self, path):
        """Write the graph to ``path``: .dot (text), .svg or .png (rendered). Returns the path."""
        path = os.fspath(path)
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in (".dot", ".gv", ".svg", ".png"):
            raise ArgumentError(f"graph: cannot write {path!r}; use a .dot, .svg or .png file name")
        if suffix in (".dot", ".gv"):
            atomic_write_bytes(path, self.dot().encode())
        elif _graphviz_available():
            import graphviz

            atomic_write_bytes(path, graphviz.Source(self.dot()).pipe(format=suffix[1:]))
        else:
            _draw_with_matplotlib(self, path)
        return path


def graph(output, names=None):
    """The autograd graph behind ``output``; ``names`` maps names to tensors (inputs, parameters) to label
    the leaves, e.g. ``{"x": x, **dict(model.named_parameters())}``."""
    return Graph(output, names)


def _graphviz_available():
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def _draw_with_matplotlib(graph, path):
    """A layered drawing without Graphviz: each node one row below the deepest of its inputs."""
    plt = pyplot()
    if plt is None:
        raise MissingDependencyError("graph: drawing an image needs Graphviz (pip install graphviz, and the dot "
                                     "program) or matplotlib (pip install matplotlib); .dot text needs neither")
    depth = graph.depths()
    rows = {}
    for key in sorted(graph.nodes, key=lambda k: graph.nodes[k][1] != "leaf"):  # leaves left of the ops
        rows.setdefault(depth[key], []).append(key)
    first = min(rows)  # -1 when an input leaf sits above the first op
    rows = {row - first: rows[row] for row in sorted(rows)}
    position = {key: ((i + 1) / (len(keys) + 1), -row) for row, keys in rows.items() for i, key in enumerate(keys)}
    width = max(len(keys) for keys in rows.values())
    long_edges = graph.side_paths(depth)
    figure_width = max(6, 2.6 * width) + 1.6 * len(long_edges)
    figure, axis = plt.subplots(figsize=(figure_width, 1.25 * (len(rows) + 1)))
    left = 0.12 * 6 / figure_width * len(long_edges)  # the nodes fill [left, 1]; side lanes left of them
    position = {key: (left + x * (1 - left), y) for key, (x, y) in position.items()}
    colours = {"op": "#dbe8f6", "leaf": "#f6e7c1", "output": "#d5ecd4"}
    for source, target, shape, edge in graph.edges:
        (x0, y0), (x1, y1) = position[source], position[target]
        label = graph.edge_label(shape, edge)
        if (source, target, shape, edge) in long_edges:
            # A side path, as the shortcut is: out to its own lane at the left, down, and into the target.
            lane = left * (long_edges.index((source, target, shape, edge)) + 0.5) / len(long_edges)
            axis.plot([x0, lane, lane], [y0, y0, y1], color="#2b6cb0", lw=1.6, zorder=0)
            axis.annotate("", xy=(x1 - _half_width(graph.node_label(target), figure_width), y1), xytext=(lane, y1),
                          arrowprops=dict(arrowstyle="->", color="#2b6cb0", lw=1.6))
            axis.text(lane, (y0 + y1) / 2, label, fontsize=7, ha="center", va="center", color="#1a4f8a",
                      bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="#2b6cb0", alpha=0.95))
            continue
        axis.annotate("", xy=(x1, y1 + 0.18), xytext=(x0, y0 - 0.18),
                      arrowprops=dict(arrowstyle="->", color="#555555", lw=1))
        axis.text(x0 + 0.6 * (x1 - x0), y0 + 0.6 * (y1 - y0), label, fontsize=7,  # nearer the target: its input
                  ha="center", va="center", color="#333333",
                  bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    for key, (_, kind) in graph.nodes.items():
        x, y = position[key]
        axis.text(x, y, graph.node_label(key), ha="center", va="center", fontsize=8,
                  color="#8b1a1a" if key in graph.totals else "black",
                  bbox=dict(boxstyle="round,pad=0.35", fc=colours[kind], ec="#666666"))
    axis.set(xlim=(0, 1), ylim=(-len(rows) + 0.5, 0.5))
    axis.axis("off")
    figure.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=os.path.splitext(path)[1][1:], dpi=130)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def _half_width(label, figure_width):
    """About half a node box's width in axis units (8-point text, ~0.075 inch a character, plus padding)."""
    return (max(len(line) for line in label.split("\n")) * 0.075 + 0.25) / 2 / figure_width


def _shape(shape):
    return "(" + ", ".join(str(n) for n in shape) + ")"



def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
