"""Reading TOML files (model configurations, law specs, sweep configurations) with one-line errors."""

from __future__ import annotations

import tomllib
from os import PathLike
from pathlib import Path
from typing import Any

from bayes_scaling.errors import ConfigError


def read_toml(path: str | PathLike, what: str = "model file") -> dict[str, Any]:
    """The parsed file; a :class:`ConfigError` naming ``what`` and the path when it is missing, unreadable, not
    UTF-8 text or not valid TOML."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text (expected TOML)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
