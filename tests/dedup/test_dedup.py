"""Exact and near-duplicate detection: planted duplicates, keep rules, scopes, the index, the spill path."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from curate.checks.base import declared_columns
from curate.cli.dedup import dedup_command
from curate.dedup import (
    DedupCheck,
    DedupConfig,
    DedupIndex,
    IndexMismatch,
    IndexParams,
    dedup_frame,
    dedup_stream,
    optimal_bands,
    signatures,
)
from curate.dedup.minhash import jaccard
from curate.schema import check_decls

RNG = np.random.default_rng(7)
VOCAB = np.array([f"w{i}" for i in range(50_000)])


def doc(n: int = 300) -> np.ndarray:
    return VOCAB[RNG.integers(0, len(VOCAB), n)]


def mutate(words: np.ndarray, frac: float) -> np.ndarray:
    out = words.copy()
    idx = RNG.choice(len(out), max(1, int(len(out) * frac)), replace=False)
    out[idx] = VOCAB[RNG.integers(0, len(VOCAB), len(idx))]
    return out


def true_jaccard(a: str, b: str, n: int = 5) -> float:
    def sh(t: str) -> set[tuple[str, ...]]:
        w = t.lower().split()
        return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}

    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


@pytest.fixture(scope="module")
def planted() -> pl.DataFrame:
    """200 originals; for each: an exact copy (case/punctuation changed), a 1% variant, a 40% variant."""
    rows = []
    for i in range(200):
        base = doc()
        rows.append((f"o{i}", "orig", i, " ".join(base)))
        rows.append((f"e{i}", "exact", i, " ".join(base).upper() + " !!"))
        rows.append((f"n{i}", "near", i, " ".join(mutate(base, 0.01))))
        rows.append((f"d{i}", "distant", i, " ".join(mutate(base, 0.40))))
    return pl.DataFrame(rows, schema=["sample_id", "kind", "group", "response"], orient="row")


@pytest.mark.parametrize("scheme", ["oph", "perm"])
def test_planted_recall_and_distant_never_merged(planted: pl.DataFrame, scheme: str) -> None:
    out = dedup_frame(planted, DedupConfig(scheme=scheme))  # type: ignore[arg-type]
    assert out.height == planted.height
    kinds = out.group_by("kind").agg(pl.col("reject_reasons").list.len().gt(0).mean().alias("rej"))
    rej = dict(zip(kinds["kind"], kinds["rej"], strict=True))
    assert rej["orig"] == 0.0 and rej["distant"] == 0.0
    assert rej["exact"] == 1.0 and rej["near"] >= 0.98
    exact = out.filter(pl.col("kind") == "exact")
    assert exact["reject_reasons"].to_list() == [["dedup.exact"]] * exact.height
    assert (exact["dedup_kept_sample_id"] == exact["sample_id"].str.replace("e", "o")).all()
    near = out.filter((pl.col("kind") == "near") & pl.col("reject_reasons").list.len().gt(0))
    assert near["reject_reasons"].to_list() == [["dedup.near"]] * near.height
    assert set(out["dedup_cluster_size"].unique().to_list()) <= {1, 2, 3}


@pytest.mark.parametrize("frac", [0.0, 0.01, 0.05, 0.2, 0.4])
def test_signature_estimates_track_true_jaccard(frac: float) -> None:
    a = doc(2000)
    b = mutate(a, frac) if frac else a
    ta, tb = " ".join(a), " ".join(b)
    want = true_jaccard(ta, tb)
    for scheme in ("oph", "perm"):
        s = signatures([ta, tb], scheme=scheme, num_perm=256)  # type: ignore[arg-type]
        assert abs(float(jaccard(s[0], s[1])) - want) < 0.1, (scheme, frac)


def test_short_and_empty_texts() -> None:
    df = pl.DataFrame({"response": ["two words", "Two, words!", "", None, "other words"]})
    out = dedup_frame(df)
    assert out["reject_reasons"].to_list() == [[], ["dedup.exact"], [], ["dedup.exact"], []]


@pytest.mark.parametrize(("keep", "kept"), [("first", "a"), ("shortest", "b"), ("best_score", "c")])
def test_keep_rules(keep: str, kept: str) -> None:
    base = " ".join(doc(200))
    df = pl.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "response": [base + " tail words", base, base + " x"],
            "score": [0.1, 0.2, 0.9],
        }
    )
    cfg = DedupConfig(keep=keep, score_column="score" if keep == "best_score" else None)  # type: ignore[arg-type]
    out = dedup_frame(df, cfg)
    assert out["dedup_kept_sample_id"].to_list() == [kept] * 3
    assert [not r for r in out["reject_reasons"].to_list()] == [s == kept for s in "abc"]


def test_prefers_row_not_already_rejected() -> None:
    text = " ".join(doc(100))
    df = pl.DataFrame({"sample_id": ["a", "b"], "response": [text, text], "reject_reasons": [["math.wrong"], []]})
    out = dedup_frame(df)
    assert out["reject_reasons"].to_list() == [["math.wrong", "dedup.exact"], []]


def test_per_prompt_scope_keeps_same_response_across_prompts() -> None:
    text = " ".join(doc(100))
    df = pl.DataFrame({"prompt_id": ["p", "p", "q"], "response": [text, text, text]})
    assert dedup_frame(df, DedupConfig(scope="per-prompt"))["reject_reasons"].to_list() == [
        [],
        ["dedup.exact"],
        [],
    ]
    assert dedup_frame(df)["reject_reasons"].to_list() == [[], ["dedup.exact"], ["dedup.exact"]]


def test_check_declares_its_columns_and_codes(planted: pl.DataFrame) -> None:
    check = DedupCheck()
    assert (check.name, check.scope, check.cost) == ("dedup", "corpus", 50)
    out = check.run(planted.head(40))
    assert set(declared_columns("dedup")) <= set(out.columns)
    codes = {c for rs in out["reject_reasons"].to_list() for c in rs}
    assert codes and codes <= set(check_decls()["dedup"].reasons)


def test_optimal_bands_match_datasketch() -> None:
    from datasketch.lsh import _optimal_param

    for t, k in [(0.8, 128), (0.5, 128), (0.9, 256)]:
        assert optimal_bands(t, k) == _optimal_param(t, k, 0.5, 0.5)


def test_index_rejects_rows_of_published_versions(tmp_path: object, planted: pl.DataFrame) -> None:
    path = str(tmp_path)
    v1 = planted.filter(pl.col("kind") == "orig").head(50)
    cfg = DedupConfig(index_dir=path)
    idx = DedupIndex(path, cfg.index_params())
    from curate.dedup import sketch_frame

    sig, exact = sketch_frame(v1, cfg)
    assert idx.add("ds@v1", v1["sample_id"], sig, exact) == 50
    v2 = planted.filter(pl.col("group") < 60).filter(pl.col("kind") != "orig")  # copies of v1 rows + new
    out = DedupCheck(cfg).run(v2)
    seen = out.filter(pl.col("reject_reasons").list.contains("dedup.seen"))
    assert set(seen["kind"].unique()) <= {"exact", "near"}
    assert seen.filter(pl.col("kind") == "exact").height == 50
    assert seen.filter(pl.col("kind") == "near").height >= 48
    assert (seen["dedup_seen_in"] == "ds@v1").all()
    assert (seen["dedup_seen_sample_id"] == seen["sample_id"].str.replace(r"^[en]", "o")).all()
    with pytest.raises(IndexMismatch):
        DedupIndex(path, IndexParams(64, 5, "oph", 1, 8, 8))


def test_spill_path_agrees_with_memory(tmp_path: object, planted: pl.DataFrame) -> None:
    texts = planted["response"]
    res = dedup_stream(
        [texts.slice(i, 150) for i in range(0, len(texts), 150)],
        str(tmp_path),
        DedupConfig(),
        memory_limit="200MB",
    )
    mem = dedup_frame(planted)
    mem_dup = mem["reject_reasons"].list.len().gt(0).to_numpy()
    assert ((res.kept != np.arange(len(texts))) == mem_dup).mean() > 0.99
    assert res.counts()["dedup.exact"] == 200


def test_cli(tmp_path: object, planted: pl.DataFrame) -> None:
    from pathlib import Path

    d = Path(str(tmp_path))
    planted.head(80).with_columns(pl.lit("p").alias("prompt")).write_ndjson(d / "in.jsonl")
    app = typer.Typer()
    app.command("dedup")(dedup_command)
    app.command("other")(lambda: None)
    r = CliRunner().invoke(
        app,
        [
            "dedup",
            str(d / "in.jsonl"),
            "--out",
            str(d / "o.parquet"),
            "--threshold",
            "0.8",
            "--index-dir",
            str(d / "idx"),
            "--record-as",
            "x@v1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "dedup.exact" in r.output and "x@v1" in r.output
    out = pl.read_parquet(d / "o.parquet")
    assert out.height == 80 and out.filter(pl.col("reject_reasons").list.len() > 0).height == 40
    r = CliRunner().invoke(
        app,
        [
            "dedup",
            str(d / "in.jsonl"),
            "--out",
            str(d / "o2.parquet"),
            "--drop",
            "--index-dir",
            str(d / "idx"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert pl.read_parquet(d / "o2.parquet").height == 0  # everything was published in x@v1


def _bfs_components(n: int, edges: np.ndarray) -> np.ndarray:
    """The reference: breadth-first search from each unlabelled node in index order (components
    numbered by their lowest node, as scipy's connected_components numbers them)."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges.tolist():
        adj[u].append(v)
        adj[v].append(u)
    label = np.full(n, -1, dtype=np.int64)
    k = 0
    for s in range(n):
        if label[s] >= 0:
            continue
        label[s], todo = k, [s]
        while todo:
            for w in adj[todo.pop()]:
                if label[w] < 0:
                    label[w] = k
                    todo.append(w)
        k += 1
    return label


def test_components_match_breadth_first_search_and_scipy() -> None:
    """The union-find that replaced scipy's connected_components: the same labels on random graphs
    (self-loops, repeated edges, isolated nodes), on a long path given in shuffled order (the case that
    needs the most pointer jumping) and on a star."""
    from curate.dedup.lsh import components

    rng = np.random.default_rng(3)
    graphs = [(int(n), rng.integers(0, n, size=(int(m), 2))) for n, m in rng.integers(1, 80, size=(400, 2))]
    path = np.stack([np.arange(4999), np.arange(1, 5000)], axis=1)
    rng.shuffle(path)
    graphs += [(5000, path), (300, np.stack([np.full(299, 150), np.delete(np.arange(300), 150)], axis=1))]
    graphs += [(5, np.zeros((0, 2), dtype=np.int64)), (0, np.zeros((0, 2), dtype=np.int64))]
    try:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
    except ImportError:  # pragma: no cover - scipy comes with datasketch in the dev extra
        connected_components = None
    for n, edges in graphs:
        got = components(n, edges)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, _bfs_components(n, edges))
        if connected_components is not None and len(edges):
            g = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
            np.testing.assert_array_equal(got, connected_components(g, directed=False)[1])
