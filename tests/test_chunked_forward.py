"""method_kwargs.forward_chunk_size: the backbone and projector run in chunks, GradCache's way.
Against the plain step (eval-mode BatchNorm), against a plain step over the same chunks'
statistics (train mode), in what autograd keeps, and in a digits pretraining."""

import copy

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

pytest.importorskip("solo.methods")

from tests.test_methods import CLASSES, FakeViews, base_cfg  # noqa: E402


def _step_grads(model, batch):
    model.zero_grad(set_to_none=True)
    logged = {}
    model.log_dict = lambda d, **kw: logged.update(d)
    model.log = lambda *a, **kw: None
    loss = model.training_step(batch, 0)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return float(loss), grads


def _models(name, chunk, projector="paper", batch_size=10):
    """In float64, so that a chunk's sum order cannot hide a difference."""
    torch.manual_seed(0)
    plain = CLASSES[name](base_cfg(name, backbone="small_cnn", crop=16, batch_size=batch_size, projector=projector))
    plain = plain.double()
    chunked = copy.deepcopy(plain)
    chunked.forward_chunk_size = chunk
    return plain, chunked


def _batch(n=10):
    idx, views, y = next(iter(DataLoader(FakeViews(n, size=16), batch_size=n)))
    return idx, [v.double() for v in views], y


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dhel", "kcl", "infonce"])
def test_chunked_step_equals_the_plain_step_with_eval_mode_batchnorm(name):
    plain, chunked = _models(name, chunk=3)
    plain.eval(), chunked.eval()
    batch = _batch()
    loss, grads = _step_grads(plain, batch)
    chunked_loss, chunked_grads = _step_grads(chunked, batch)
    assert chunked_loss == pytest.approx(loss, rel=1e-6)
    assert set(chunked_grads) == set(grads)
    for key in grads:
        torch.testing.assert_close(chunked_grads[key], grads[key], rtol=1e-5, atol=1e-6, msg=key)


class _PerChunk(nn.Module):
    """The module over each chunk with a graph, concatenated: the plain step over the same
    chunks' BatchNorm statistics."""

    def __init__(self, module, chunk):
        super().__init__()
        self.module, self.chunk = module, chunk

    def forward(self, x):
        return torch.cat([self.module(x[s : s + self.chunk]) for s in range(0, x.shape[0], self.chunk)])


@pytest.mark.parametrize("name", ["dhel", "dclw"])
def test_chunked_step_equals_a_plain_step_over_the_same_chunks_statistics(name):
    plain, chunked = _models(name, chunk=4)  # 10 = 4 + 4 + 2
    plain.backbone, plain.projector = _PerChunk(plain.backbone, 4), _PerChunk(plain.projector, 4)
    batch = _batch()
    loss, grads = _step_grads(plain, batch)
    chunked_loss, chunked_grads = _step_grads(chunked, batch)
    assert chunked_loss == pytest.approx(loss, rel=1e-6)
    for key, g in chunked_grads.items():
        torch.testing.assert_close(g, grads[key.replace("backbone.", "backbone.module.", 1)
                                            .replace("projector.", "projector.module.", 1)
                                            if key.split(".")[0] in ("backbone", "projector") else key],
                                   rtol=1e-5, atol=1e-6, msg=key)
    # running statistics: updated once per chunk, as in the reference
    for (key, b), (_, ref) in zip(chunked.backbone.named_buffers(), plain.backbone.module.named_buffers()):
        torch.testing.assert_close(b, ref, msg=key)


def test_chunked_forward_keeps_only_a_chunk_of_activations():
    plain, chunked = _models("dhel", chunk=4, batch_size=32)
    batch = _batch(32)

    def saved(model):
        total = {}

        def pack(t):
            total[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.training_step(batch, 0)
        return sum(total.values())

    plain.log_dict = chunked.log_dict = lambda *a, **k: None
    assert saved(chunked) < saved(plain) / 4


@pytest.mark.parametrize("bad", [0, -2, 1.5, "x"])
def test_forward_chunk_size_bad_values_are_config_errors(bad):
    from solo_plugins.methods.config import ConfigError

    with pytest.raises(ConfigError, match="method_kwargs.forward_chunk_size must be null .* or an integer >= 1"):
        CLASSES["kcl"](base_cfg("kcl", forward_chunk_size=bad))


@pytest.mark.slow
def test_pretraining_with_chunks_converges_like_without(digits_root, tmp_path):
    from solo_plugins.commands.pretrain import pretrain
    from solo_plugins.evaluation import evaluate_checkpoint
    from tests.conftest import compose, digits_overrides

    scores = {}
    for chunk in ("null", "16 +method_kwargs.loss_chunk_size=24"):  # forward chunks alone: the step tests
        overrides = ["max_epochs=4", "optimizer.batch_size=64", "+limit_val_batches=0",
                     *f"+method_kwargs.forward_chunk_size={chunk}".split()]
        out = tmp_path / f"run{len(scores)}"
        ckpt = pretrain(compose("pretrain", "digits", "dhel.yaml", digits_overrides(digits_root, out, overrides)))
        scores[chunk] = evaluate_checkpoint(ckpt, seed=0, metrics_samples=64)["knn_acc1"]
    print("knn_acc1 by forward_chunk_size:", scores)
    untrained = 87.8  # the demo's random-init row (an untrained small CNN): kNN 87.8 on digits
    assert all(s > untrained for s in scores.values()), scores
    assert max(scores.values()) - min(scores.values()) < 6, scores


def _random_network():
    from timm.layers import DropPath

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5)).double()
    projector = nn.Sequential(nn.Linear(16, 8), nn.Dropout(0.3)).double()
    drop_path = DropPath(0.5)

    def network(x):
        feats = backbone(x)
        return feats, projector(feats + drop_path(feats))

    return network, [backbone, projector]


def test_chunks_re_run_with_the_random_numbers_of_their_forward():
    """With dropout and drop path, the chunked gradient is the gradient of the same chunks
    run with a graph (the same masks), to float64 rounding; before, the re-run drew new masks."""
    from solo_plugins.methods.chunked_forward import chunked_forward

    images = torch.randn(10, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.randn(10, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    network, modules = _random_network()
    params = [p for m in modules for p in m.parameters()]

    torch.manual_seed(7)
    z = torch.cat([network(images[s : s + 4])[1] for s in range(0, 10, 4)])
    reference = torch.autograd.grad((z * target).sum(), params)

    torch.manual_seed(7)
    _, chunked = chunked_forward(network, modules, images, 4)
    (chunked * target).sum().backward()
    torch.testing.assert_close(chunked, z.detach(), rtol=0, atol=0)
    for p, want in zip(params, reference):
        torch.testing.assert_close(p.grad, want, rtol=1e-12, atol=1e-14)
    # the training loop's random stream goes on from where the forward left it
    torch.manual_seed(7)
    for s in range(0, 10, 4):
        network(images[s : s + 4])
    after_plain = torch.rand(3)
    torch.manual_seed(7)
    _, chunked = chunked_forward(network, modules, images, 4)
    chunked.sum().backward()
    assert torch.equal(torch.rand(3), after_plain)
