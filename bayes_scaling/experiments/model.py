"""A tiny character-level transformer language model and Adam, in plain JAX (no optax, no flax).

Pre-LN decoder: token + learned position embeddings; per layer ``x += Attn(LN(x))``, ``x += MLP(LN(x))``
(causal multi-head attention, GELU MLP of width 4 d); final LN; output logits tied to the token embedding.
``N`` is the **non-embedding** parameter count (Kaplan et al. 2020): everything but the token and position
embeddings, i.e. ``n_layers * (12 d**2 + 13 d) + 2 d``.

>>> spec = ModelSpec(d_model=16, n_layers=1)
>>> spec.n_non_embedding
3312
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ModelSpec", "init_params", "count_non_embedding", "make_functions", "adam_init"]


@dataclass(frozen=True)
class ModelSpec:
    """Architecture: width ``d_model``, ``n_layers``, heads of width ``head_dim`` (at least one head)."""

    d_model: int
    n_layers: int
    context: int = 64
    vocab: int = 128
    head_dim: int = 16

    @property
    def n_heads(self) -> int:
        return max(1, self.d_model // self.head_dim)

    @property
    def n_non_embedding(self) -> int:
        """Exact non-embedding parameter count: ``n_layers * (12 d**2 + 13 d) + 2 d``."""
        d = self.d_model
        return self.n_layers * (12 * d * d + 13 * d) + 2 * d

    @property
    def n_embedding(self) -> int:
        return (self.vocab + self.context) * self.d_model

    @property
    def name(self) -> str:
        return f"d{self.d_model}L{self.n_layers}"


def init_params(spec: ModelSpec, seed: int) -> dict:
    """GPT-2-style initialisation (normal 0.02; residual projections scaled by 1/sqrt(2 n_layers))."""
    d, L = spec.d_model, spec.n_layers
    key = jax.random.PRNGKey(seed)
    keys = iter(jax.random.split(key, 2 + 4 * L))
    std, res_std = 0.02, 0.02 / math.sqrt(2 * L)

    def normal(shape, s):
        return (s * jax.random.normal(next(keys), shape)).astype(jnp.float32)

    blocks = []
    for _ in range(L):
        blocks.append({
            "ln1_g": jnp.ones(d), "ln1_b": jnp.zeros(d),
            "qkv_w": normal((d, 3 * d), std), "qkv_b": jnp.zeros(3 * d),
            "proj_w": normal((d, d), res_std), "proj_b": jnp.zeros(d),
            "ln2_g": jnp.ones(d), "ln2_b": jnp.zeros(d),
            "fc_w": normal((d, 4 * d), std), "fc_b": jnp.zeros(4 * d),
            "out_w": normal((4 * d, d), res_std), "out_b": jnp.zeros(d),
        })
    return {"tok": normal((spec.vocab, d), std), "pos": normal((spec.context, d), std),
            "blocks": blocks, "lnf_g": jnp.ones(d), "lnf_b": jnp.zeros(d)}


def count_non_embedding(params: dict) -> int:
    """Parameters outside the token and position embeddings, counted from the arrays themselves."""
    leaves = jax.tree_util.tree_leaves({k: v for k, v in params.items() if k not in ("tok", "pos")})
    return int(sum(np.prod(x.shape) for x in leaves))


def _layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps) * g + b


def _forward(spec: ModelSpec, params: dict, tokens):
    """Logits ``(batch, T, vocab)`` of ``tokens`` ``(batch, T)``, ``T <= context``."""
    B, T = tokens.shape
    H, d = spec.n_heads, spec.d_model
    hd = d // H
    x = params["tok"][tokens] + params["pos"][:T]
    mask = jnp.tril(jnp.ones((T, T), dtype=bool))
    for blk in params["blocks"]:
        h = _layer_norm(x, blk["ln1_g"], blk["ln1_b"])
        qkv = h @ blk["qkv_w"] + blk["qkv_b"]
        q, k, v = jnp.split(qkv, 3, axis=-1)
        q, k, v = (t.reshape(B, T, H, hd).transpose(0, 2, 1, 3) for t in (q, k, v))
        att = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(hd)
        att = jax.nn.softmax(jnp.where(mask, att, -1e9), axis=-1)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, d)
        x = x + y @ blk["proj_w"] + blk["proj_b"]
        h = _layer_norm(x, blk["ln2_g"], blk["ln2_b"])
        x = x + jax.nn.gelu(h @ blk["fc_w"] + blk["fc_b"]) @ blk["out_w"] + blk["out_b"]
    x = _layer_norm(x, params["lnf_g"], params["lnf_b"])
    return x @ params["tok"].T


def _loss(spec: ModelSpec, params: dict, windows):
    """Mean cross-entropy (nats per character) of predicting ``windows[:, 1:]`` from ``windows[:, :-1]``."""
    logits = _forward(spec, params, windows[:, :-1])
    logp = jax.nn.log_softmax(logits, axis=-1)
    target = windows[:, 1:]
    return -jnp.take_along_axis(logp, target[..., None], axis=-1).mean()


def adam_init(params: dict) -> dict:
    """Adam state: step count and first/second moments (zeros like ``params``)."""
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return {"t": jnp.zeros((), jnp.int32), "m": zeros, "v": jax.tree_util.tree_map(jnp.zeros_like, params)}


@cache
def make_functions(spec: ModelSpec, b1: float = 0.9, b2: float = 0.95, eps: float = 1e-8, clip: float = 1.0):
    """Jitted ``(train_step, evaluate)`` for ``spec`` (cached: one compilation per architecture).

    ``train_step(params, opt, windows, lr) -> (params, opt, loss)``: Adam (bias-corrected) after clipping the
    gradient's global norm to ``clip``. ``evaluate(params, windows) -> loss`` (nats per character).
    """

    def train_step(params, opt, windows, lr):
        loss, grads = jax.value_and_grad(lambda p: _loss(spec, p, windows))(params)
        gnorm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
        scale = jnp.minimum(1.0, clip / (gnorm + 1e-12))
        grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
        t = opt["t"] + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, opt["m"], grads)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, opt["v"], grads)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        params = jax.tree_util.tree_map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps),
                                        params, m, v)
        return params, {"t": t, "m": m, "v": v}, loss

    def evaluate(params, windows):
        return _loss(spec, params, windows)

    return jax.jit(train_step), jax.jit(evaluate)
