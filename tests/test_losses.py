import math

import pytest
import torch

from solo_plugins.losses import (
    KERNELS,
    DCLLoss,
    DCLWLoss,
    DHELLoss,
    InfoNCELoss,
    KCLLoss,
    dcl_loss_func,
    dcl_loss_terms,
    dhel_loss_func,
    dhel_loss_terms,
    infonce_loss_func,
    infonce_loss_terms,
    kcl_loss_func,
    kcl_loss_terms,
)

from tests import reference_losses as ref

SIZES = [(2, 3), (3, 5), (16, 8), (20, 32)]

KCL_SETTINGS = [
    ("gaussian", 2.0, 16.0),
    ("gaussian", 0.5, 1.0),
    ("log", 1.0, 4.0),
    ("imq", 1.5, 2.0),
    ("riesz", -0.5, 3.0),
    ("riesz", -1.0, 1.0),
    ("gaussian_riesz", 1.0, 2.0),
    ("gaussian_riesz", -1.0, 1.0),
]


def kcl_kwargs(kernel, parameter, gamma):
    """KCL's settings with the kernel's parameter under its name: t (scale) or s (Riesz exponent)."""
    return {"kernel": kernel, "s" if "riesz" in kernel else "t": parameter, "gamma": gamma}

# (our function, reference, kwargs) for every loss and option.
CASES = (
    [(dhel_loss_func, ref.dhel, dict(temperature=t, include_augs=a)) for t in (0.3, 0.07, 0.02) for a in (True, False)]
    + [(kcl_loss_func, ref.kcl, kcl_kwargs(k, t, g)) for k, t, g in KCL_SETTINGS]
    + [(dcl_loss_func, ref.dcl, dict(temperature=t, weight_sigma=s)) for t in (0.1, 0.5) for s in (None, 0.5)]
    + [(dcl_loss_func, ref.dcl, dict(temperature=0.02, weight_sigma=0.5))]
    + [(infonce_loss_func, ref.infonce, dict(temperature=t)) for t in (0.2, 0.05, 0.02)]
)


def _ids(case):
    fn, _, kw = case
    return fn.__name__.replace("_loss_func", "") + "-" + "-".join(f"{v}" for v in kw.values())


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
@pytest.mark.parametrize("n,d", SIZES)
def test_value_and_gradient_match_float64_reference(case, n, d):
    fn, reference, kwargs = case
    gen = torch.Generator().manual_seed(n * 100 + d)
    z1 = torch.randn(n, d, generator=gen, dtype=torch.float64) * 3
    z2 = z1 + torch.randn(n, d, generator=gen, dtype=torch.float64)

    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    ours = fn(a1, a2, **kwargs)
    ours.backward()
    b1, b2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    expected = reference(b1, b2, **kwargs)
    expected.backward()

    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(a1.grad, b1.grad, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(a2.grad, b2.grad, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", CASES[::3], ids=[_ids(c) for c in CASES[::3]])
def test_float32_inputs_give_float32_close_to_reference(case):
    fn, reference, kwargs = case
    gen = torch.Generator().manual_seed(7)
    z1, z2 = torch.randn(32, 16, generator=gen), torch.randn(32, 16, generator=gen)
    ours = fn(z1, z2, **kwargs)
    assert ours.dtype == torch.float32
    expected = reference(z1.double(), z2.double(), **kwargs)
    assert ours.item() == pytest.approx(expected.item(), rel=2e-5, abs=1e-5)


def test_infonce_equals_solo_learn_simclr_loss():
    simclr = pytest.importorskip("solo.losses.simclr")
    gen = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(24, 16, generator=gen), torch.randn(24, 16, generator=gen)
    theirs = simclr.simclr_loss_func(torch.cat([z1, z2]), torch.arange(24).repeat(2), temperature=0.2)
    torch.testing.assert_close(infonce_loss_func(z1, z2, temperature=0.2), theirs, rtol=1e-5, atol=1e-6)


def _positive_term(z1, z2, temperature):
    """-mean_i s(x_i, y_i)/τ, written from the formula in float64."""
    x, y = ref._unit(z1), ref._unit(z2)
    return -sum(ref._dot(a, b) for a, b in zip(x, y)) / len(x) / temperature


def test_each_part_matches_the_brute_force_parts():
    """Alignment from its own formula, uniformity as the brute-force total minus it."""
    gen = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(7, 5, generator=gen, dtype=torch.float64), torch.randn(7, 5, generator=gen, dtype=torch.float64)
    cases = [
        (dhel_loss_terms(z1, z2, temperature=0.3), _positive_term(z1, z2, 0.3), ref.dhel(z1, z2, 0.3)),
        (dcl_loss_terms(z1, z2, temperature=0.2), _positive_term(z1, z2, 0.2), ref.dcl(z1, z2, 0.2)),
        (infonce_loss_terms(z1, z2, temperature=0.2), _positive_term(z1, z2, 0.2), ref.infonce(z1, z2, 0.2)),
    ]
    x, y = ref._unit(z1), ref._unit(z2)
    k_align = -2 * sum(ref.kernel_value("gaussian", ref._d2(a, b), 2.0) for a, b in zip(x, y)) / len(x)
    cases.append((kcl_loss_terms(z1, z2, kernel="gaussian", t=2.0, gamma=16.0), k_align, ref.kcl(z1, z2, "gaussian", 2.0, 16.0)))
    for parts, alignment, total in cases:
        torch.testing.assert_close(parts.alignment, alignment)
        torch.testing.assert_close(parts.uniformity, total - alignment)
    # KCL's alignment is -2 mean K_A: for identical views it is exactly -2.
    assert kcl_loss_terms(z1, z1).alignment.item() == pytest.approx(-2.0)


def test_modules_match_functions():
    gen = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(12, 8, generator=gen), torch.randn(12, 8, generator=gen)
    pairs = [
        (DHELLoss(temperature=0.2, include_augs=False), dhel_loss_func(z1, z2, temperature=0.2, include_augs=False)),
        (KCLLoss(kernel="imq", t=1.0, gamma=3.0), kcl_loss_func(z1, z2, kernel="imq", t=1.0, gamma=3.0)),
        (KCLLoss(kernel="riesz", s=-1.0, gamma=3.0), kcl_loss_func(z1, z2, kernel="riesz", s=-1.0, gamma=3.0)),
        (DCLLoss(temperature=0.3), dcl_loss_func(z1, z2, temperature=0.3)),
        (DCLWLoss(temperature=0.3, sigma=0.5), dcl_loss_func(z1, z2, temperature=0.3, weight_sigma=0.5)),
        (DCLWLoss(temperature=0.3, sigma=0.5, weight_grad=True),
         dcl_loss_func(z1, z2, temperature=0.3, weight_sigma=0.5, weight_grad=True)),
        (InfoNCELoss(temperature=0.1), infonce_loss_func(z1, z2, temperature=0.1)),
    ]
    for module, value in pairs:
        torch.testing.assert_close(module(z1, z2), value)


ALL_LOSSES = (
    [("dhel", lambda a, b, t: dhel_loss_func(a, b, temperature=t))]
    + [("dcl", lambda a, b, t: dcl_loss_func(a, b, temperature=t))]
    + [("dclw", lambda a, b, t: dcl_loss_func(a, b, temperature=t, weight_sigma=0.5))]
    + [("infonce", lambda a, b, t: infonce_loss_func(a, b, temperature=t))]
)


@pytest.mark.parametrize("name,fn", ALL_LOSSES, ids=[n for n, _ in ALL_LOSSES])
@pytest.mark.parametrize("temperature", [0.05, 0.01])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_finite_and_close_to_float32(name, fn, temperature, dtype):
    gen = torch.Generator().manual_seed(3)
    z1 = torch.randn(64, 128, generator=gen) * 4
    z2 = z1 + 3.0 * torch.randn(64, 128, generator=gen)
    low1, low2 = z1.to(dtype).requires_grad_(), z2.to(dtype).requires_grad_()
    loss = fn(low1, low2, temperature)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(low1.grad.float()).all()
    # Same (rounded) inputs in float32: the only difference left is the input rounding.
    full = fn(low1.detach().float(), low2.detach().float(), temperature)
    assert loss.item() == pytest.approx(full.item(), rel=1e-5, abs=1e-5)
    # And close to the unrounded float32 value.
    assert loss.item() == pytest.approx(fn(z1, z2, temperature).item(), rel=5e-2, abs=1e-2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_kcl_half_precision_inputs(dtype):
    gen = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(64, 128, generator=gen), torch.randn(64, 128, generator=gen)
    for kernel, t, gamma in KCL_SETTINGS:
        low = kcl_loss_func(z1.to(dtype), z2.to(dtype), **kcl_kwargs(kernel, t, gamma))
        full = kcl_loss_func(z1.to(dtype).float(), z2.to(dtype).float(), **kcl_kwargs(kernel, t, gamma))
        assert torch.isfinite(low) and low.item() == pytest.approx(full.item(), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("temperature", [0.0251, 0.02, 0.005])
def test_antipodal_negatives_do_not_underflow(temperature):
    # The worst case for the exp-sum-log path: every negative at similarity -1.
    z1 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    z2 = z1 * 2
    for fn, reference in ((dhel_loss_func, ref.dhel), (infonce_loss_func, ref.infonce), (dcl_loss_func, ref.dcl)):
        value = fn(z1, z2, temperature=temperature)
        assert torch.isfinite(value)
        assert value.item() == pytest.approx(reference(z1, z2, temperature=temperature).item(), rel=1e-5, abs=1e-4)


def test_losses_stay_float32_under_autocast():
    gen = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(32, 64, generator=gen), torch.randn(32, 64, generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = dhel_loss_func(z1, z2, temperature=0.05)
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, dhel_loss_func(z1, z2, temperature=0.05))


COLLAPSE_LOSSES = [(n, f) for n, f in ALL_LOSSES] + [
    (f"kcl-{k}-{t}", (lambda k, t, g: lambda a, b, _: kcl_loss_func(a, b, **kcl_kwargs(k, t, g)))(k, t, g))
    for k, t, g in KCL_SETTINGS
]


@pytest.mark.parametrize("name,fn", COLLAPSE_LOSSES, ids=[n for n, _ in COLLAPSE_LOSSES])
@pytest.mark.parametrize("pattern", ["two_rows", "all_rows", "views_equal"])
def test_coinciding_embeddings_give_finite_loss_and_gradients(name, fn, pattern):
    gen = torch.Generator().manual_seed(6)
    z1, z2 = torch.randn(8, 16, generator=gen), torch.randn(8, 16, generator=gen)
    if pattern == "two_rows":
        z1[1] = z1[0]
        z2[1] = z2[0]
    elif pattern == "all_rows":
        z1[:] = z1[0]
        z2[:] = z1[0]
    else:
        z2 = z1.clone()
    z1, z2 = z1.requires_grad_(), z2.requires_grad_()
    loss = fn(z1, z2, 0.1)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()


def test_riesz_floor_is_documented_bound():
    from solo_plugins.losses.kcl import RIESZ_EPS

    z = torch.ones(4, 8)
    # Complete collapse: every pair sits at the floor's lowest value, eps/2, so the energy of
    # each view is exactly (eps/2)^(-s/2).
    parts = kcl_loss_terms(z, z, kernel="gaussian_riesz", s=2.0, gamma=1.0)
    assert parts.uniformity.item() == pytest.approx(2 * (RIESZ_EPS / 2) ** (-1.0), rel=1e-4)


@pytest.mark.parametrize("kernel,s", [("gaussian_riesz", 1.0), ("gaussian_riesz", 2.0), ("riesz", -1.0),
                                      ("gaussian_riesz", -1.0)])
def test_nearly_collapsed_embeddings_get_a_separating_riesz_gradient(kernel, s):
    """Pairs closer than the floor still feel repulsion: a gradient step spreads them."""
    from solo_plugins.losses.kcl import RIESZ_EPS

    gen = torch.Generator().manual_seed(0)
    base = torch.randn(1, 16, generator=gen)
    z = (base + 2e-4 * torch.randn(6, 16, generator=gen)).requires_grad_()

    def spread(v):
        u = torch.nn.functional.normalize(v.detach(), dim=1)
        d2 = torch.cdist(u, u, compute_mode="donot_use_mm_for_euclid_dist").square()
        return d2[~torch.eye(6, dtype=torch.bool)]

    assert spread(z).max() < RIESZ_EPS  # every pair is below the floor
    loss = kcl_loss_terms(z, z.detach().clone(), kernel=kernel, s=s, gamma=1.0).uniformity
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0
    stepped = z.detach() - 1e-4 * grad / grad.norm()
    assert spread(stepped).mean() > spread(z).mean()


def test_smooth_floor_is_exact_above_eps_and_continuous_with_its_slope():
    from solo_plugins.losses.kcl import smooth_floor

    x = torch.tensor([0.0, 0.5e-6, 1e-6, 2e-6, 0.3], dtype=torch.float64, requires_grad=True)
    y = smooth_floor(x, 1e-6)
    (g,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(y[2:], x[2:].detach())
    torch.testing.assert_close(y[:2].detach(), torch.tensor([0.5e-6, 0.625e-6], dtype=torch.float64))
    torch.testing.assert_close(g, torch.tensor([0.0, 0.5, 1.0, 1.0, 1.0], dtype=torch.float64))


BAD_INPUTS = [
    (lambda: dhel_loss_func(torch.randn(4), torch.randn(4)), "2-D"),
    (lambda: dhel_loss_func(torch.randn(4, 3, 2), torch.randn(4, 3, 2)), "2-D"),
    (lambda: kcl_loss_func(torch.randn(4, 3), torch.randn(5, 3)), "same shape"),
    (lambda: dcl_loss_func(torch.randn(1, 3), torch.randn(1, 3)), "global batch of at least 2"),
    (lambda: infonce_loss_func(torch.randn(4, 3), torch.randn(4, 3), temperature=0), "temperature"),
    (lambda: dhel_loss_func(torch.randn(4, 3), torch.randn(4, 3), temperature=-0.1), "temperature"),
    (lambda: dcl_loss_func(torch.randn(4, 3), torch.randn(4, 3), weight_sigma=0.0), "weight_sigma"),
    (lambda: kcl_loss_func(torch.randn(4, 3), torch.randn(4, 3), kernel="laplace"), "gaussian, log, imq, riesz"),
    (lambda: kcl_loss_func(torch.randn(4, 3), torch.randn(4, 3), gamma=-1.0), "gamma"),
    (lambda: kcl_loss_func(torch.randn(4, 3), torch.randn(4, 3), t=0.0), r"t \(the scale of kernel='gaussian'\) must be > 0"),
    (lambda: kcl_loss_func(torch.randn(4, 3), torch.randn(4, 3), kernel="riesz", s=0.0), "non-zero"),
    (lambda: kcl_loss_func(torch.randn(4, 3), torch.randn(4, 3), kernel="riesz", s=1.0),
     r"s > 0 .* no lower bound.*s < 0.*gaussian_riesz"),
    (lambda: KCLLoss(kernel="riesz", s=2.0), "no lower bound"),
    (lambda: kcl_loss_func(torch.randn(4, 3), torch.randn(4, 3), kernel="riesz"), "needs s, the Riesz exponent"),
    (lambda: kcl_loss_func(torch.randn(4, 3), torch.randn(4, 3), kernel="gaussian", s=1.0), "takes t"),
    (lambda: DCLWLoss(sigma=0.0), "sigma"),
    (lambda: DHELLoss(temperature=0), "temperature"),
    (lambda: KCLLoss(kernel="cosine"), "kernel must be one of"),
    (lambda: DCLLoss(weight_sigma=-1), "weight_sigma"),
]


@pytest.mark.parametrize("call,message", BAD_INPUTS)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_kernels_constant_lists_every_kernel():
    assert set(KERNELS) == {"gaussian", "log", "imq", "riesz", "gaussian_riesz"}
    for kernel in KERNELS:
        parameter = {"s": -1.0} if "riesz" in kernel else {}
        assert math.isfinite(kcl_loss_func(torch.randn(5, 4), torch.randn(5, 4), kernel=kernel, **parameter).item())


@pytest.mark.parametrize("weight_grad", [False, True])
def test_dclw_weight_gradient_option_against_the_float64_reference(weight_grad):
    gen = torch.Generator().manual_seed(3)
    z1 = torch.randn(6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    ours = dcl_loss_func(z1, z2, temperature=0.3, weight_sigma=0.5, weight_grad=weight_grad)
    expected = ref.dcl(z1, z2, 0.3, 0.5, weight_grad=weight_grad)
    torch.testing.assert_close(ours, expected)
    g_ours = torch.autograd.grad(ours, (z1, z2))
    g_ref = torch.autograd.grad(expected, (z1, z2))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


def test_dclw_weight_gradient_changes_the_gradient_not_the_value():
    gen = torch.Generator().manual_seed(4)
    z1 = torch.randn(6, 5, generator=gen, requires_grad=True)
    z2 = torch.randn(6, 5, generator=gen)
    a = dcl_loss_func(z1, z2, temperature=0.2, weight_sigma=0.5, weight_grad=False)
    b = dcl_loss_func(z1, z2, temperature=0.2, weight_sigma=0.5, weight_grad=True)
    torch.testing.assert_close(a, b)
    (ga,), (gb,) = torch.autograd.grad(a, z1), torch.autograd.grad(b, z1)
    assert (ga - gb).abs().max() > 1e-4


# ------------------------------------------------------------------------- the 0.4 API


POSITIONAL_CALLS = [
    lambda z: dhel_loss_func(z, z, 0.3),
    lambda z: dhel_loss_terms(z, z, 0.3),
    lambda z: infonce_loss_func(z, z, 0.2),
    lambda z: dcl_loss_func(z, z, 0.1),
    lambda z: dcl_loss_terms(z, z, 0.1, 0.5),
    lambda z: kcl_loss_func(z, z, "gaussian"),
    lambda z: kcl_loss_terms(z, z, "gaussian", 2.0, 16.0),
    lambda z: DHELLoss(0.3),
    lambda z: KCLLoss("gaussian"),
    lambda z: DCLLoss(0.1),
    lambda z: DCLWLoss(0.1),
    lambda z: InfoNCELoss(0.2),
]


@pytest.mark.parametrize("call", POSITIONAL_CALLS)
def test_options_after_the_views_are_keyword_only(call):
    """0.3 accepted dhel_loss_func(z1, z2, 0.3): a swapped option passed silently."""
    with pytest.raises(TypeError):
        call(torch.randn(4, 3))


def test_renamed_forms_still_work_for_one_release_with_a_future_warning():
    gen = torch.Generator().manual_seed(7)
    z1, z2 = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    with pytest.warns(FutureWarning, match=r"renamed s .* pass s=-1.0"):
        old = kcl_loss_func(z1, z2, kernel="riesz", t=-1.0)
    torch.testing.assert_close(old, kcl_loss_func(z1, z2, kernel="riesz", s=-1.0))
    with pytest.warns(FutureWarning, match=r"use DCLWLoss\(sigma=0.5\)"):
        old = DCLLoss(temperature=0.2, weight_sigma=0.5)
    torch.testing.assert_close(old(z1, z2), DCLWLoss(temperature=0.2, sigma=0.5)(z1, z2))


def test_riesz_with_a_positive_exponent_would_have_no_lower_bound():
    """Why kernel='riesz' with s > 0 is refused: its alignment -2 d^(-s) falls without limit as
    a positive pair closes (measured through the float64 reference, which 0.3 computed)."""
    z1 = torch.randn(8, 4, dtype=torch.float64)
    values = []
    for distance in (1e-1, 1e-2, 1e-3):
        z2 = z1 / z1.norm(dim=1, keepdim=True) + distance * torch.nn.functional.normalize(torch.randn(8, 4, dtype=torch.float64), dim=1)
        values.append(float(ref.kcl(z1, z2, "riesz", t=1.0, gamma=1.0)))
    assert values[0] > values[1] > values[2] and values[2] < -1000
    for distance in (1e-1, 1e-3):  # s < 0 stays bounded: -d^(-s) = -d^|s| >= -2^|s|
        z2 = z1 + distance * torch.randn(8, 4, dtype=torch.float64)
        assert kcl_loss_func(z1, z2, kernel="riesz", s=-1.0, gamma=1.0).item() > -10
