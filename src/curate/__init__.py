"""curate: data curation and rejection sampling for reasoning-model post-training."""

from curate.schema import Table, reason_codes, table
from curate.store import DatasetVersion, Manifest, Store, StoreError

__version__ = "0.1.0"

__all__ = ["DatasetVersion", "Manifest", "Store", "StoreError", "Table", "__version__", "reason_codes", "table"]
