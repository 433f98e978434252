"""Checks and benchmarks a GPU for solo-plugins in one command, and writes a markdown report.
Sized for at most 8 minutes on one GPU; it has not yet run on one (no GPU was lent to the
work that wrote it), only in its quick CPU mode.

    python scripts/gpu_check.py --out docs/gpu.md            # on a CUDA machine
    python scripts/gpu_check.py --device cpu --quick          # the same code paths, tiny sizes

Sections, each measured in this one run:

1. every loss, forward + backward under bf16 autocast, N = 1,024 to 16,384 (D = 128): time
   and peak memory against its floor (the similarity blocks as one matmul + exp), solo-learn's
   ``simclr_loss_func`` and, when installed, lightly's NTXentLoss / DCLLoss / DCLWLoss,
   alternated (A B A B ...), medians; and the Riesz kernel before (torch.cdist) and after
   (row blocks);
2. training steps per second and images per second of each method against solo-learn's
   ``simclr`` (ResNet-18 at CIFAR size, batch 256, bf16 autocast, channels_last), with each
   step's peak memory, DHEL also with ``loss_chunk_size`` and ``forward_chunk_size``;
3. no host-device sync in any method's training step, two views and 2+6 crops:
   ``torch.cuda.set_sync_debug_mode("error")`` on CUDA, the dispatch log (HostSyncLog) on CPU;
4. solo-learn's DALI pipeline on a generated JPEG folder for a few steps with the metrics
   callback on, then ``solo-plugins-pretrain``'s checkpoint through the cached linear
   evaluation.

Exits with 1 when a check fails (the report says which). The test suite runs
``--device cpu --quick``, so the script cannot rot.
"""

import argparse
import datetime
import importlib.metadata as metadata
import os
import platform
import statistics
import sys
import time
import traceback

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_losses  # noqa: E402  (floors, solo's simclr_loss_func, the alternating timer)

from solo_plugins.device import HostSyncLog, resolve_device  # noqa: E402
from solo_plugins.losses import (  # noqa: E402
    dcl_loss_func,
    dhel_loss_func,
    infonce_loss_func,
    kcl_loss_func,
    mv_dhel_loss_func,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOSSES = {
    "infonce": (lambda a, b: infonce_loss_func(a, b, temperature=0.2), "2n"),
    "dcl": (lambda a, b: dcl_loss_func(a, b, temperature=0.1), "2n"),
    "dclw": (lambda a, b: dcl_loss_func(a, b, temperature=0.1, weight_sigma=0.5), "2n"),
    "dhel": (lambda a, b: dhel_loss_func(a, b, temperature=0.3), "blocks"),
    "kcl gaussian": (lambda a, b: kcl_loss_func(a, b, kernel="gaussian", t=2.0, gamma=16.0), "blocks"),
    "kcl imq": (lambda a, b: kcl_loss_func(a, b, kernel="imq", t=1.0, gamma=16.0), "blocks"),
    "kcl riesz": (lambda a, b: kcl_loss_func(a, b, kernel="riesz", s=-1.0, gamma=1.0), "blocks"),
    "mv-dhel (2 views)": (lambda a, b: mv_dhel_loss_func([a, b], temperature=0.3), "blocks"),
    "infonce tiled": (lambda a, b: infonce_loss_func(a, b, temperature=0.2, chunk_size=TILE), "2n"),
    "dhel tiled": (lambda a, b: dhel_loss_func(a, b, temperature=0.3, chunk_size=TILE), "blocks"),
}
# The tiled rows (chunk_size) are also compared with the same loss over the whole block.
TILE = 1024
WHOLE = {"infonce tiled": "infonce", "dhel tiled": "dhel"}
FLOORS = {"2n": bench_losses.floor_2n, "blocks": bench_losses.floor_two_blocks}
# The Riesz kernels compute N·n·D differences: at the largest sizes they are measured up to this N.
RIESZ_MAX_N = 4096


def _lightly_rivals():
    try:
        from lightly.loss import DCLLoss, DCLWLoss, NTXentLoss
    except Exception:  # not installed (or broken): the rows are left out and the report says so
        return {}
    return {
        "infonce": ("lightly NTXentLoss", NTXentLoss(temperature=0.2)),
        "dcl": ("lightly DCLLoss", DCLLoss(temperature=0.1)),
        "dclw": ("lightly DCLWLoss", DCLWLoss(temperature=0.1, sigma=0.5)),
    }


def _bf16(fn, device):
    def wrapped(a, b):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            return fn(a, b)

    return wrapped


def loss_section(device, sizes, dim, repeats):
    lines = [
        "## 1. Losses: forward + backward under bf16 autocast",
        "",
        f"D = {dim}; median of {repeats} alternated runs after 2 warm-ups. Memory: "
        + ("peak CUDA memory allocated above the inputs." if device.type == "cuda"
           else "bytes autograd saves for backward (the CPU keeps no allocator statistics)."),
        "",
        "| N | loss | ms | MiB | vs | ms | MiB | time ratio | memory ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    simclr, lightly = bench_losses.solo_simclr(), _lightly_rivals()
    for n in sizes:
        gen = torch.Generator().manual_seed(0)
        z1 = torch.randn(n, dim, generator=gen)
        z2 = (z1 + torch.randn(n, dim, generator=gen)).to(device)
        z1 = z1.to(device)
        for name, (fn, floor) in LOSSES.items():
            if "riesz" in name and n > RIESZ_MAX_N:
                continue
            rivals = [("floor", FLOORS[floor]), ("solo simclr_loss_func", simclr)]
            if name in lightly:
                rivals.append(lightly[name])
            if "riesz" in name:
                rivals.append(("riesz before (torch.cdist)", bench_losses.riesz_before))
            if name in WHOLE:
                rivals.append((f"{WHOLE[name]} whole block", LOSSES[WHOLE[name]][0]))
            for rival_name, rival in rivals:
                ta, ma, tb, mb = bench_losses.compare(_bf16(fn, device), _bf16(rival, device), z1, z2, repeats)
                lines.append(f"| {n} | {name} | {ta * 1e3:.2f} | {ma / 2**20:.1f} | {rival_name} | {tb * 1e3:.2f} | "
                             f"{mb / 2**20:.1f} | {ta / tb:.2f}x | {ma / max(mb, 1):.2f}x |")
                print(lines[-1], flush=True)
    if not lightly:
        lines += ["", "lightly is not installed here: its rows are left out (`pip install lightly` adds them)."]
    return lines


STEP_KWARGS = {
    "simclr": {"temperature": 0.2},
    "infonce": {"temperature": 0.2},
    "dcl": {"temperature": 0.1},
    "dclw": {"temperature": 0.1, "weight_sigma": 0.5},
    "dhel": {"temperature": 0.3},
    "kcl": {"kernel": "gaussian", "t": 2.0, "gamma": 16.0},
    "kcl riesz": {"kernel": "riesz", "s": -1.0, "gamma": 1.0},
    "dhel chunked": {"temperature": 0.3, "loss_chunk_size": 48, "forward_chunk_size": 48},
}
MULTI_VIEW = ("infonce", "dhel", "kcl")


def build_method(name, backbone, small_crops=0, crop=32):
    from omegaconf import OmegaConf
    from solo.methods import METHODS

    import solo_plugins  # noqa: F401  (registers the methods)

    method = name.split()[0]
    augmentations = [{"crop_size": crop, "num_crops": 2}]
    if small_crops:
        augmentations.append({"crop_size": crop // 2, "num_crops": small_crops})
    cfg = OmegaConf.create({
        "method": method,
        "backbone": {"name": backbone, "kwargs": {}},
        "method_kwargs": {"proj_hidden_dim": 2048, "proj_output_dim": 128, **STEP_KWARGS[name],
                          **({"multiview": True} if method == "infonce" and small_crops else {})},
        "data": {"dataset": "cifar10", "num_classes": 10, "num_large_crops": 2, "num_small_crops": small_crops},
        "optimizer": {"name": "sgd", "batch_size": 2, "lr": 0.1, "weight_decay": 1e-5, "classifier_lr": 0.1,
                      "exclude_bias_n_norm_wd": False, "kwargs": {"momentum": 0.9}},
        "scheduler": {"name": "none"},
        "max_epochs": 1,
        "augmentations": augmentations,
    })
    model = METHODS[method](cfg)
    model.log_dict = lambda *a, **k: None  # no Trainer here: Lightning's logging is not measured
    model.log = lambda *a, **k: None
    return model


def _batch(n, device, small_crops=0, crop=32):
    gen = torch.Generator().manual_seed(0)
    views = [torch.randn(n, 3, crop, crop, generator=gen) for _ in range(2)]
    views += [torch.randn(n, 3, crop // 2, crop // 2, generator=gen) for _ in range(small_crops)]
    views = [v.to(device).contiguous(memory_format=torch.channels_last) for v in views]
    return [torch.arange(n, device=device), views, torch.randint(0, 10, (n,), generator=gen).to(device)]


def _step(model, optimizer, batch, device):
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        loss = model.training_step(batch, 0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _timed_step(model, optimizer, batch, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    _step(model, optimizer, batch, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    return time.perf_counter() - start, peak


def _prepared(name, backbone, device, small_crops=0):
    torch.manual_seed(0)
    model = build_method(name, backbone, small_crops).to(device).to(memory_format=torch.channels_last).train()
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def step_section(device, backbone, batch_size, repeats, methods):
    batch = _batch(batch_size, device)
    prepared = {m: _prepared(m, backbone, device) for m in methods}
    times = {m: [] for m in methods}
    peaks = {m: 0 for m in methods}
    for r in range(repeats + 1):  # round 0 warms up (cudnn autotuning, allocator)
        for m in methods:
            t, peak = _timed_step(*prepared[m], batch, device)
            if r:
                times[m].append(t)
                peaks[m] = max(peaks[m], peak)
    base = statistics.median(times["simclr"])
    lines = [
        "## 2. Training steps",
        "",
        f"{backbone} (CIFAR stem), batch {batch_size} x 2 views of 32x32, bf16 autocast, channels_last, SGD; "
        f"the methods' steps alternated, median of {repeats}. Images per second count images, not views.",
        "",
        "| method | step ms | steps/s | images/s | vs simclr | peak MiB |",
        "|---|---|---|---|---|---|",
    ]
    for m in methods:
        med = statistics.median(times[m])
        peak = f"{peaks[m] / 2**20:.0f}" if device.type == "cuda" else "n/a (CPU)"
        lines.append(f"| {m} | {med * 1e3:.1f} | {1 / med:.2f} | {batch_size / med:.0f} | {med / base:.3f}x | {peak} |")
        print(lines[-1], flush=True)
    return lines


def sync_section(device, backbone, batch_size, methods):
    lines = [
        "## 3. No host-device sync in a training step",
        "",
        ("`torch.cuda.set_sync_debug_mode(\"error\")` around two steps (forward, backward, optimizer) of each "
         "method after a warm-up step." if device.type == "cuda" else
         "The dispatch log (`solo_plugins.device.HostSyncLog`) around a step of each method: any read of a "
         "device value or tensor made of host data fails."),
        "",
        "| method | crops | result |",
        "|---|---|---|",
    ]
    failures = 0
    for m in methods:
        for small in ([0, 6] if m.split()[0] in MULTI_VIEW else [0]):
            model, optimizer = _prepared(m, backbone, device, small)
            batch = _batch(batch_size, device, small)
            _step(model, optimizer, batch, device)
            try:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.set_sync_debug_mode("error")
                    try:
                        for _ in range(2):
                            _step(model, optimizer, batch, device)
                    finally:
                        torch.cuda.set_sync_debug_mode(0)
                    result = "pass"
                else:
                    with HostSyncLog() as log:
                        _step(model, optimizer, batch, device)
                    result = "pass" if not log.problems() else "FAIL: " + "; ".join(log.problems()[:3])
            except RuntimeError as error:
                result = f"FAIL: {str(error).splitlines()[0][:200]}"
            failures += result != "pass"
            lines.append(f"| {m} | 2+{small} | {result} |")
            print(lines[-1], flush=True)
    return lines, failures


def random_state_section(device):
    """A chunked forward with dropout re-runs each chunk with its forward's random numbers
    (CPU and CUDA states restored): its gradient equals the same chunks' run with a graph."""
    from solo_plugins.methods.chunked_forward import chunked_forward

    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Dropout(0.5))
    projector = torch.nn.Sequential(torch.nn.Linear(32, 8), torch.nn.Dropout(0.3))
    modules = [m.double().to(device) for m in (backbone, projector)]

    def network(x):
        feats = backbone(x)
        return feats, projector(feats)

    images = torch.randn(64, 6, dtype=torch.float64, device=device)
    params = [p for m in modules for p in m.parameters()]
    torch.manual_seed(7)
    z = torch.cat([network(images[s : s + 16])[1] for s in range(0, 64, 16)])
    want = torch.autograd.grad(z.square().sum(), params)
    torch.manual_seed(7)
    chunked = chunked_forward(network, modules, images, 16)[1]
    got = torch.autograd.grad(chunked.square().sum(), params)
    error = max(float((g - w).abs().max()) for g, w in zip(got, want))
    result = "pass" if error < 1e-12 else f"FAIL: largest gradient difference {error:.2e}"
    lines = ["## 4. Chunked forward: the re-run draws its forward's random numbers", "",
             f"Dropout in backbone and projector, 64 rows in chunks of 16, float64 on {device.type}: "
             f"largest difference from the same chunks run with a graph {error:.1e}: {result}.", ""]
    print(lines[2], flush=True)
    return lines, int(result != "pass")


def make_jpeg_folder(root, classes=10, train_per_class=16, val_per_class=4, size=32):
    """Class-coloured noise images as JPEGs: ``root/{train,val}/<class>/<i>.jpg``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (classes, 3))
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c, base in enumerate(colours):
            folder = os.path.join(root, split, f"class{c}")
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                pixels = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(os.path.join(folder, f"{i}.jpg"), quality=90)
    return root


def dali_section(device, out_dir, quick):
    lines = ["## 5. DALI pipeline, metrics callback, pretraining and cached linear evaluation", ""]
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return lines + ["NVIDIA DALI is not installed here: section skipped (`pip install .[dali]`)."], 0
    from solo_plugins.commands._hydra import compose
    from solo_plugins.commands.linear import linear_eval
    from solo_plugins.commands.pretrain import pretrain

    per_class = 16 if quick else 64
    data = make_jpeg_folder(os.path.join(out_dir, "jpeg"), train_per_class=per_class)
    on_gpu = device.type == "cuda"
    batch, epochs = (32, 2) if quick else (64, 3)
    common = [f"data.train_path={data}/train", f"data.val_path={data}/val", f"checkpoint.dir={out_dir}/trained_models",
              f"accelerator={'gpu' if on_gpu else 'cpu'}", f"precision={'bf16-mixed' if on_gpu else 32}"]
    pre = compose(os.path.join(REPO, "configs", "pretrain", "digits"), "dhel.yaml", common + [
        "data.format=dali", "data.num_workers=2", f"+dali.device={'gpu' if on_gpu else 'cpu'}", f"optimizer.batch_size={batch}",
        f"max_epochs={epochs}", "representation_metrics.enabled=true", "representation_metrics.frequency=1",
        "representation_metrics.max_samples=64", "+limit_val_batches=1", "auto_resume.enabled=false"])
    start = time.time()
    try:
        checkpoint = pretrain(pre)
        steps = torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"]
        expected = epochs * (10 * per_class // batch)
        lin = compose(os.path.join(REPO, "configs", "linear", "digits"), "linear.yaml", common + [
            f"pretrained_feature_extractor='{checkpoint}'", "max_epochs=5", "optimizer.batch_size=32",
            "+feature_batchnorm=true", "+data.train_augmentation=false", "+cache_features=true"])
        metrics = linear_eval(lin)
    except Exception:
        return lines + ["FAIL:", "", "```", traceback.format_exc()[-3000:], "```"], 1
    ok = steps == expected
    lines += [
        f"Pretraining (DHEL, small CNN) on a generated JPEG folder (10 classes x {per_class} training images) with "
        f"`data.format: dali`, `dali.device: {'gpu' if on_gpu else 'cpu'}`, batch {batch}, {epochs} epochs, the "
        f"representation-metrics callback on every epoch: {steps} training steps, expected {expected} "
        f"({'pass' if ok else 'FAIL: the callback took batches from the training iterator'}); then the cached "
        f"linear evaluation of its checkpoint (5 epochs): val_acc1 {float(metrics['val_acc1']):.1f}%. "
        f"{time.time() - start:.0f} s in all.",
    ]
    return lines, int(not ok)


def header(device, quick):
    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"none (CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return [
        "# GPU check" + (" (quick, CPU)" if device.type == "cpu" else ""),
        "",
        f"Run {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by `python scripts/gpu_check.py"
        + (" --device cpu --quick" if quick else "") + "`.",
        f"Device: {gpu}. torch {torch.__version__} (CUDA {torch.version.cuda}), lightning {version('lightning')}, "
        f"solo-learn {version('solo-learn')}, nvidia-dali {version('nvidia-dali-cuda120')}, "
        f"lightly {version('lightly')}, Python {platform.python_version()}.",
        "",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the same code paths in a minute")
    parser.add_argument("--out", default=os.path.join("runs", "gpu_check", "report.md"))
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    global TILE
    if args.quick:
        TILE = 48  # smaller than the sizes, so that the tiles are used
        STEP_KWARGS["dhel chunked"].update(loss_chunk_size=3, forward_chunk_size=3)
        sizes, repeats, backbone, batch_size = [64, 128], 2, "resnet18", 8
    else:
        sizes, repeats, backbone, batch_size = [1024, 4096, 16384], 5, "resnet18", 256
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    methods = list(STEP_KWARGS)

    started = time.time()
    report = header(device, args.quick)
    report += loss_section(device, sizes, 128, repeats) + [""]
    report += step_section(device, backbone, batch_size, repeats, methods) + [""]
    lines, failures = sync_section(device, backbone, 4 if args.quick else 64, methods[1:])
    report += lines + [""]
    lines, random_failures = random_state_section(device)
    report += lines
    failures += random_failures
    lines, dali_failures = dali_section(device, os.path.join(out_dir, "dali"), args.quick)
    report += lines + ["", f"Whole check: {time.time() - started:.0f} s; "
                       f"{'all checks passed' if not failures + dali_failures else 'SOME CHECKS FAILED'}."]
    with open(args.out, "w") as f:
        f.write("\n".join(report) + "\n")
    print(f"report: {args.out}", flush=True)
    return 1 if failures + dali_failures else 0


if __name__ == "__main__":
    sys.exit(main())
