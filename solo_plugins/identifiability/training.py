"""Training for the latent-recovery study: latent recovery on the hypersphere, where the optimum is known (Zimmermann et al., ICML 2021,
"Contrastive Learning Inverts the Data-Generating Process"; brendel-group/cl-ica).

Latents z are uniform on S^(d-1); a positive z' is drawn from a von Mises-Fisher distribution
around z with concentration kappa; observations are x = g(z) through a fixed random invertible
MLP g (cl-ica's mixing: square weights drawn uniform in [-1, 1] with unit columns, kept when
their condition number is in the best quarter of 10,000 such draws, leaky ReLU 0.2 between
layers, no bias). An MLP encoder f is trained with one of the package's losses on fresh
samples at every step; InfoNCE's asymptotic optimum gives f(g(z)) = Rz for an orthogonal R.

Many encoders (methods x seeds) are trained at once as one batched network: the weights of
every model are stacked along a first axis and multiplied with ``torch.baddbmm``, each model's
loss is the package's loss function on its own rows, and their sum is differentiated once.
Since no parameter is shared and Adam is elementwise, every model follows exactly the
trajectory it would follow alone; stacking only saves the per-step overhead of small networks.
A seed fixes the mixing, the encoder's initial weights and the data stream, so that methods
compared at one seed see the same data from the same start (paired comparisons).
"""

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from solo_plugins import losses
from solo_plugins.identifiability.data import (
    HeldOut,
    generator_for,
    held_out,
    mix,
    mixing_weights,
    sample_sphere,
    sample_vmf,
)
from solo_plugins.identifiability.measures import measure

#: The losses a study may train, by name; each takes the settings its function declares
#: (:func:`~solo_plugins.losses.loss_options`), anything else is a configuration error.
LOSS_FUNCTIONS = {
    "infonce": losses.infonce_loss_func,
    "dcl": losses.dcl_loss_func,
    "dhel": losses.dhel_loss_func,
    "kcl": losses.kcl_loss_func,
}
LOSS_KEYS = {name: losses.loss_options(fn) for name, fn in LOSS_FUNCTIONS.items()}


def check_loss_spec(spec: Dict, where: str = "loss") -> None:
    """A loss spec is ``{"loss": <name>, <its settings>}``; unknown names or keys are errors."""
    name = spec.get("loss")
    if name not in LOSS_KEYS:
        raise ValueError(f"{where}: 'loss' must be one of {sorted(LOSS_KEYS)}; got {name!r}")
    unknown = sorted(set(spec) - {"loss"} - set(LOSS_KEYS[name]))
    if unknown:
        raise ValueError(f"{where}: {name} takes {list(LOSS_KEYS[name])}; unknown {unknown}")


def loss_function(spec: Dict, chunk_size: Optional[int] = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The package's loss function for ``spec`` as f(z1, z2) -> scalar."""
    check_loss_spec(spec)
    kwargs = {k: v for k, v in spec.items() if k != "loss"}
    fn = LOSS_FUNCTIONS[spec["loss"]]
    return lambda z1, z2: fn(z1, z2, **kwargs, chunk_size=chunk_size)


class StackedMLP(torch.nn.Module):
    """``len(init)`` independent MLPs of one shape, evaluated together: input (M, n, d_in),
    output (M, n, d_out). ``init[m]`` is model m's list of (weight (in, out), bias (out,))."""

    def __init__(self, init: Sequence[List[Tuple[torch.Tensor, torch.Tensor]]], slope: float = 0.01):
        super().__init__()
        self.slope = slope
        n_layers = len(init[0])
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.stack([m[i][0] for m in init])) for i in range(n_layers)])
        self.biases = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.stack([m[i][1] for m in init])[:, None, :]) for i in range(n_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.weights) - 1:
                x = F.leaky_relu(x, self.slope)
        return x


def encoder_init(sizes: Sequence[int], generator: torch.Generator) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """torch.nn.Linear's default initialization (uniform in ±1/sqrt(fan_in), weight and bias)
    for an MLP of layer widths ``sizes``, drawn from ``generator``."""
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(fan_in)
        w = (torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
        layers.append((w, b))
    return layers


@dataclass(frozen=True)
class Model:
    """One run of a group: a loss spec, a seed, and the name its row carries."""

    name: str  # the row's method name, e.g. "dhel"
    spec: Tuple[Tuple[str, object], ...]  # the loss spec as sorted items (hashable)
    seed: int

    @property
    def loss(self) -> Dict:
        return dict(self.spec)


@dataclass
class GroupSettings:
    latent_dim: int = 10
    kappa: float = 10.0
    mixing_layers: int = 3
    hidden: Tuple[int, ...] = (256, 256)
    lr: float = 1e-3
    batch_size: int = 64
    steps: int = 3000
    eval_steps: Tuple[int, ...] = ()
    heldout: int = 10_000  # latents to fit the maps on, and as many to measure on
    curve_points: int = 10_000  # the part of each used for the convergence curves
    pairwise_points: int = 1000  # rows for uniformity and the Wasserstein distance
    loss_batches: int = 64  # held-out batches of the training size for the loss's value
    large_batch: int = 2048  # pairs for the loss's asymptotic value
    final_losses: bool = True  # measure the loss at the large batch and at the true latents
    large_batch_chunk: int = 1024
    data_chunk: int = 64  # steps of training data drawn at once
    threads: Optional[int] = None


@dataclass
class GroupResult:
    final: List[Dict[str, float]]  # per model
    curves: List[List[Dict[str, float]]]  # per model: one dict per eval step (with "step")
    oracle: List[float]  # per model: the loss at the true latents, whole held-out sample
    diverged_at: List[Optional[int]]
    seconds: float
    last_losses: List[float] = field(default_factory=list)


def training_chunk(seeds: Sequence[int], generators: Dict[int, torch.Generator], weights: Dict[int, torch.Tensor],
                    steps: int, batch: int, d: int, kappa: float) -> torch.Tensor:
    """(seeds, steps, 2·batch, d) observations: each step's batch then its positives."""
    out = []
    for s in seeds:
        z = sample_sphere(steps * batch, d, generators[s])
        z_pos = sample_vmf(z, kappa, generators[s])
        x = mix(torch.stack([z, z_pos]), weights[s])  # (2, steps*batch, d)
        out.append(x.reshape(2, steps, batch, d).transpose(0, 1).reshape(steps, 2 * batch, d))
    return torch.stack(out)


def encode(encoder: StackedMLP, x: torch.Tensor, index: torch.Tensor, rows: int = 4096) -> torch.Tensor:
    """Encoder outputs (M, n, d) of each model on its seed's observations ``x[index]``."""
    parts = [encoder(x[index, i:i + rows]) for i in range(0, x.shape[1], rows)]
    return torch.cat(parts, 1)


def train_group(models: Sequence[Model], settings: GroupSettings,
                progress: Optional[Callable[[str], None]] = None) -> GroupResult:
    """Trains every model of ``models`` for ``settings.steps`` Adam steps on fresh samples of
    ``settings.batch_size`` pairs each, measuring at ``settings.eval_steps`` and at the end."""
    start = time.time()
    threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        return _train_group(models, settings, progress, start)
    finally:
        torch.set_num_threads(threads)


def _train_group(models, settings, progress, start) -> GroupResult:
    d, b = settings.latent_dim, settings.batch_size
    seeds = sorted({m.seed for m in models})
    weights = {s: mixing_weights(d, settings.mixing_layers, generator_for(s, 0)) for s in seeds}
    sizes = [d, *settings.hidden, d]
    init = {s: encoder_init(sizes, generator_for(s, 1)) for s in seeds}
    encoder = StackedMLP([init[m.seed] for m in models])
    optimizer = torch.optim.Adam(encoder.parameters(), lr=settings.lr)
    index = torch.tensor([seeds.index(m.seed) for m in models])
    fns = [loss_function(m.loss) for m in models]
    large = [loss_function(m.loss, chunk_size=settings.large_batch_chunk) for m in models]
    data_gens = {s: generator_for(s, 2) for s in seeds}
    heldouts = [held_out(s, d, settings.kappa, weights[s], settings.heldout) for s in seeds]
    x_fit = torch.stack([h.x_fit for h in heldouts])
    x_test = torch.stack([h.x for h in heldouts])
    x_pos = torch.stack([h.x_pos for h in heldouts])

    def evaluate(final: bool) -> List[Dict[str, float]]:
        n = settings.heldout if final else min(settings.curve_points, settings.heldout)
        with torch.no_grad():
            h_fit, h, h_pos = (encode(encoder, x[:, :n], index) for x in (x_fit, x_test, x_pos))
        out = []
        for k in range(len(models)):
            data = heldouts[index[k]]
            data = HeldOut(data.z_fit[:n], None, data.z[:n], data.z_pos[:n], None, None)
            m = measure(h_fit[k], h[k], h_pos[k], data, fns[k], b, settings.pairwise_points, settings.loss_batches)
            if final and settings.final_losses:
                with torch.no_grad():
                    m["loss_large"] = float(large[k](h[k, :settings.large_batch], h_pos[k, :settings.large_batch]))
            out.append(m)
        return out

    curves = [[] for _ in models]
    diverged: List[Optional[int]] = [None] * len(models)
    recent = torch.zeros(len(models), dtype=torch.float64)
    recent_n = 0
    eval_steps = set(settings.eval_steps)
    chunk = None
    for step in range(settings.steps):
        if step in eval_steps:
            for k, m in enumerate(evaluate(final=False)):
                curves[k].append({"step": step, **m})
        if step % settings.data_chunk == 0:
            chunk = training_chunk(seeds, data_gens, weights, min(settings.data_chunk, settings.steps - step), b,
                                    d, settings.kappa)
        x = chunk[index, step % settings.data_chunk]  # (M, 2b, d)
        h = encoder(x)
        per_model = torch.stack([fn(h[k, :b], h[k, b:]) for k, fn in enumerate(fns)])
        optimizer.zero_grad(set_to_none=True)
        # A model whose loss is not finite gets a zero gradient from then on and is reported
        # as diverged (diverged_step in its row); the others do not depend on it.
        bad = ~torch.isfinite(per_model)
        if bool(bad.any()):
            for k in bad.nonzero().flatten().tolist():
                if diverged[k] is None:
                    diverged[k] = step
        per_model.masked_fill(bad, 0).sum().backward()
        for p in encoder.parameters():
            if p.grad is not None:
                p.grad.nan_to_num_(0.0, 0.0, 0.0)
        optimizer.step()
        if step >= settings.steps - 100:
            recent += per_model.detach().double()
            recent_n += 1
        if progress and (step + 1) % 1000 == 0:
            progress(f"  step {step + 1}/{settings.steps}, {time.time() - start:.0f}s")
    final = evaluate(final=True)
    for k, m in enumerate(final):
        curves[k].append({"step": settings.steps, **{key: v for key, v in m.items() if key != "loss_large"}})
    # The final point of a curve is measured on the whole held-out sample, the others on
    # its first ``curve_points`` rows.
    oracle = []
    for k, m in enumerate(models if settings.final_losses else ()):
        data = heldouts[index[k]]
        with torch.no_grad():
            oracle.append(float(large[k](data.z[:settings.large_batch], data.z_pos[:settings.large_batch])))
    return GroupResult(final, curves, oracle, diverged, time.time() - start,
                       (recent / max(recent_n, 1)).tolist())
