import torch
from solo.losses import kcl_loss_func


def kcl_gaussian_reference(z1, z2, t, gamma):
    """KCL with the Gaussian kernel k(d^2) = exp(-t d^2), in float64 with explicit loops:
    -2 mean_i k(x_i, y_i) + gamma (mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j))."""
    x = [row / row.norm() for row in z1.double()]
    y = [row / row.norm() for row in z2.double()]
    n = len(x)

    def k(a, b):
        return torch.exp(-t * ((a - b) ** 2).sum())

    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    align = sum(k(x[i], y[i]) for i in range(n)) / n
    energy = sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in pairs) / len(pairs)
    return float(-2 * align + gamma * energy)


def test_kcl_loss():
    b, f = 32, 128
    z1 = torch.randn(b, f).requires_grad_()
    z2 = torch.randn(b, f).requires_grad_()

    loss = kcl_loss_func(z1, z2, kernel="gaussian", t=2.0, gamma=16.0)
    initial_loss = loss.item()
    assert loss != 0

    for _ in range(20):
        loss = kcl_loss_func(z1, z2, kernel="gaussian", t=2.0, gamma=16.0)
        loss.backward()

        z1.data.add_(-0.5 * z1.grad)
        z2.data.add_(-0.5 * z2.grad)

        z1.grad = z2.grad = None

    assert loss < initial_loss


def test_kcl_matches_its_formula():
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    for t, gamma in ((2.0, 16.0), (0.5, 4.0)):
        loss = kcl_loss_func(z1, z2, kernel="gaussian", t=t, gamma=gamma)
        assert abs(loss.item() - kcl_gaussian_reference(z1, z2, t, gamma)) < 1e-10


def test_kcl_riesz_is_finite_at_coincident_embeddings():
    z = torch.randn(1, 8).repeat(16, 1).requires_grad_()
    loss = kcl_loss_func(z, z.detach().clone(), kernel="riesz", t=1.0, gamma=1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
