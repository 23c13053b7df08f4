"""Data: readers and validation of run tables (:mod:`.tables`), simulation (:mod:`.simulate`) and the bundled
data sets (:mod:`.datasets`, also ``bs.datasets``). Each name below is loaded on first use."""

from bayes_scaling._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["TransferData", "read_table"], "tables"),
    **dict.fromkeys(["read_finetune", "regime"], "finetune"),
    **dict.fromkeys(["simulate_transfer", "simulate_losses", "simulate_law", "TABLE1"], "simulate"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
