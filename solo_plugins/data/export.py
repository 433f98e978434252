"""Writes real offline datasets as ``root/{train,val}/<class>/<n>.png`` folders, the layout
solo-learn reads for ``data.dataset: custom``.

    solo-plugins-export digits datasets/digits
    solo-plugins-export fashion_mnist datasets/fashion_mnist [--idx-dir DIR] [--train-per-class N]
"""

import argparse
import glob
import gzip
import os
from pathlib import Path
from typing import Iterable, Optional, Tuple

import numpy as np
from PIL import Image

FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist", "/usr/share/dataset-fashion-mnist")


def _write(root: Path, split: str, images: np.ndarray, labels: Iterable[int]) -> None:
    for n, (image, label) in enumerate(zip(images, labels)):
        folder = root / split / f"{int(label):02d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).convert("RGB").save(folder / f"{n:05d}.png")


def _done(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "val").is_dir() and (root / ".complete").exists()


def export_digits(root: str, val_fraction: float = 0.25, seed: int = 0) -> Path:
    """scikit-learn's 1,797 8x8 handwritten digits, split stratified 75/25 into train/val."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    root = Path(root)
    if _done(root):
        return root
    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    x_tr, x_va, y_tr, y_va = train_test_split(
        images, digits.target, test_size=val_fraction, stratify=digits.target, random_state=seed
    )
    _write(root, "train", x_tr, y_tr)
    _write(root, "val", x_va, y_va)
    (root / ".complete").touch()
    return root


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find_fashion_mnist(idx_dir: Optional[str] = None) -> Tuple[str, str, str, str]:
    """Paths of the four idx files (train images/labels, test images/labels) from Debian's
    ``dataset-fashion-mnist`` package or ``idx_dir``."""
    candidates = [idx_dir] if idx_dir else list(FASHION_MNIST_DIRS)
    for folder in candidates:
        found = []
        for stem in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
            hits = glob.glob(os.path.join(folder, "**", f"{stem}*idx*"), recursive=True)
            if hits:
                found.append(sorted(hits)[0])
        if len(found) == 4:
            return tuple(found)
    raise FileNotFoundError(
        f"Fashion-MNIST idx files not found in {candidates}: install Debian's "
        "dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass --idx-dir"
    )


def export_fashion_mnist(
    root: str, idx_dir: Optional[str] = None, train_per_class: Optional[int] = None, seed: int = 0
) -> Path:
    """Fashion-MNIST's 60k train / 10k test 28x28 images; ``train_per_class`` keeps a
    class-balanced subset of the training set."""
    root = Path(root)
    if _done(root):
        return root
    tr_x, tr_y, te_x, te_y = (_read_idx(p) for p in find_fashion_mnist(idx_dir))
    if train_per_class is not None:
        rng = np.random.default_rng(seed)
        keep = np.concatenate(
            [rng.permutation(np.flatnonzero(tr_y == c))[:train_per_class] for c in np.unique(tr_y)]
        )
        tr_x, tr_y = tr_x[np.sort(keep)], tr_y[np.sort(keep)]
    _write(root, "train", tr_x, tr_y)
    _write(root, "val", te_x, te_y)
    (root / ".complete").touch()
    return root


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["digits", "fashion_mnist"])
    parser.add_argument("root")
    parser.add_argument("--idx-dir", default=None)
    parser.add_argument("--train-per-class", type=int, default=None)
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.dataset == "digits":
        print(export_digits(args.root))
    else:
        print(export_fashion_mnist(args.root, args.idx_dir, args.train_per_class))


if __name__ == "__main__":
    main()
