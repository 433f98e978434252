"""The latent-recovery study run to convergence: every run trains until a convergence criterion
holds (or until its step cap, and is then reported as unconverged), with the group's state
saved while it trains so that a killed study resumes where it was.

The criterion is not a flat curve. Training climbs in stairs (R² sits on a plateau for tens of
thousands of steps, then one more latent direction is recovered), so a run counts as converged
at a check step s >= ``min_steps`` when

1. every one of the d canonical correlations between the normalized embedding and z is at
   least ``min_canonical`` (all d latent directions recovered; a plateau has one or more
   directions far below), and
2. R² moved by at most ``r2_tolerance`` over the last ``window`` steps.

R² (the affine map's, averaged over coordinates) equals the mean squared canonical correlation
here, since z on the sphere has an isotropic covariance; the canonical correlations say which
directions are missing. The gap between the encoder's large-batch loss and the same loss at the
true latents is recorded along the way too (a run whose loss is below the true latents' has
found an optimum of its loss that is not z).

A converged run is measured, its row is written and it leaves the stacked network (its
parameters and Adam state are sliced away; the others' trajectories do not depend on it).
"""

import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch

from solo_plugins.identifiability.data import HeldOut, generator_for, held_out, mixing_weights
from solo_plugins.identifiability.measures import canonical_correlations, measure
from solo_plugins.identifiability.training import (
    GroupSettings,
    Model,
    StackedMLP,
    encode,
    encoder_init,
    loss_function,
    training_chunk,
)


@dataclass(frozen=True)
class Criterion:
    min_steps: int = 10_000
    max_steps: int = 30_000
    check_every: int = 1000
    min_canonical: float = 0.95
    window: int = 5000
    r2_tolerance: float = 0.002

    def __post_init__(self):
        if self.check_every < 1 or self.window % self.check_every:
            raise ValueError(f"window ({self.window}) must be a multiple of check_every ({self.check_every})")
        if self.min_steps % self.check_every or self.max_steps % self.check_every:
            raise ValueError(f"min_steps ({self.min_steps}) and max_steps ({self.max_steps}) must be multiples of "
                             f"check_every ({self.check_every})")
        if not 0 < self.min_canonical <= 1:
            raise ValueError(f"min_canonical must be in (0, 1]; got {self.min_canonical}")
        if self.max_steps < self.min_steps or self.min_steps < self.window:
            raise ValueError(f"need window <= min_steps <= max_steps; got {self.window}, {self.min_steps}, "
                             f"{self.max_steps}")


def _converged(curve: List[Dict], step: int, criterion: Criterion, d: int) -> bool:
    if step < criterion.min_steps:
        return False
    by_step = {p["step"]: p for p in curve}
    now, before = by_step.get(step), by_step.get(step - criterion.window)
    if now is None or before is None:
        return False
    return now["directions"] >= d and abs(now["r2"] - before["r2"]) <= criterion.r2_tolerance


@dataclass
class RunResult:
    """What a run leaves when it stops: its final measurements, the step it stopped at and
    whether it converged there, its measurements at ``early_step`` and its curve."""

    model: Model
    final: Dict[str, float]
    early: Dict[str, float]
    curve: List[Dict[str, float]]
    stopped_step: int
    converged: bool
    diverged_step: Optional[int]
    seconds: float


def train_to_convergence(models: Sequence[Model], settings: GroupSettings, criterion: Criterion,
                         on_result: Callable[[RunResult], None], state_path: Optional[str] = None,
                         checkpoint_seconds: float = 300.0, early_step: int = 1000,
                         skip: Callable[[Model], bool] = lambda m: False,
                         progress: Optional[Callable[[str], None]] = None, interrupt=None) -> None:
    """Trains ``models`` together (as :func:`~solo_plugins.identifiability.training.train_group`
    does) until each meets ``criterion`` or reaches ``criterion.max_steps``; ``on_result`` gets
    each run as it stops. With ``state_path`` the group's state is saved there (at most every
    ``checkpoint_seconds``, at a data-chunk boundary) and a run of the same models resumes from
    it; runs for which ``skip`` is true at the start (their rows exist) are dropped. With
    ``interrupt`` (a :class:`~solo_plugins.signals.DeferredSignal`) a requested stop saves the
    state at the next data-chunk boundary, hands the signal on and returns."""
    threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        _Group(models, settings, criterion, on_result, state_path, checkpoint_seconds, early_step, skip,
               progress or (lambda line: None), interrupt).train()
    finally:
        torch.set_num_threads(threads)


class _Group:
    def __init__(self, models, settings: GroupSettings, criterion: Criterion, on_result, state_path,
                 checkpoint_seconds, early_step, skip, progress, interrupt=None):
        self.models, self.settings, self.criterion = list(models), settings, criterion
        self.on_result, self.state_path, self.checkpoint_seconds = on_result, state_path, checkpoint_seconds
        self.early_step, self.skip, self.progress, self.interrupt = early_step, skip, progress, interrupt
        d = settings.latent_dim
        self.seeds = sorted({m.seed for m in self.models})
        self.weights = {s: mixing_weights(d, settings.mixing_layers, generator_for(s, 0)) for s in self.seeds}
        init = {s: encoder_init([d, *settings.hidden, d], generator_for(s, 1)) for s in self.seeds}
        self.encoder = StackedMLP([init[m.seed] for m in self.models])
        self.optimizer = torch.optim.Adam(self.encoder.parameters(), lr=settings.lr)
        self.data_gens = {s: generator_for(s, 2) for s in self.seeds}
        self.heldouts = [held_out(s, d, settings.kappa, self.weights[s], settings.heldout) for s in self.seeds]
        self.x = [torch.stack([getattr(h, name) for h in self.heldouts]) for name in ("x_fit", "x", "x_pos")]
        self.active = list(range(len(self.models)))  # positions in self.models of the stacked rows
        self.curves: List[List[Dict]] = [[] for _ in self.models]
        self.early: List[Dict] = [{} for _ in self.models]
        self.diverged: List[Optional[int]] = [None] * len(self.models)
        self.fns = [loss_function(m.loss) for m in self.models]
        self.large = [loss_function(m.loss, chunk_size=settings.large_batch_chunk) for m in self.models]
        with torch.no_grad():
            self.oracle = [float(self.large[k](self.heldouts[self._seed(k)].z[:settings.large_batch],
                                               self.heldouts[self._seed(k)].z_pos[:settings.large_batch]))
                           for k in range(len(self.models))]
        self.step = 0
        self.seconds = 0.0

    def _seed(self, k: int) -> int:
        return self.seeds.index(self.models[k].seed)

    # ------------------------------------------------------------------------ state

    def _ids(self) -> List[str]:
        return [f"{m.name}|{m.spec}|{m.seed}" for m in self.models]

    def save(self) -> None:
        state = {
            "models": self._ids(), "step": self.step, "active": self.active, "seconds": self.seconds,
            "encoder": self.encoder.state_dict(), "optimizer": self.optimizer.state_dict(),
            "generators": {s: g.get_state() for s, g in self.data_gens.items()},
            "curves": self.curves, "early": self.early, "diverged": self.diverged,
        }
        tmp = f"{self.state_path}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.state_path)

    def load(self) -> bool:
        if not self.state_path or not os.path.exists(self.state_path):
            return False
        try:
            state = torch.load(self.state_path, weights_only=False)
        except Exception as error:  # a corrupt state file: start the group again
            self.progress(f"  ignoring the unreadable group state {self.state_path} ({error})")
            return False
        if state.get("models") != self._ids():
            self.progress(f"  ignoring the group state {self.state_path}: it holds other runs")
            return False
        self._keep(state["active"])
        self.encoder.load_state_dict(state["encoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        for s, g in self.data_gens.items():
            g.set_state(state["generators"][s])
        self.step, self.seconds = state["step"], state["seconds"]
        self.curves, self.early, self.diverged = state["curves"], state["early"], state["diverged"]
        self.progress(f"  resumed at step {self.step} with {len(self.active)} of {len(self.models)} runs training")
        return True

    def _keep(self, keep: List[int]) -> None:
        """Keeps the stacked rows of the runs ``keep`` (positions in self.models), parameters and
        Adam state alike."""
        rows = torch.tensor([self.active.index(k) for k in keep], dtype=torch.long)
        old = list(self.encoder.parameters())
        for params in (self.encoder.weights, self.encoder.biases):
            for i, p in enumerate(params):
                params[i] = torch.nn.Parameter(p.detach()[rows].clone())
        optimizer = torch.optim.Adam(self.encoder.parameters(), lr=self.settings.lr)
        for before, after in zip(old, self.encoder.parameters()):
            state = self.optimizer.state.get(before)
            if state:
                optimizer.state[after] = {name: value.clone() if name == "step" else value[rows].clone()
                                          for name, value in state.items()}
        self.optimizer = optimizer
        self.active = list(keep)

    # ---------------------------------------------------------------------- measure

    def evaluate(self, n: int, large: bool) -> List[Dict[str, float]]:
        """Measurements of the active runs on the first ``n`` held-out rows (with the canonical
        correlations, and the large-batch loss and its gap to the true latents if ``large``)."""
        s = self.settings
        index = torch.tensor([self._seed(k) for k in self.active])
        with torch.no_grad():
            h_fit, h, h_pos = (encode(self.encoder, x[:, :n], index) for x in self.x)
        out = []
        for row, k in enumerate(self.active):
            data = self.heldouts[self._seed(k)]
            data = HeldOut(data.z_fit[:n], None, data.z[:n], data.z_pos[:n], None, None)
            m = measure(h_fit[row], h[row], h_pos[row], data, self.fns[k], s.batch_size, s.pairwise_points,
                        s.loss_batches)
            u = torch.nn.functional.normalize(h[row].double(), dim=1)
            rho = canonical_correlations(u, data.z) if torch.isfinite(u).all() else torch.zeros(s.latent_dim)
            m["min_canonical"] = float(rho.min())
            m["directions"] = int((rho >= self.criterion.min_canonical).sum())
            if large:
                with torch.no_grad():
                    m["loss_large"] = float(self.large[k](h[row, :s.large_batch], h_pos[row, :s.large_batch]))
                m["loss_gap"] = m["loss_large"] - self.oracle[k]
            out.append(m)
        return out

    def _finish(self, k: int, final: Dict[str, float], converged: bool) -> None:
        final = {**final, "loss_oracle": self.oracle[k]}
        self.on_result(RunResult(self.models[k], final, self.early[k], self.curves[k], self.step, converged,
                                 self.diverged[k], self.seconds / len(self.models)))

    def _check(self) -> None:
        s, c = self.settings, self.criterion
        points = self.evaluate(min(s.curve_points, s.heldout), large=True)
        for k, m in zip(self.active, points):
            self.curves[k].append({"step": self.step, **m})
        if self.step == self.early_step:
            for k, m in zip(self.active, self.evaluate(s.heldout, large=True)):
                self.early[k] = m
        done = [k for k in self.active
                if self.step >= c.max_steps or self.diverged[k] is not None
                or _converged(self.curves[k], self.step, c, s.latent_dim)]
        if done:
            finals = dict(zip(self.active, self.evaluate(s.heldout, large=True)))
            for k in done:
                converged = self.diverged[k] is None and _converged(self.curves[k], self.step, c, s.latent_dim)
                self._finish(k, finals[k], converged)
            self._keep([k for k in self.active if k not in done])
        r2 = sorted(p["r2"] for p in points)
        self.progress(f"  step {self.step}: {len(self.active)} training, {len(done)} stopped; "
                      f"R² {r2[0]:.3f}-{r2[-1]:.3f}, {self.seconds:.0f}s")

    # --------------------------------------------------------------------- training

    def train(self) -> None:
        resumed = self.load()
        dropped = [k for k in self.active if self.skip(self.models[k])]
        if dropped:
            self._keep([k for k in self.active if k not in dropped])
        s, c = self.settings, self.criterion
        b = s.batch_size
        last_save = time.time()
        started = time.time() - self.seconds
        chunk = None
        while self.active:
            self.seconds = time.time() - started
            if self.step % s.data_chunk == 0:
                stop = self.interrupt is not None and self.interrupt.requested()
                if self.state_path and (stop or time.time() - last_save >= self.checkpoint_seconds):
                    self.save()
                    last_save = time.time()
                if stop:  # a chunk boundary: the saved generators are where the next chunk starts
                    self.progress(f"  signal: the group's state saved at step {self.step}; handing on")
                    self.interrupt.hand_on()
                    return
                chunk = training_chunk(self.seeds, self.data_gens, self.weights, s.data_chunk, b,
                                        s.latent_dim, s.kappa)
            if self.step % c.check_every == 0 or self.step == self.early_step:
                if not (resumed and self.curves[self.active[0]] and
                        self.curves[self.active[0]][-1]["step"] == self.step):
                    self._check()
                if not self.active:
                    break
            index = torch.tensor([self._seed(k) for k in self.active])
            x = chunk[index, self.step % s.data_chunk]
            h = self.encoder(x)
            per_run = torch.stack([self.fns[k](h[row, :b], h[row, b:]) for row, k in enumerate(self.active)])
            self.optimizer.zero_grad(set_to_none=True)
            bad = ~torch.isfinite(per_run)
            if bool(bad.any()):
                for row in bad.nonzero().flatten().tolist():
                    k = self.active[row]
                    if self.diverged[k] is None:
                        self.diverged[k] = self.step
            per_run.masked_fill(bad, 0).sum().backward()
            for p in self.encoder.parameters():
                if p.grad is not None:
                    p.grad.nan_to_num_(0.0, 0.0, 0.0)
            self.optimizer.step()
            self.step += 1
        if self.state_path and os.path.exists(self.state_path):
            os.remove(self.state_path)
