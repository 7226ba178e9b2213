"""``minires evaluate`` and ``minires predict``: use a trained run."""
import os

from .. import data
from ..data import DataLoader, Normalize
from ..errors import DataError, MissingFileError
from ..training import evaluate_model, load_trained, predict_images
from .paths import user_path


def add_parser(subparsers):
    parser = subparsers.add_parser("evaluate", help="test accuracy of a trained run",
                                   description="Evaluate a run's model on the test split of its data set "
                                               "(or of --data), preprocessed as in training.")
    parser.add_argument("--checkpoint", type=user_path, required=True, metavar="DIR",
                        help="a run directory of minires train")
    parser.add_argument("--data", help="another data set spec with the same image shape (default: the run's)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.set_defaults(run=run_evaluate)
    parser = subparsers.add_parser("predict", help="classify image files with a trained run",
                                   description="Print the most probable classes of each image file.")
    parser.add_argument("--checkpoint", type=user_path, required=True, metavar="DIR",
                        help="a run directory of minires train")
    parser.add_argument("images", type=user_path, nargs="+", metavar="IMAGE", help="PNG or JPEG files to classify")
    parser.add_argument("--top", type=int, default=3, help="how many classes to print per image (default: 3)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.set_defaults(run=run_predict)


def run_evaluate(args):
    model, config, described = load_trained(args.checkpoint, args.device)
    bundle = data.load(args.data or config.data, image_size=config.image_size, seed=config.seed)
    if list(bundle.input_shape) != list(described["input_shape"]):
        raise DataError(f"{bundle.name} has images of shape {bundle.input_shape}, the model was trained on "
                        f"{tuple(described['input_shape'])}")
    loader = DataLoader(bundle.test, args.batch_size, transform=Normalize(described["mean"], described["std"]))
    loss, accuracy = evaluate_model(model, loader, args.device)
    print(f"{config.model} from {args.checkpoint} on {bundle.name} ({len(bundle.test)} test images): accuracy "
          f"{100 * accuracy:.2f}%, loss {loss:.4f}")
    return 0


def run_predict(args):
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        raise MissingFileError(f"no such image file: {', '.join(missing)}")
    model, config, described = load_trained(args.checkpoint, args.device)
    results = predict_images(model, described, args.images, top=args.top, device=args.device)
    for path, ranked in zip(args.images, results):
        print(f"{path}: " + ", ".join(f"{name} {100 * p:.1f}%" for name, p in ranked))
    return 0
