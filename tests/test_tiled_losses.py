"""The tiled path (``chunk_size``) against the whole-block path: same values and gradients in
float64 for every loss, kernel and number of views, at sizes that are not multiples of the
tile; safe in fp16/bf16 and at collapse; O(N·D) kept for backward; exact under 2 gloo ranks."""

import pytest
import torch
import torch.distributed as dist

from solo_plugins.losses import (
    DCLLoss,
    DHELLoss,
    InfoNCELoss,
    KCLLoss,
    dcl_loss_terms,
    dhel_loss_terms,
    infonce_loss_terms,
    kcl_loss_terms,
    mv_dhel_loss_terms,
    mv_infonce_loss_terms,
    mv_kcl_loss_terms,
)
from solo_plugins.losses.kcl import KERNELS
from tests.gloo import run_on_two_ranks


def _kcl(kernel):
    parameter = {"s": -1.0} if "riesz" in kernel else {"t": 2.0}
    return lambda a, b, c: kcl_loss_terms(a, b, gather_distributed=True, kernel=kernel, gamma=3.0, chunk_size=c, **parameter)


TERMS = {
    "infonce": lambda a, b, c: infonce_loss_terms(a, b, gather_distributed=True, temperature=0.2, chunk_size=c),
    "dhel": lambda a, b, c: dhel_loss_terms(a, b, gather_distributed=True, temperature=0.3, chunk_size=c),
    "dhel_no_augs": lambda a, b, c: dhel_loss_terms(a, b, gather_distributed=True, temperature=0.3, include_augs=False, chunk_size=c),
    "dcl": lambda a, b, c: dcl_loss_terms(a, b, gather_distributed=True, temperature=0.1, chunk_size=c),
    "dclw": lambda a, b, c: dcl_loss_terms(a, b, gather_distributed=True, temperature=0.1, weight_sigma=0.5, chunk_size=c),
    "dclw_grad": lambda a, b, c: dcl_loss_terms(a, b, gather_distributed=True, temperature=0.1, weight_sigma=0.5, weight_grad=True, chunk_size=c),
    **{f"kcl_{k}": _kcl(k) for k in KERNELS},
    "mv_dhel_3": lambda a, b, c: mv_dhel_loss_terms([a, b, a.flip(1)], gather_distributed=True, temperature=0.3, chunk_size=c),
    "mv_infonce_3": lambda a, b, c: mv_infonce_loss_terms([a, b, a.flip(1)], gather_distributed=True, temperature=0.2, chunk_size=c),
    "mv_infonce_4": lambda a, b, c: mv_infonce_loss_terms([a, b, a.flip(1), b.flip(1)], gather_distributed=True, temperature=0.2, chunk_size=c),
    "mv_kcl_gaussian_3": lambda a, b, c: mv_kcl_loss_terms([a, b, a.flip(1)], gather_distributed=True, kernel="gaussian", t=2.0, gamma=3.0, chunk_size=c),
    "mv_kcl_imq_3": lambda a, b, c: mv_kcl_loss_terms([a, b, a.flip(1)], gather_distributed=True, kernel="imq", t=1.0, gamma=3.0, chunk_size=c),
    "mv_kcl_riesz_3": lambda a, b, c: mv_kcl_loss_terms([a, b, a.flip(1)], gather_distributed=True, kernel="riesz", s=-1.0, gamma=3.0, chunk_size=c),
}


def _pair(n=13, d=6, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=gen, dtype=dtype)
    return a, a + 0.7 * torch.randn(n, d, generator=gen, dtype=dtype)


def _run(fn, a, b, chunk):
    a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
    parts = fn(a, b, chunk)
    parts.loss.backward()
    return parts, a.grad, b.grad


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [1, 4, 5, 12])
@pytest.mark.parametrize("name", list(TERMS))
def test_tiled_equals_whole_block_in_float64(name, chunk):
    a, b = _pair()
    full, ga, gb = _run(TERMS[name], a, b, None)
    tiled, ta, tb = _run(TERMS[name], a, b, chunk)
    for got, want in zip(tiled, full):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(ta, ga, rtol=0, atol=1e-12)
    torch.testing.assert_close(tb, gb, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["infonce", "dcl", "dclw", "dhel", "kcl_gaussian", "kcl_riesz", "mv_infonce_3"])
def test_tiled_half_precision_inputs_match_the_whole_block(name, dtype):
    a, b = _pair(n=21, d=16, dtype=torch.float32)
    a, b = a.to(dtype), b.to(dtype)
    full, ga, gb = _run(TERMS[name], a, b, None)
    tiled, ta, tb = _run(TERMS[name], a, b, 8)
    assert tiled.loss.dtype == torch.float32 and ta.dtype == dtype
    torch.testing.assert_close(tiled.loss, full.loss, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(ta).all() and torch.isfinite(tb).all()
    torch.testing.assert_close(ta.float(), ga.float(), rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("name", list(TERMS))
def test_tiled_is_finite_at_collapse(name):
    a = torch.ones(9, 4, dtype=torch.float32)
    parts, ga, gb = _run(TERMS[name], a, a.clone(), 4)
    assert torch.isfinite(parts.loss) and torch.isfinite(ga).all() and torch.isfinite(gb).all()


def test_tiled_backward_inside_autocast_recomputes_in_full_precision():
    a, b = _pair(n=17, d=8, dtype=torch.float32)
    a, b = a.requires_grad_(), b.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = infonce_loss_terms(a, b, gather_distributed=True, temperature=0.1, chunk_size=5).loss
        loss.backward()
    ref_a, ref_b = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    infonce_loss_terms(ref_a, ref_b, temperature=0.1).loss.backward()
    torch.testing.assert_close(a.grad, ref_a.grad, rtol=1e-5, atol=1e-6)


def _saved_bytes(fn, n, chunk, d=8):
    a, b = (torch.randn(n, d).requires_grad_() for _ in range(2))
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(a, b, chunk)
    return sum(saved.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["infonce", "dcl", "dclw", "dhel", "kcl_gaussian", "kcl_imq", "kcl_riesz",
                                  "mv_infonce_3", "mv_kcl_riesz_3"])
def test_tiled_keeps_memory_linear_in_n_for_backward(name):
    """The whole block keeps O(N²) for backward; the tiles keep O(N·D): doubling N doubles it."""
    small, large = _saved_bytes(TERMS[name], 256, 32), _saved_bytes(TERMS[name], 512, 32)
    assert large <= 2.2 * small
    assert _saved_bytes(TERMS[name], 512, None) > 8 * large  # the whole block's N² part dominates


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", True])
def test_bad_chunk_sizes_are_named_errors(bad):
    a, b = _pair()
    for fn in (lambda: infonce_loss_terms(a, b, gather_distributed=True, chunk_size=bad), lambda: kcl_loss_terms(a, b, gather_distributed=True, chunk_size=bad),
               lambda: mv_dhel_loss_terms([a, b], gather_distributed=True, chunk_size=bad), lambda: DHELLoss(chunk_size=bad),
               lambda: KCLLoss(chunk_size=bad), lambda: DCLLoss(chunk_size=bad), lambda: InfoNCELoss(chunk_size=bad)):
        with pytest.raises(ValueError, match="chunk_size must be None .* or an integer >= 1"):
            fn()


def _worker(rank, world, init_file, sizes, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        a_all, b_all = _pair(n=sum(sizes), seed=1)
        start = sum(sizes[:rank])
        results = {}
        for name, fn in TERMS.items():
            a = a_all[start : start + sizes[rank]].clone().requires_grad_()
            b = b_all[start : start + sizes[rank]].clone().requires_grad_()
            loss = fn(a, b, 2).loss
            loss.backward()
            results[name] = (loss.detach(), a.grad, b.grad)
        torch.save(results, f"{out_file}.{rank}")
        dist.barrier()  # every rank done with its collectives before any tears gloo down
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("sizes", [(5, 5), (3, 6)], ids=["equal", "uneven"])
def test_tiled_under_two_gloo_ranks_equals_one_process(sizes):
    ranks = run_on_two_ranks(_worker, sizes)
    a, b = _pair(n=sum(sizes), seed=1)
    for name, fn in TERMS.items():
        want, want_a, want_b = _run(fn, a, b, None)
        torch.testing.assert_close((ranks[0][name][0] + ranks[1][name][0]) / 2, want.loss, rtol=0, atol=1e-12)
        torch.testing.assert_close(torch.cat([r[name][1] for r in ranks]) / 2, want_a, rtol=0, atol=1e-12, msg=name)
        torch.testing.assert_close(torch.cat([r[name][2] for r in ranks]) / 2, want_b, rtol=0, atol=1e-12, msg=name)


solo_methods = pytest.importorskip("solo.methods")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["infonce", "dhel", "kcl", "dcl", "dclw"])
def test_methods_pass_loss_chunk_size_to_their_loss(name, monkeypatch):
    from torch.utils.data import DataLoader

    from tests.test_methods import CLASSES, FakeViews, base_cfg

    from solo_plugins.losses import _tiled

    tiled_calls = []
    rows_apply, lse_apply = _tiled._TiledRows.apply, _tiled._TiledLogSumExp.apply
    monkeypatch.setattr(_tiled._TiledRows, "apply", lambda *args: tiled_calls.append(args[1]) or rows_apply(*args))
    monkeypatch.setattr(_tiled._TiledLogSumExp, "apply", lambda *args: tiled_calls.append(args[0]) or lse_apply(*args))
    batch = next(iter(DataLoader(FakeViews(6), batch_size=6)))
    losses = {}
    for chunk in (None, 4):
        torch.manual_seed(0)
        model = CLASSES[name](base_cfg(name, batch_size=6, loss_chunk_size=chunk))
        assert model.loss_chunk_size == chunk
        logged = {}
        monkeypatch.setattr(model, "log_dict", lambda d, **kw: logged.update(d))
        model.training_step(batch, 0)
        losses[chunk] = logged[f"train_{name}_loss"]
    torch.testing.assert_close(losses[4], losses[None], rtol=1e-5, atol=1e-6)
    assert tiled_calls and set(tiled_calls) == {4}  # only the chunked model tiled its rows


@pytest.mark.parametrize("bad", [0, -1, 2.5, "big", True])
def test_loss_chunk_size_bad_values_are_config_errors(bad):
    from solo_plugins.methods.config import ConfigError
    from tests.test_methods import CLASSES, base_cfg

    with pytest.raises(ConfigError, match="method_kwargs.loss_chunk_size must be null .* or an integer >= 1"):
        CLASSES["dhel"](base_cfg("dhel", loss_chunk_size=bad))


@pytest.mark.parametrize("temperature", [0.01, 0.02])
def test_tiled_small_temperatures_take_the_log_sum_exp_path_and_match(temperature):
    """Below τ = 0.025 the tiles use torch.logsumexp (exp-sum-log could underflow)."""
    a, b = _pair(n=11, d=5)
    for fn in (lambda x, y, c: infonce_loss_terms(x, y, temperature=temperature, chunk_size=c),
               lambda x, y, c: dcl_loss_terms(x, y, temperature=temperature, chunk_size=c),
               lambda x, y, c: dhel_loss_terms(x, y, temperature=temperature, chunk_size=c)):
        full, ga, gb = _run(fn, a, b, None)
        tiled, ta, tb = _run(fn, a, b, 4)
        torch.testing.assert_close(tiled.loss, full.loss, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ta, ga, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(tb, gb, rtol=1e-10, atol=1e-12)
