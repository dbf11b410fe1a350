"""Benchmark decontamination against the shipped evaluation sets and a user-added one."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

import curate
from curate.dedup import DecontamCheck, DecontamConfig, parse_benchmark
from curate.schema import check_decls

DATA = Path(curate.__file__).resolve().parent / "data"


def items(name: str, field: str) -> list[dict[str, object]]:
    p = DATA / "benchmarks" / name
    raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    return [json.loads(line) for line in raw.decode().splitlines()][:5]


@pytest.fixture(scope="module")
def check() -> DecontamCheck:
    return DecontamCheck()


CASES = [  # (file, text field, id field, code)
    ("math500.jsonl", "problem", "unique_id", "decontam.math500"),
    ("aime24.jsonl", "problem", "id", "decontam.aime24"),
    ("amc23.jsonl", "problem", "id", "decontam.amc23"),
    ("gsm8k_test.jsonl", "question", None, "decontam.gsm8k"),
    ("humaneval.jsonl.gz", "prompt", "task_id", "decontam.humaneval"),
]


@pytest.mark.parametrize(("name", "field", "id_field", "code"), CASES)
def test_contaminated_prompts_are_flagged(
    check: DecontamCheck, name: str, field: str, id_field: str | None, code: str
) -> None:
    its = items(name, field)
    texts = [
        str(its[0][field]),  # verbatim
        "Please solve the following problem carefully.\n\n" + str(its[1][field]) + "\nPut the answer in \\boxed{}.",
        str(its[2][field]).upper().replace(",", " ,"),  # case and punctuation changes
    ]
    out = check.run(pl.DataFrame({"prompt": texts, "response": ["x"] * 3}))
    assert out["reject_reasons"].to_list() == [[code]] * 3
    want_ids = [str(its[i][id_field]) if id_field else str(i) for i in range(3)]
    assert out["decontam_match_id"].to_list() == want_ids
    assert (out["decontam_overlap"] >= 0.5).all()


def test_training_prompts_are_clean(check: DecontamCheck) -> None:
    lines = (DATA / "prompts" / "gsm8k_train.jsonl").read_text().splitlines()[:400]
    prompts = [json.loads(line).get("prompt") or json.loads(line).get("question") for line in lines]
    out = check.run(pl.DataFrame({"prompt": prompts, "response": ["x"] * len(prompts)}))
    assert out.filter(pl.col("reject_reasons").list.len() > 0).height <= 2  # GSM8K train/test near-twins exist
    assert set(c for rs in out["reject_reasons"].to_list() for c in rs) <= set(check_decls()["decontam"].reasons)


def test_responses_only_when_asked(check: DecontamCheck) -> None:
    problem = str(items("math500.jsonl", "problem")[4]["problem"])
    df = pl.DataFrame({"prompt": ["Say something nice about the weather today please."], "response": [problem]})
    assert check.run(df)["reject_reasons"].to_list() == [[]]
    both = DecontamCheck(DecontamConfig(benchmarks=("math500",), columns=("prompt", "response")))
    assert both.run(df)["reject_reasons"].to_list() == [["decontam.math500"]]


def test_user_benchmark(tmp_path: Path) -> None:
    p = tmp_path / "mine.jsonl"
    rows = [
        {
            "qid": "m1",
            "text": "A secret evaluation question about seven purple elephants crossing a river "
            "at dawn with twelve baskets of apples.",
        }
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows))
    spec = f"mine={p}:text:qid"
    assert parse_benchmark(spec).id_field == "qid"
    c = DecontamCheck(DecontamConfig(benchmarks=(), extra=(spec,)))
    out = c.run(pl.DataFrame({"prompt": ["Q: " + rows[0]["text"], "unrelated prompt"]}))
    assert out["reject_reasons"].to_list() == [["decontam.custom"], []]
    assert out["decontam_benchmark"].to_list() == ["mine", None]
    assert out["decontam_match_id"].to_list() == ["m1", None]


def test_index_is_built_beside_the_caller_and_travels_built() -> None:
    """The benchmark index builds in a thread at construction; pickling (to a worker process) sends the
    built index, and a process forked mid-build (its thread left behind) builds its own."""
    import pickle
    from concurrent.futures import Future

    check = DecontamCheck()
    copy = pickle.loads(pickle.dumps(check))
    assert copy._pending is None and copy.index.items.height == check.index.items.height
    orphan = DecontamCheck()
    orphan._pending = Future()  # never completes, as in a child forked before the build ended
    orphan._pid = -1
    assert orphan.index.items.height == check.index.items.height
