"""The check's output writer (``sink_frames``: Polars' streaming sink pulling the run's frames) against
the pyarrow writer it replaced: the same rows in the same order, the same Arrow schema, the table's tag
where ``schema_tag`` reads it; an error raised while frames are produced reaches the caller as itself;
no frames at all is still a readable, empty file of the table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from curate.checks.base import finalize
from curate.checks.streams import BackgroundWriter, group_rows, sink_frames
from curate.errors import CurateError
from curate.schema import schema_tag, table
from curate.testing.traces import make_traces


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    df = make_traces(3000, target_bytes=2048, seed=3).drop("defect")
    ids = pl.Series("sample_id", [f"s{i}" for i in range(df.height)])
    return finalize(df.with_columns(ids, prompt_id=pl.lit("p"), prompt=pl.lit("What is 6 x 7?")))


def test_same_rows_schema_and_tag_as_the_pyarrow_writer(tmp_path: Path, rows: pl.DataFrame) -> None:
    schema = table("checked_sample")
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    writer = BackgroundWriter(old, schema.to_arrow, schema.arrow_schema())
    for part in rows.iter_slices(700):
        writer.write(part)
    writer.close()
    sink_frames(rows.iter_slices(700), new, schema, row_group_rows=1024)
    assert_frame_equal(pl.read_parquet(new), pl.read_parquet(old))
    assert pq.read_schema(new).equals(pq.read_schema(old), check_metadata=False)
    assert schema_tag(new) == schema_tag(old) == schema.tag
    assert pq.ParquetFile(new).metadata.num_row_groups == 3  # 3,000 rows in groups of 1,024


def test_an_error_while_producing_frames_comes_out_as_itself(tmp_path: Path, rows: pl.DataFrame) -> None:
    class JudgeDown(CurateError):
        pass

    def frames() -> Iterator[pl.DataFrame]:
        yield rows.head(100)
        raise JudgeDown("the judge's server went away")

    with pytest.raises(JudgeDown, match="went away"):
        sink_frames(frames(), tmp_path / "out.parquet", table("checked_sample"), row_group_rows=1024)


def test_no_frames_is_an_empty_file_of_the_table(tmp_path: Path) -> None:
    schema = table("checked_sample")
    out = tmp_path / "empty.parquet"
    sink_frames(iter([]), out, schema, row_group_rows=1024)
    df = pl.read_parquet(out)
    assert df.height == 0 and tuple(df.columns) == schema.names
    assert schema_tag(out) == schema.tag


def test_group_rows_aims_at_32_mb_groups_within_bounds() -> None:
    assert group_rows(20_000, 160 << 20) == 4000  # 8 KB rows
    assert group_rows(1_000_000, 84_000_000) == 131_072  # tiny rows: capped
    assert group_rows(10, 1 << 30) == 1024  # huge rows: at least 1,024


_INTERRUPTED = """
import os, signal, sys, time
from pathlib import Path
import polars as pl
from curate.checks.base import finalize
from curate.checks.streams import sink_frames
from curate.schema import table
from curate.testing.traces import make_traces

df = make_traces(200, target_bytes=1024, seed=1).drop("defect")
ids = pl.Series("sample_id", [f"s{i}" for i in range(df.height)])
df = finalize(df.with_columns(ids, prompt_id=pl.lit("p"), prompt=pl.lit("q")))

def frames():
    for i in range(40):
        if i == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while Polars' sink holds the main thread
        time.sleep(0.01)
        yield df

try:
    sink_frames(frames(), Path(sys.argv[1]), table("checked_sample"), 1024)
    print("finished")
except KeyboardInterrupt:
    print("interrupted")
repeats = 0
for _ in range(20):  # a second KeyboardInterrupt would land here: in a caller's except or finally
    try:
        time.sleep(0.02)
    except KeyboardInterrupt:
        repeats += 1
print("repeats", repeats)
"""


def test_ctrl_c_inside_the_sink_is_one_keyboard_interrupt(tmp_path: Path) -> None:
    """Ctrl-C while the sink runs comes out as one ``KeyboardInterrupt`` when the sink returns, and no
    second one follows in the caller's cleanup. Seen without ``_one_interrupt`` (not on every run: it
    is a race): Polars raised it, then the interpreter raised the pending signal again inside the
    caller's ``except``. In a child process: the signal is real."""
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED, str(tmp_path / "out.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.stdout.split() == ["interrupted", "repeats", "0"], p.stdout + p.stderr
