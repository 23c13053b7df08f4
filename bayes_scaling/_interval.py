"""The default probability of every equal-tailed interval the package prints or returns (one constant, no
imports: the command line's ``--ci`` uses it too)."""

from __future__ import annotations

__all__ = ["CI_PROB"]

#: the default ``ci_prob`` of every summary, prediction table and ``--ci``: a 94% equal-tailed interval
CI_PROB = 0.94
