"""Where the project keeps its files: committed artefacts in data/, an ignored cache in data/cache/.

In a checkout, data/ lies beside lib/. An installed wheel (Colab) carries the same committed files
inside the package, as lib/bundled/, and keeps its cache in ~/.cache/gradcam-book.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
#: True in a checkout of the repository, False for an installed wheel
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "data").is_dir()
DATA_DIR = REPO_ROOT / "data" if IN_CHECKOUT else PACKAGE_DIR / "bundled"
#: small committed trained models (each under 5 MB), named by a hash of their configuration
MODELS_DIR = DATA_DIR / "models"
#: ignored cache (downloads, results stores, large intermediates); override with GRADCAM_BOOK_CACHE
CACHE_DIR = Path(
    os.environ.get(
        "GRADCAM_BOOK_CACHE",
        DATA_DIR / "cache" if IN_CHECKOUT else Path.home() / ".cache" / "gradcam-book",
    )
)
