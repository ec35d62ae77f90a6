"""Shared test helpers: repository paths."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "deploy" / "samples"
CRD_PATH = REPO / "crds" / "azureeditionvms.azureedition.io.yaml"
