"""Brute-force float64 references, written from the formulas with explicit loops.

Deliberately naive: no Gram matrices, no masks, no log-sum-exp tricks.
"""

import math

import torch


def _unit(z):
    return [row / row.norm() for row in z.double()]


def _dot(a, b):
    return (a * b).sum()


def _d2(a, b):
    return ((a - b) ** 2).sum()


def dhel(z1, z2, temperature, include_augs=True):
    x, y, n = _unit(z1), _unit(z2), z1.shape[0]
    total = 0
    for i in range(n):
        term = -_dot(x[i], y[i]) / temperature
        term = term + torch.log(sum(torch.exp(_dot(x[i], x[j]) / temperature) for j in range(n) if j != i))
        if include_augs:
            term = term + torch.log(sum(torch.exp(_dot(y[i], y[j]) / temperature) for j in range(n) if j != i))
        total = total + term
    return total / n


def kernel_value(name, d2, t):
    d = torch.sqrt(d2)
    if name == "gaussian":
        return torch.exp(-t * d2)
    if name == "log_align":
        return -torch.log(t * d2 + 1)
    if name == "log_uniform":
        return -0.5 * torch.log(t * d2 + 1)
    if name == "imq":
        return t / torch.sqrt(t**2 + d2)
    if name == "riesz":
        return d ** (-t) if t > 0 else -(d ** abs(t))
    raise KeyError(name)


def kcl_kernels(kernel, t):
    """KCL's (alignment, uniformity) kernels of d²."""
    if kernel == "log":
        return (lambda d2: kernel_value("log_align", d2, t)), (lambda d2: kernel_value("log_uniform", d2, t))
    if kernel == "gaussian_riesz":
        return (lambda d2: kernel_value("gaussian", d2, 2.0)), (lambda d2: kernel_value("riesz", d2, t))
    same = lambda d2: kernel_value(kernel, d2, t)  # noqa: E731
    return same, same


def kcl(z1, z2, kernel, t=None, gamma=16.0, s=None):
    t = s if t is None else t  # the package names the Riesz kernels' exponent s
    x, y, n = _unit(z1), _unit(z2), z1.shape[0]
    k_align, k_unif = kcl_kernels(kernel, t)
    align = sum(k_align(_d2(x[i], y[i])) for i in range(n)) / n
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    ex = sum(k_unif(_d2(x[i], x[j])) for i, j in pairs) / len(pairs)
    ey = sum(k_unif(_d2(y[i], y[j])) for i, j in pairs) / len(pairs)
    return -2 * align + gamma * (ex + ey)


def dcl(z1, z2, temperature, weight_sigma=None, weight_grad=False):
    x, y, n = _unit(z1), _unit(z2), z1.shape[0]
    if weight_sigma is None:
        w = [1.0] * n
    elif weight_grad:  # Yeh et al.'s reference code: the weights are differentiated
        e = [torch.exp(_dot(x[k], y[k]) / weight_sigma) for k in range(n)]
        w = [2 - e[i] / (sum(e) / n) for i in range(n)]
    else:
        e = [math.exp(float(_dot(x[k], y[k]).detach()) / weight_sigma) for k in range(n)]
        w = [2 - e[i] / (sum(e) / n) for i in range(n)]

    def one_view(a, b):
        total = 0
        for i in range(n):
            neg = sum(
                torch.exp(_dot(a[i], a[j]) / temperature) + torch.exp(_dot(a[i], b[j]) / temperature)
                for j in range(n)
                if j != i
            )
            total = total - w[i] * _dot(a[i], b[i]) / temperature + torch.log(neg)
        return total / n

    return (one_view(x, y) + one_view(y, x)) / 2


def infonce(z1, z2, temperature):
    u, n = _unit(z1) + _unit(z2), z1.shape[0]
    total = 0
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        denom = sum(torch.exp(_dot(u[a], u[b]) / temperature) for b in range(2 * n) if b != a)
        total = total - _dot(u[a], u[p]) / temperature + torch.log(denom)
    return total / (2 * n)


def mv_dhel(views, temperature):
    """The authors' MVDHEL: -log Σ_{v<w} e^{s_i^{vw}/τ} + Σ_v log Σ_{j≠i} e^{s(x_i^v, x_j^v)/τ}."""
    xs, n = [_unit(v) for v in views], views[0].shape[0]
    total = 0
    for i in range(n):
        pos = sum(torch.exp(_dot(xs[v][i], xs[w][i]) / temperature)
                  for v in range(len(xs)) for w in range(v + 1, len(xs)))
        neg = sum(torch.log(sum(torch.exp(_dot(x[i], x[j]) / temperature) for j in range(n) if j != i))
                  for x in xs)
        total = total - torch.log(pos) + neg
    return total / n


def mv_infonce(views, temperature):
    """The authors' MVINFONCE: -log(2 Σ_{v<w} e^{s_i^{vw}/τ}) + log Σ_v Σ_{b≠(v,i)} e^{s(x_i^v, z_b)/τ}."""
    xs, n = [_unit(v) for v in views], views[0].shape[0]
    everyone = [(v, j) for v in range(len(xs)) for j in range(n)]
    total = 0
    for i in range(n):
        pos = 2 * sum(torch.exp(_dot(xs[v][i], xs[w][i]) / temperature)
                      for v in range(len(xs)) for w in range(v + 1, len(xs)))
        neg = sum(torch.exp(_dot(xs[v][i], xs[w][j]) / temperature)
                  for v in range(len(xs)) for (w, j) in everyone if (w, j) != (v, i))
        total = total - torch.log(pos) + torch.log(neg)
    return total / n


def mv_kcl(views, kernel, t=None, gamma=16.0, s=None):
    t = s if t is None else t
    """-2 mean_{v<w} mean_i k(x_i^v, x_i^w) + γ (2/V) Σ_v mean_{i≠j} k(x_i^v, x_j^v)."""
    xs, n, n_views = [_unit(v) for v in views], views[0].shape[0], len(views)
    k_align, k_unif = kcl_kernels(kernel, t)
    view_pairs = [(v, w) for v in range(n_views) for w in range(v + 1, n_views)]
    align = sum(k_align(_d2(xs[v][i], xs[w][i])) for v, w in view_pairs for i in range(n)) / (n * len(view_pairs))
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    energy = sum(sum(k_unif(_d2(x[i], x[j])) for i, j in pairs) / len(pairs) for x in xs)
    return -2 * align + gamma * (2 / n_views) * energy
