"""Where evaluation runs, and a check that code keeps the host out of the device's way.

``resolve_device`` turns the commands' ``device`` option into a torch device, once, where a
command starts; everything below takes its device from its inputs.

``HostSyncLog`` records the ops a piece of code dispatches and flags the two things that
make the host wait for an accelerator: reading a device value on the host
(``aten::_local_scalar_dense``: ``.item()``, ``int()``, ``bool()`` of a tensor; ``.to("cpu")``)
and a CPU tensor flowing into an op whose other tensors live on the device (a Python number
in an indexed assignment, ``new_tensor``, ``torch.tensor(...)``: a blocking copy from
pageable memory). On CPU inputs the second kind shows as ``aten::lift_fresh``, the op that
makes a tensor of host data; on ``meta`` (or CUDA) inputs, also as a CPU tensor entering an
op on the device. On CUDA, ``torch.cuda.set_sync_debug_mode("error")`` is the runtime's own
check of the same thing.
"""

from typing import List, Optional, Tuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: Optional[str] = "auto") -> torch.device:
    """``auto`` (or None): CUDA when available, else the CPU; ``cpu``; ``cuda`` or ``cuda:<i>``
    (an error when CUDA is not available)."""
    name = "auto" if device is None else str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device is {name!r} but CUDA is not available here; use 'auto' or 'cpu'")
        return torch.device(name)
    raise ValueError(f"device must be one of {', '.join(DEVICES)} (or cuda:<index>); got {device!r}")


def config_device(cfg) -> torch.device:
    """The ``device`` key of a command's config (default ``auto``), resolved; a bad value is a
    ConfigError naming the key."""
    from solo_plugins.methods.config import ConfigError

    value = cfg.get("device", "auto")
    try:
        return resolve_device(value)
    except ValueError as error:
        raise ConfigError(f"device: {error}") from None


def _tensors(tree) -> List[torch.Tensor]:
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


class HostSyncLog(TorchDispatchMode):
    """Records every dispatched op; ``syncs`` lists the host reads of device values and
    ``host_copies`` the ops that took a CPU tensor into a non-CPU computation.

    Example:
        >>> with HostSyncLog() as log:
        ...     dhel_loss_func(z1.to("meta"), z2.to("meta")).backward()
        >>> assert not log.problems(), log.problems()
    """

    def __init__(self):
        super().__init__()
        self.ops: List[str] = []
        self.syncs: List[str] = []
        self.host_copies: List[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.name())
        self.ops.append(name)
        inputs = _tensors((args, kwargs))
        on_device = [t for t in inputs if t.device.type != "cpu"]
        if func is torch.ops.aten.lift_fresh.default:
            self.host_copies.append(
                f"{name}: a tensor built from host data {tuple(inputs[0].shape)} (torch.tensor, new_tensor, or a "
                "Python number assigned by index): on an accelerator, a copy from the host"
            )
        if func is torch.ops.aten._to_copy.default and str(kwargs.get("device")) == "cpu":
            # from a device; or, on CPU inputs, ``.to("cpu", copy=True)``: a plain copy (autocast's
            # casts change the dtype, ``.to(memory_format=...)`` the layout)
            plain = kwargs.get("dtype") in (None, inputs[0].dtype) and kwargs.get("memory_format") is None
            if inputs[0].device.type != "cpu" or plain:
                self.syncs.append(f"{name}: a copy from {inputs[0].device} to the host")
        if func is torch.ops.aten._local_scalar_dense.default:
            self.syncs.append(f"{name} of a tensor on {inputs[0].device}")
            if inputs[0].device.type == "meta":  # a meta tensor has no value: read as 1
                return torch.ones((), dtype=inputs[0].dtype).item()
        out = func(*args, **kwargs)
        outputs = _tensors(out)
        touches_device = on_device or any(t.device.type != "cpu" for t in outputs)
        host = [t for t in inputs if t.device.type == "cpu"]
        if touches_device and host:
            shapes = ", ".join(str(tuple(t.shape)) for t in host)
            self.host_copies.append(f"{name} took CPU tensor(s) {shapes} into a computation on the device")
        return out

    def problems(self) -> Tuple[str, ...]:
        return tuple(self.syncs + self.host_copies)
