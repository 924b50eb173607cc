"""The kit's example config, shipped in the package: what `init` writes and what a
command without `-c` uses. Locating it here imports nothing, so `init` stays light."""

from __future__ import annotations

from pathlib import Path

CONFIG = Path(__file__).resolve().parent / "config.yaml"
# A starter executor zuul.conf that fits the pod rendered from CONFIG (`init` writes it too).
ZUUL_CONF = Path(__file__).resolve().parent / "zuul.conf"
