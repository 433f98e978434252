"""Backbone and projector over a batch in chunks, with GradCache's memory (Gao et al., "Scaling
Deep Contrastive Learning Batch Size under Memory Limited Setup", 2021; luyug/GradCache).

Forward runs the network chunk by chunk without a graph and keeps only the images and the
outputs. The loss is computed on those outputs as usual; backward receives its gradient
with respect to them, re-runs each chunk with a graph and backpropagates that chunk's slice,
summing the parameter gradients. Inside one autograd Function, so Lightning's automatic
optimization, gradient clipping and DDP's gradient synchronisation work unchanged: activation
memory is one chunk's, whatever the batch.

BatchNorm computes its statistics per chunk (as in GradCache), so a chunked step is not the
unchunked step: it is the step over the same chunks' statistics. Running statistics are
updated once per chunk (in forward; restored around the re-run). The re-run of a chunk
draws the random numbers its forward drew (dropout, drop path): the CPU and CUDA random
states are saved before each chunk's forward and restored around its re-run, as GradCache's
RandContext does, so the gradient is that of the network sample the forward used.
"""

from typing import Callable, List, Tuple

import torch
import torch.nn as nn

#: ``network(images) -> (feats, z)``.
Network = Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


def _random_state(device: torch.device):
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _buffers(modules: List[nn.Module]) -> List[torch.Tensor]:
    return [b for m in modules for b in m.buffers()]


class _ChunkedForward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, network: Network, modules, chunk_size: int, images: torch.Tensor, *params):  # type: ignore[override]
        ctx.network, ctx.modules, ctx.chunk_size = network, modules, chunk_size
        ctx.save_for_backward(images)
        ctx.random_states, outs = [], []
        with torch.no_grad():
            for s in range(0, images.shape[0], chunk_size):
                ctx.random_states.append(_random_state(images.device))
                outs.append(network(images[s : s + chunk_size]))
        feats, z = torch.cat([f for f, _ in outs]), torch.cat([p for _, p in outs])
        ctx.mark_non_differentiable(feats)  # solo's classifier reads them detached
        return feats, z

    @staticmethod
    def backward(ctx, _grad_feats, grad_z):  # type: ignore[override]
        (images,) = ctx.saved_tensors
        params = [p for m in ctx.modules for p in m.parameters() if p.requires_grad]
        grads = [torch.zeros_like(p) for p in params]
        buffers = _buffers(ctx.modules)
        cuda = [images.device] if images.device.type == "cuda" else []
        for s, (cpu_state, cuda_state) in zip(range(0, images.shape[0], ctx.chunk_size), ctx.random_states):
            kept = [b.clone() for b in buffers]  # the re-run must not update running statistics again
            with torch.random.fork_rng(devices=cuda), torch.enable_grad():
                torch.set_rng_state(cpu_state)
                if cuda_state is not None:
                    torch.cuda.set_rng_state(cuda_state, images.device)
                _, z = ctx.network(images[s : s + ctx.chunk_size])
                chunk_grads = torch.autograd.grad(z, params, grad_z[s : s + ctx.chunk_size], allow_unused=True)
            with torch.no_grad():
                for b, k in zip(buffers, kept):
                    b.copy_(k)
            for total, g in zip(grads, chunk_grads):
                if g is not None:
                    total += g
        it = iter(grads)
        all_params = [p for m in ctx.modules for p in m.parameters()]
        return (None, None, None, None, *[next(it) if p.requires_grad else None for p in all_params])


def chunked_forward(network: Network, modules: List[nn.Module], images: torch.Tensor,
                    chunk_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``network(images)`` as (feats, z), in chunks of ``chunk_size`` images with GradCache's
    memory; ``modules`` hold every parameter and buffer ``network`` uses. ``feats`` carries
    no gradient."""
    params = [p for m in modules for p in m.parameters()]
    return _ChunkedForward.apply(network, modules, chunk_size, images, *params)
