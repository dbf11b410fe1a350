"""Row I/O shared by every step: reading JSONL/Parquet rows with quarantine (``rows``), one
fsync-correct atomic write and content hashing (``files``)."""
