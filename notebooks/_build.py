"""Write the inspection notebooks from the cell sources below (outputs empty, as they live in git).

    python notebooks/_build.py          # rewrite notebooks/*.ipynb
    python notebooks/_build.py --check  # exit 1 when a notebook differs from what this script writes

Edit here, not in Jupyter, so the notebooks stay reviewable as code and cannot drift from this file.
The notebooks call ``curate`` (``curate.testing.example_store``, ``curate.report.plots``) and define no
logic of their own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

PARAMS = """\
# Parameters (papermill-style: this cell is tagged "parameters").
# HOME: a store to inspect (e.g. "./curate-data" or the demo's work dir); None: $CURATE_HOME when it holds
#       datasets, else the small example store built in a temp dir (a few seconds, no model).
# REFS: override what was found there, e.g. {"checked_b": "rs_checked@3", "rs_sft_b": "rs@2"}.
HOME = None
REFS = {}"""

SETUP = """\
%matplotlib inline
import matplotlib.pyplot as plt  # noqa: F401  (one setup cell for every notebook)
import polars as pl
from IPython.display import HTML, display  # noqa: F401

from curate.report import plots, traces  # noqa: F401
from curate.testing.example_store import open_store

pl.Config.set_tbl_rows(20)
pl.Config.set_fmt_str_lengths(70)
store, refs = open_store(home=HOME)
refs.update(REFS)
con = store.connect()  # catalog.duckdb: a `datasets` table and one view per dataset name (latest version)
refs"""


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text)


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(text)


def params() -> nbformat.NotebookNode:
    cell = new_code_cell(PARAMS)
    cell.metadata["tags"] = ["parameters"]
    return cell


INSPECT = [
    md("""# Inspect samples

Open a dataset version through DuckDB and Polars, read a sample with its reasoning and its answer
apart, filter by reason code, and put an accepted and a rejected sample of one prompt side by side.

Set `CURATE_HOME` to inspect a real store; by default this notebook builds the example store
(40 GSM8K/MATH-500 prompts x 8 synthetic samples from two checkpoints, run through the real checks)."""),
    params(),
    code(SETUP),
    md("""## The catalog

Every published version is a row of `datasets`; each dataset name is also a view over its latest version."""),
    code("""con.sql("SELECT name, version, kind, rows, created_at, parents FROM datasets ORDER BY ALL").pl()"""),
    md("""## One version, two ways

A specific version is its Parquet parts: DuckDB reads them with `read_parquet`, Polars with `scan_parquet`
(`DatasetVersion.scan()`). The view `checked` would give the latest version instead."""),
    code("""dv = store.get(refs["checked_b"])
parts = [str(p) for p in dv.parts]
con.sql(f\"\"\"
    SELECT checkpoint, count(*) AS samples, avg(accepted::INT) AS accepted_share,
           avg(math_score) AS correct_share, median(tokens_out) AS median_tokens
    FROM read_parquet({parts}) GROUP BY checkpoint
\"\"\").pl()"""),
    code("""checked = dv.scan().collect()
checked.select("sample_id", "prompt_id", "accepted", "reject_reasons", "math_status", "lang_target_share",
               "tokens_out").head()"""),
    md("""## A sample, reasoning and answer apart

Split exactly as the checks split it: the reasoning is everything before the last `</think>`, the answer
everything after it (a response that never closes the block has no answer). The whole trace is there,
behind a collapsible block: nothing is clipped."""),
    code("""display(HTML(traces.trace_html(checked.filter(pl.col("accepted")).row(0, named=True), open_=True)))"""),
    md("""## Filter by reason code

`curate reasons` lists every code with its meaning. Pick one below (falls back to the most frequent reason
when the store has none of it). The spans behind a readability or language reason are highlighted."""),
    code("""funnel = plots.funnel_table(checked)
reason = "lang.mixed" if "lang.mixed" in funnel["reason"].to_list() else funnel["reason"][0]
hits = checked.filter(pl.col("reject_reasons").list.contains(reason))
print(f"{hits.height} of {checked.height} samples carry {reason}")
display(HTML(traces.trace_html(hits.row(0, named=True), open_=True)))"""),
    md("The same filter in SQL, over the same version's Parquet parts:"),
    code("""con.sql(f\"\"\"
    SELECT prompt_id, count(*) AS samples, list_sort(list_distinct(flatten(list(reject_reasons)))) AS all_reasons
    FROM read_parquet({parts}) WHERE list_contains(reject_reasons, '{reason}')
    GROUP BY prompt_id ORDER BY samples DESC LIMIT 10
\"\"\").pl()"""),
    md("""## Accepted and rejected, one prompt

The first prompt (by id) with both kinds of samples; pass `prompt_id=` to choose another."""),
    code("""good, bad = plots.contrasting_pair(checked)
print(good["prompt"])
display(HTML(traces.side_by_side_html([good, bad])))"""),
    md("""## Why a sample was not selected

Selection is the only step that drops rows; its decisions are published beside the dataset
(`<recipe>_selection`), one row per sample with `selected` and `select_reason`."""),
    code("""sel = store.get(refs["selection"]) if "selection" in refs else None  # none before a recipe has run
print(sel.manifest.ref, "decides for", sel.manifest.extra.get("for")) if sel else print("no selection decisions")
con.sql(f\"\"\"
    SELECT select_reason, count(*) AS samples FROM read_parquet({[str(p) for p in sel.parts]})
    GROUP BY ALL ORDER BY samples DESC
\"\"\").pl() if sel else None"""),
]

FUNNEL = [
    md("""# Funnel

How many samples each check rejected and why, how lengths differ between accepted and rejected samples,
how hard each prompt is (pass rate), and how consistent the reasoning's language is."""),
    params(),
    code(SETUP),
    code("""a = store.get(refs["checked_a"]).scan().collect()
b = store.get(refs["checked_b"]).scan().collect()
both = pl.concat([a, b], how="diagonal_relaxed")
plots.summary_by(both)"""),
    md("""## Rejections per reason

In SQL: one row per (sample, reason), grouped. A sample can carry several reasons, so the counts add up
to more than the rejected samples."""),
    code("""parts_b = [str(p) for p in store.get(refs["checked_b"]).parts]
con.sql(f\"\"\"
    SELECT reason, count(*) AS samples
    FROM (SELECT unnest(reject_reasons) AS reason FROM read_parquet({parts_b}))
    GROUP BY reason ORDER BY samples DESC
\"\"\").pl()"""),
    code("""fig, axes = plt.subplots(1, 2, figsize=(14, 5))
plots.funnel_bar(plots.funnel_table(a), ax=axes[0], title=f"{refs['checked_a']}: rejections per reason")
plots.funnel_bar(plots.funnel_table(b), ax=axes[1], title=f"{refs['checked_b']}: rejections per reason")
fig.tight_layout()"""),
    md("""## The staged funnel

R1's rejection sampling as stages: generated -> well-formed -> correct -> readable -> one language -> not a
duplicate -> selected. A sample leaves at the first stage whose reasons it carries; `selected` comes from the
selection decisions published beside the dataset when there are some."""),
    code("""sel = store.get(refs["selection"]).scan().collect() if "selection" in refs else None
stages = traces.stage_funnel(b, sel)
traces.stage_funnel_plot(stages, title=f"{refs['checked_b']}: rejection-sampling funnel")
stages"""),
    md("The manifest keeps the per-reason funnel, so it is there without reading the data:"),
    code("""dict(store.get(refs["checked_b"]).manifest.funnel)"""),
    md("## Lengths, accepted vs rejected"),
    code("""fig, axes = plt.subplots(1, 2, figsize=(14, 4), sharey=True)
plots.length_hist(a, ax=axes[0], title=refs["checked_a"])
plots.length_hist(b, ax=axes[1], title=refs["checked_b"])
fig.tight_layout()"""),
    md("""## Pass rate per prompt

Verifier-correct samples over decided samples (undecided ones, such as `math.gold_unparseable`, are not
counted as wrong). With n samples a prompt's pass rate is k/n, so each bin is centred on one k/n. Prompts
at 0 or 1 teach GRPO nothing; `rl_prompts` drops them."""),
    code("""from curate.recipes.select import pass_rates

rates = pass_rates(both)
plots.pass_rate_hist(rates)
rates.sort("pass_rate").head(10)"""),
    md("The RL prompt set keeps prompts by pass rate; its manifest records the histogram of what it kept:"),
    code("""rl = store.get(refs.get("rl_prompts") or refs["pass_rates"]).manifest
print(rl.ref, rl.rows, "rows;", {k: v for k, v in rl.funnel.items() if k.startswith("select")})
rl.extra.get("pass_rate_histogram")"""),
    md("""## Language consistency

`lang_target_share` is the share of identified words in the target language: R1's language-consistency
reward. Most samples sit at 1.0; the tail is the mixed-language reasoning that `lang.mixed` rejects."""),
    code("""plots.score_hist(both, "lang_target_share", title="language-consistency score")
both.group_by("checkpoint").agg(
    (pl.col("lang_target_share") < 1).mean().alias("share_below_1"),
    pl.col("lang_target_share").min().alias("min"),
).sort("checkpoint")"""),
    md("""## Examples per reason

Two samples for each reason, most frequent reason first, each in full with its flagged spans highlighted
(open a block to read it)."""),
    code("""display(HTML(traces.reason_grid_html(both, per_reason=2)))"""),
]

COMPARE = [
    md("""# Compare two versions

Two `checked` versions (here: one per checkpoint, `ckpt-a` weaker and `ckpt-b` stronger) and the SFT
datasets built from them: pass rates, lengths and funnels side by side. Change `A` and `B` to any two refs
(`NAME@VERSION`)."""),
    params(),
    code(SETUP),
    code("""A, B = refs["checked_a"], refs["checked_b"]
va, vb = store.get(A), store.get(B)
plots.manifests_frame([va, vb])"""),
    md("## Pass rates per checkpoint (SQL over both versions)"),
    code("""files = [str(p) for p in va.parts + vb.parts]
con.sql(f\"\"\"
    WITH per_prompt AS (
        SELECT checkpoint, prompt_id, avg(math_score) AS pass_rate, avg(accepted::INT) AS accept_rate
        FROM read_parquet({files}) GROUP BY ALL)
    SELECT checkpoint, count(*) AS prompts, avg(pass_rate) AS mean_pass_rate,
           count(*) FILTER (WHERE pass_rate = 0) AS all_wrong, count(*) FILTER (WHERE pass_rate = 1) AS all_right,
           avg(accept_rate) AS mean_accept_rate
    FROM per_prompt GROUP BY checkpoint ORDER BY checkpoint
\"\"\").pl()"""),
    code("""from curate.recipes.select import pass_rates

a, b = va.scan().collect(), vb.scan().collect()
plots.pass_rate_scatter(pass_rates(a), pass_rates(b), labels=(A, B));"""),
    md("## Lengths"),
    code("""plots.summary_by(pl.concat([a, b], how="diagonal_relaxed"))"""),
    code("""fig, axes = plt.subplots(1, 2, figsize=(14, 4), sharex=True, sharey=True)
plots.length_hist(a, ax=axes[0], title=A)
plots.length_hist(b, ax=axes[1], title=B)
fig.tight_layout()"""),
    md("## Funnels"),
    code("""table = plots.compare_funnels({A: a, B: b})
plots.compare_bar(table)
table"""),
    md("""## The datasets built from them

Each `rs_sft` version records its inputs (parents), its selection outcomes in the funnel, and length stats."""),
    code("""sft = [store.get(refs[k]) for k in ("rs_sft_a", "rs_sft_b") if k in refs]
display(plots.manifests_frame(sft))
pl.DataFrame([{"ref": v.manifest.ref, **{k: n for k, n in v.manifest.funnel.items() if k.startswith("select")},
               **{f"length_{k}": x for k, x in v.manifest.extra.get("length", {}).items()}} for v in sft])"""),
]

NOTEBOOKS = {"inspect_samples.ipynb": INSPECT, "funnel.ipynb": FUNNEL, "compare_versions.ipynb": COMPARE}


def build(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating gives byte-identical files
        cell["id"] = f"cell-{i:02d}"
    return nb


def render(cells: list[nbformat.NotebookNode]) -> str:
    return nbformat.writes(build(cells)) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name, cells in NOTEBOOKS.items():
        path, text = HERE / name, render(cells)
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale notebooks (run python notebooks/_build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
