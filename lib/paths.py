"""Where the project keeps its files: committed artefacts in data/, an ignored cache in data/cache/."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
#: small committed trained models (each under 5 MB), named by a hash of their configuration
MODELS_DIR = DATA_DIR / "models"
#: ignored cache (downloads, results stores, large intermediates); override with GRADCAM_BOOK_CACHE
CACHE_DIR = Path(os.environ.get("GRADCAM_BOOK_CACHE", DATA_DIR / "cache"))
