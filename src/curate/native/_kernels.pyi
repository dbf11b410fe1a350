# Types of the compiled module built from _kernels.c (see curate.native). Buffers: numpy arrays.
from typing import Any

def hash_words(data: Any, offsets: Any, out_hashes: Any, out_counts: Any) -> tuple[int, list[tuple[int, int, int]]]: ...
def oph_bins(
    hashes: Any, counts: Any, num_perm: int, ngram: int, seed: int, out_sig: Any, out_n_shingles: Any, out_exact: Any
) -> None: ...
def line_stats(data: Any, offsets: Any, min_chars: int, out_longest: Any, out_total: Any, out_repeat: Any) -> None: ...
def ngram_repeat(data: Any, offsets: Any, n: int, out_frac: Any) -> None: ...
def clean_latin(data: Any, offsets: Any, out_data: Any, out_offsets: Any) -> None: ...
def junk_runs(data: Any, offsets: Any, min_run: int, blob_min: int, out_longest: Any) -> None: ...
def think_split(
    data: Any,
    offsets: Any,
    out_reasoning: Any,
    out_r_offsets: Any,
    out_answer: Any,
    out_a_offsets: Any,
    out_closed: Any,
) -> None: ...
def format_scan(
    data: Any,
    offsets: Any,
    out_open: Any,
    out_close: Any,
    out_starts_open: Any,
    out_answer_chars: Any,
    out_special: Any,
    out_control: Any,
) -> None: ...

VERSION: int

def split_segments(data: Any, offsets: Any, out_data: Any, out_offsets: Any, out_rows: Any) -> int: ...
def json_top_keys(data: Any, out_starts: Any, out_lens: Any) -> int: ...
