"""Laws: every formula written once (:mod:`.formulas`), the safe formula parser (:mod:`.expr`) and law specs
(:mod:`.spec`). ``bayes_scaling.laws.transfer(...)`` and the other named formulas are re-exported here."""

from bayes_scaling.laws.formulas import *  # noqa: F403
from bayes_scaling.laws.formulas import __all__ as _formulas

__all__ = list(_formulas)
