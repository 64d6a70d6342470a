"""The DP-SGD fast path's fused step (issue 21.2) against explicit DP-SGD from ``torch.func`` per-sample gradients.

* ``noisy_grads`` (clipping coefficients scaled by ``1 / expected batch``, noise folded into the matrix
  products) equals ``scale * (sum_i clip(grad_i) + noise_scale * noise)`` for layers narrower and wider
  than their inputs, with and without bias, at several clipping bounds and scales;
* a whole ``_train_fast`` run equals a step-by-step reference DP-SGD (same Poisson sampling stream, same
  Gaussian noise stream, per-sample gradients from ``vmap(grad)``, explicit clipping, SGD with and without
  momentum).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.func import functional_call, grad, vmap

from modelshield.harden.dp import _FastDP, _train_fast

torch.set_num_threads(1)


def _net(seed: int, widths: tuple[int, ...], bias: bool) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(torch.nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _clipped_per_sample(net: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, max_norm: float) -> dict:
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss_one(p, x, t):
        return torch.nn.functional.cross_entropy(functional_call(net, p, (x[None],)), t[None])

    per = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, X, y)
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in per.values()))
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    return {k: (g * coef.view(-1, *([1] * (g.dim() - 1)))).sum(0) for k, g in per.items()}


@pytest.mark.parametrize("widths", [(7, 11, 3), (13, 5, 9, 2), (3, 40, 40, 4)])  # in < out and in > out layers
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("max_norm,scale,noise_scale", [(0.05, 1 / 16, 1.3), (1.0, 1.0, 0.0), (1e6, 0.5, 2.0)])
def test_noisy_grads_equal_explicit_clipping_plus_noise(widths, bias, max_norm, scale, noise_scale):
    net = _net(0, widths, bias)
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(24, widths[0], generator=gen)
    y = torch.randint(0, widths[-1], (24,), generator=gen)
    want = _clipped_per_sample(net, X, y, max_norm)
    noise = {id(p): torch.randn(p.shape, generator=gen) for p in net.parameters()}
    noise_copy = {k: v.clone() for k, v in noise.items()}
    with _FastDP(net) as fast:
        torch.nn.functional.cross_entropy(net(X), y, reduction="sum").backward()
        got = {id(p): g for p, g in fast.noisy_grads(len(X), max_norm, scale, noise, noise_scale)}
    assert all(p.grad is None for p in net.parameters())
    for name, p in net.named_parameters():
        expected = scale * (want[name] + noise_scale * noise_copy[id(p)])
        torch.testing.assert_close(got[id(p)], expected, rtol=1e-4, atol=1e-6)


def _reference_dp_sgd(net, X, y, *, q, steps, sigma, max_norm, lr, momentum, gen, rng):
    """Textbook DP-SGD: Poisson batch, per-sample clipping from vmap, one Gaussian draw per step."""
    params = [p for p in net.parameters()]
    sizes = [p.numel() for p in params]
    names = [k for k, _ in net.named_parameters()]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    n = len(X)
    for _ in range(steps):
        idx = np.sort(rng.choice(n, size=int(rng.binomial(n, q)), replace=False))
        noise = torch.randn(sum(sizes), generator=gen).split(sizes)
        clipped = _clipped_per_sample(net, X[idx], y[idx], max_norm) if len(idx) else {}
        for name, p, z in zip(names, params, noise):
            g = clipped.get(name, torch.zeros_like(p))
            p.grad = (g + sigma * max_norm * z.view(p.shape)) / (q * n)
        opt.step()
        opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("seed,max_norm,sigma", [(0, 1.0, 1.0), (1, 0.1, 0.7), (2, 5.0, 2.0)])
def test_train_fast_equals_reference_dp_sgd(momentum, seed, max_norm, sigma):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(200, 6, generator=g)
    y = torch.randint(0, 3, (200,), generator=g)
    fast_net, ref_net = _net(seed, (6, 16, 3), True), _net(seed, (6, 16, 3), True)
    kw = dict(q=0.1, steps=12, sigma=sigma, max_norm=max_norm)
    _train_fast(fast_net, X, y, **kw, opt=torch.optim.SGD(fast_net.parameters(), lr=0.1, momentum=momentum),
                gen=torch.Generator().manual_seed(seed + 10), rng=np.random.default_rng(seed))
    _reference_dp_sgd(ref_net, X, y, **kw, lr=0.1, momentum=momentum, gen=torch.Generator().manual_seed(seed + 10),
                      rng=np.random.default_rng(seed))
    for p, r in zip(fast_net.parameters(), ref_net.parameters()):
        torch.testing.assert_close(p, r, rtol=1e-4, atol=1e-5)
        assert p.grad is None  # no noisy gradient is left on the returned module
