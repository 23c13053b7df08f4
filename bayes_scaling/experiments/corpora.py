"""Corpora of the measured-transfer experiment: built from files every Python installation has.

- ``python`` (the target): the ``*.py`` files of the interpreter's standard library
  (``sysconfig.get_paths()["stdlib"]``), without ``test``/``tests``/``idle_test`` directories and
  ``site-packages``. Licence: PSF-2.0.
- ``prose`` (English): the text of Python's documentation topics, the string values of
  ``pydoc_data/topics.py`` (one "file" per topic). Licence: PSF-2.0. (It contains some code examples.)
- ``c`` (non-Python code): the C headers ``*.h`` under ``sysconfig.get_paths()["include"]``. Licence: PSF-2.0.

Text is mapped to ASCII (each non-ASCII character becomes ``?``; the count is recorded), so one token is one
character and data sizes are counted in **characters**. Held-out text is split **by file** with a fixed seed:
a file's characters are either all training text or all held-out text. Every corpus records its provenance,
licence, size (characters), number of files, replaced characters and the sha256 of its concatenated text.

>>> corpus = load_corpus("c")                        # doctest: +SKIP
>>> corpus.n_chars["train"] > corpus.n_chars["val"]  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayes_scaling.errors import DataError

__all__ = ["CORPORA", "VOCAB_SIZE", "Corpus", "load_corpus", "corpus_files", "encode"]

CORPORA = ("python", "prose", "c")
VOCAB_SIZE = 128  # ASCII
EXCLUDED_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
LICENCE = "PSF-2.0 (Python Software Foundation License, the CPython distribution's licence)"


def encode(text: str) -> tuple[np.ndarray, int]:
    """ASCII codes of ``text`` (``uint8``, < 128) and the number of non-ASCII characters replaced by ``?``."""
    raw = text.encode("ascii", errors="replace")
    return np.frombuffer(raw, dtype=np.uint8).copy(), sum(1 for ch in text if ord(ch) > 127)


def corpus_files(name: str) -> tuple[list[tuple[str, str]], str]:
    """``([(file name, text), ...] sorted by name, provenance)`` of corpus ``name``."""
    if name == "python":
        root = Path(sysconfig.get_paths()["stdlib"])
        files = sorted(p for p in root.rglob("*.py")
                       if not EXCLUDED_DIRS.intersection(p.relative_to(root).parts[:-1]))
        out = [(str(p.relative_to(root)), p.read_text(encoding="utf-8", errors="replace")) for p in files]
        prov = f"*.py under sysconfig stdlib {root} (excluding {', '.join(sorted(EXCLUDED_DIRS))} directories)"
    elif name == "prose":
        try:
            from pydoc_data.topics import topics
        except ImportError as exc:  # some distributions package it separately
            raise DataError("corpus 'prose' needs pydoc_data.topics (Python's documentation topics), "
                            f"which this Python lacks: {exc}") from exc
        import pydoc_data.topics as mod

        out = sorted((str(k), str(v)) for k, v in topics.items())
        prov = f"string values of pydoc_data.topics.topics ({mod.__file__}): Python's documentation topics"
    elif name == "c":
        root = Path(sysconfig.get_paths()["include"])
        files = sorted(root.rglob("*.h"))
        out = [(str(p.relative_to(root)), p.read_text(encoding="utf-8", errors="replace")) for p in files]
        prov = f"*.h under sysconfig include {root}: CPython's C headers"
    else:
        raise ValueError(f"corpus {name!r}: expected one of {', '.join(CORPORA)}")
    if not out:
        raise DataError(f"corpus {name!r} is empty ({prov}): nothing to train on")
    return out, prov


@dataclass
class Corpus:
    """A corpus split by file: ``splits[name]`` is the concatenated ASCII codes of that split's files
    (files in a seeded random order, separated by a blank line)."""

    name: str
    splits: dict[str, np.ndarray]
    files: dict[str, list[str]]
    provenance: str
    sha256: str
    n_chars_total: int
    n_replaced: int
    meta: dict = field(default_factory=dict)

    @property
    def n_chars(self) -> dict[str, int]:
        return {k: int(v.size) for k, v in self.splits.items()}

    def card(self) -> dict:
        """Provenance, licence, sizes (characters), files per split and sha256 (for data cards)."""
        return {"name": self.name, "provenance": self.provenance, "licence": LICENCE,
                "sha256_of_sorted_concatenation": self.sha256, "n_chars": self.n_chars_total,
                "n_files": sum(len(v) for v in self.files.values()),
                "n_non_ascii_replaced": self.n_replaced,
                "split_chars": self.n_chars, "split_files": {k: len(v) for k, v in self.files.items()},
                **self.meta}


def load_corpus(name: str, *, heldout: dict[str, float] | None = None, seed: int = 0) -> Corpus:
    """Load corpus ``name`` and split it by file: ``heldout`` maps split names to fractions of the files
    (default ``{"val": 0.05, "test": 0.05}``; the rest is ``"train"``); at least one file per held-out split.
    """
    heldout = {"val": 0.05, "test": 0.05} if heldout is None else dict(heldout)
    files, prov = corpus_files(name)
    digest = hashlib.sha256()
    encoded, replaced = [], 0
    for fname, text in files:
        digest.update(fname.encode() + b"\0" + text.encode("utf-8", errors="replace") + b"\0")
        codes, n_rep = encode(text)
        encoded.append(codes)
        replaced += n_rep
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    counts = {k: max(1, round(f * len(files))) for k, f in heldout.items()}
    if sum(counts.values()) >= len(files):
        raise DataError(f"corpus {name!r} has {len(files)} files: too few for held-out splits {counts}")
    splits, names, start = {}, {}, 0
    sep = np.frombuffer(b"\n\n", dtype=np.uint8)
    for split, n in [*counts.items(), ("train", len(files) - sum(counts.values()))]:
        idx = order[start:start + n]
        start += n
        names[split] = [files[i][0] for i in idx]
        parts = []
        for i in idx:
            parts += [encoded[i], sep]
        splits[split] = np.concatenate(parts)
    return Corpus(name=name, splits=splits, files=names, provenance=prov, sha256=digest.hexdigest(),
                  n_chars_total=int(sum(e.size for e in encoded)), n_replaced=replaced,
                  meta={"split_seed": seed, "heldout_fractions": heldout})
