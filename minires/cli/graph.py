"""``minires graph``: draw the autograd graph of the first blocks of a model, with the gradient norm on every
edge, so the split of the gradient at each residual join can be read off the picture."""
import os

import numpy as np

from .. import memory_format, models, nn, viz
from ..errors import ArgumentError
from ..nn import Sequential
from ..tensor import Tensor
from .paths import user_path


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "graph", help="draw the autograd graph of a model's first blocks (DOT, SVG or PNG)", description=__doc__)
    parser.add_argument("--model", default="resnet20", help="a model name, see minires.models (default: resnet20)")
    parser.add_argument("--blocks", type=int, default=1, help="how many of the first stage's blocks (default: 1)")
    parser.add_argument("--size", type=int, default=4, help="height and width of the input maps (default: 4)")
    parser.add_argument("--batch", type=int, default=2, help="images in the input batch (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="weights, input and upstream gradient (default: 0)")
    parser.add_argument("--no-backward", action="store_true", help="draw shapes only, no gradient norms")
    parser.add_argument("--out", type=user_path, default="graph.png",
                        help="output file: .png, .svg or .dot; a .dot copy is written beside an image "
                             "(default: graph.png)")
    parser.set_defaults(run=run)


def first_blocks(model, count):
    """The first ``count`` blocks of the model's first stage, with their key prefix (layer1.0, ...)."""
    stage_name, stage = next((name, m) for name, m in model.named_children() if isinstance(m, Sequential))
    if not 1 <= count <= len(stage):
        raise ArgumentError(f"graph: --blocks must be between 1 and {len(stage)} for {stage_name}, got {count}")
    return stage_name, Sequential(*list(stage)[:count])


def run(args):
    model = nn.fuse(models.get(args.model, seed=args.seed), False)  # the graph of the equations: every op drawn
    stage_name, blocks = first_blocks(model, args.blocks)
    rng = np.random.default_rng(args.seed)
    channels = next(iter(blocks)).conv1.in_channels
    images = rng.standard_normal((args.batch, channels, args.size, args.size)).astype(np.float32)
    # laid out as inside the network (channels-last where the convolutions' weights are), so the drawing shows
    # the block's ops and not a conversion of the made-up input
    layout = memory_format.channels_last if memory_format.only_channels_last(next(iter(blocks)).conv1.weight.array) \
        else memory_format.contiguous_format
    x = Tensor(memory_format.to_format(images, layout), requires_grad=True)
    y = blocks.train()(x)
    loss = (y * Tensor(rng.standard_normal(y.shape).astype(np.float32))).sum()  # a random upstream gradient
    names = {"x": x, **{f"{stage_name}.{key}": p for key, p in blocks.named_parameters()}}
    graph = viz.graph(loss, names=names)
    if not args.no_backward:
        graph.backward()
    path = graph.save(args.out)
    written = [path]
    if not path.lower().endswith((".dot", ".gv")):
        written.append(graph.save(os.path.splitext(path)[0] + ".dot"))
    print(f"{args.model}: {args.blocks} block(s) of {stage_name}, {len(graph.nodes)} nodes, {len(graph.edges)} "
          f"edges; written to {', '.join(written)}")
    return 0
