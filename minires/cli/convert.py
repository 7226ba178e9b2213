"""``minires convert``: PyTorch state_dict (safetensors or torch.save) <-> minires checkpoint, checked against
a model."""
from ..convert import convert
from .paths import user_path


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "convert", help="convert weights between a PyTorch state_dict and a minires checkpoint",
        description="Read a state_dict — a safetensors file, or a .pt/.pth/.th file written by torch.save (read "
                    "by minires' weights-only unpickler: only tensors, containers and numbers are accepted, no "
                    "code from the file runs; a checkpoint dict gives its 'state_dict' or 'model' entry) — check "
                    "it against --model when given (keys, shapes), and write it as safetensors for the other "
                    "side. Key names are the same (torchvision's); a DataParallel 'module.' prefix is removed.")
    parser.add_argument("input", type=user_path, help="safetensors or torch.save file to read")
    parser.add_argument("output", type=user_path, help="safetensors file to write")
    parser.add_argument("--to", choices=["minires", "torch"], default="minires", help="the side to write for")
    parser.add_argument("--model", help="check the weights against this minires model (e.g. resnet18)")
    parser.add_argument("--num-classes", type=int, help="the model's number of classes, for --model")
    parser.set_defaults(run=run)


def run(args):
    summary = convert(args.input, args.output, to=args.to, model=args.model, num_classes=args.num_classes)
    print(f"wrote {args.output}: {summary['tensors']} tensors, {summary['parameters']:,} values, for {args.to}"
          + (f", checked against {args.model}" if args.model else ""))
    return 0
