"""``curate view REF``: a small local web page to read a version's samples (127.0.0.1 only).

Filter by reason, prompt, pass rate, length and verdict; read a whole trace with its flagged spans; put
the accepted and rejected samples of one prompt side by side. The standard library serves it
(``http.server``); the page (:mod:`curate.report.viewer_page`) is one HTML file with a little JavaScript
and keeps its filters in the URL, so a filtered view is a link. Nothing is written anywhere.

API (JSON unless said): ``/api/facets``; ``/api/samples?reason=&prompt=&status=&min_pass=&max_pass=&min_len=
&max_len=&limit=&offset=``; ``/api/sample/<id>`` (HTML); ``/api/compare?prompt=`` (HTML).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import polars as pl

from curate.errors import UsageError
from curate.report.traces import side_by_side_html, trace_html
from curate.store import Store

FIELDS = (
    "prompt_id",
    "checkpoint",
    "math_status",
    "math_extracted",
    "reference",
    "lang_target_share",
    "tokens_out",
    "finish_reason",
    "pass_rate",
)


@dataclass
class Samples:
    """One dataset version in memory, with each sample's prompt pass rate and length."""

    ref: str
    df: pl.DataFrame

    @classmethod
    def load(cls, store: Store, ref: str) -> Samples:
        dv = store.get(ref)
        df = dv.scan().collect()
        if "response" not in df.columns or "sample_id" not in df.columns:
            raise UsageError(
                f"{dv.manifest.ref} ({dv.manifest.kind}) has no samples to view: give a checked "
                f"version (sample_id, response, reject_reasons)"
            )
        if "reject_reasons" not in df.columns:
            df = df.with_columns(pl.lit([], pl.List(pl.String)).alias("reject_reasons"))
        if "accepted" not in df.columns:
            df = df.with_columns((pl.col("reject_reasons").list.len() == 0).alias("accepted"))
        df = df.with_columns(pl.col("reject_reasons").fill_null([]))
        length = pl.col("tokens_out") if "tokens_out" in df.columns else pl.col("response").str.len_chars()
        df = df.with_columns(length.cast(pl.Int64).alias("_length"))
        if "prompt_id" in df.columns and any(c in df.columns for c in ("math_score", "code_score")):
            from curate.recipes.select import pass_rates

            rates = pass_rates(df).select("prompt_id", "checkpoint", pl.col("pass_rate").alias("_pass"))
            if "checkpoint" in df.columns:
                df = df.join(rates, on=["prompt_id", "checkpoint"], how="left")
            else:
                df = df.join(rates.drop("checkpoint"), on="prompt_id", how="left")
        else:
            df = df.with_columns(pl.lit(None, pl.Float64).alias("_pass"))
        return cls(dv.manifest.ref, df.with_row_index("_row"))

    def facets(self) -> dict[str, Any]:
        reasons = self.df.select(pl.col("reject_reasons").explode().drop_nulls()).to_series().value_counts(sort=True)
        prompts = (
            self.df.group_by("prompt_id")
            .agg(pl.len().alias("n"), pl.col("accepted").sum().alias("ok"), pl.col("_pass").first())
            .sort("prompt_id")
        )
        return {
            "ref": self.ref,
            "rows": self.df.height,
            "accepted": int(self.df["accepted"].sum()),
            "reasons": [{"reason": r, "n": n} for r, n in reasons.iter_rows()],
            "prompts": [
                {"prompt_id": p, "n": n, "accepted": ok, "pass_rate": pr} for p, n, ok, pr in prompts.iter_rows()
            ],
            "length": [_as_int(self.df["_length"].min()), _as_int(self.df["_length"].max())],
        }

    def query(self, q: dict[str, str]) -> dict[str, Any]:
        df = self.df
        if q.get("reason"):
            df = df.filter(pl.col("reject_reasons").list.contains(q["reason"]))
        if q.get("prompt"):
            df = df.filter(pl.col("prompt_id") == q["prompt"])
        if q.get("status") in ("accepted", "rejected"):
            df = df.filter(pl.col("accepted") == (q["status"] == "accepted"))
        for key, col, op in (
            ("min_pass", "_pass", "ge"),
            ("max_pass", "_pass", "le"),
            ("min_len", "_length", "ge"),
            ("max_len", "_length", "le"),
        ):
            if q.get(key):
                try:
                    v = float(q[key])
                except ValueError as e:
                    raise UsageError(f"{key}={q[key]!r} is not a number") from e
                df = df.filter(getattr(pl.col(col), op)(v))
        total = df.height
        offset, limit = int(q.get("offset") or 0), min(int(q.get("limit") or 200), 1000)
        page = df.slice(offset, limit)
        rows = [
            {
                "sample_id": r["sample_id"],
                "prompt_id": r.get("prompt_id"),
                "accepted": bool(r["accepted"]),
                "reasons": list(r["reject_reasons"] or []),
                "pass_rate": r["_pass"],
                "length": r["_length"],
                "checkpoint": r.get("checkpoint"),
            }
            for r in page.iter_rows(named=True)
        ]
        return {"total": total, "offset": offset, "rows": rows}

    def _row(self, sample_id: str) -> dict[str, Any] | None:
        hit = self.df.filter(pl.col("sample_id") == sample_id)
        if hit.is_empty():
            return None
        row = hit.row(0, named=True)
        row["pass_rate"] = row.get("_pass")
        return row

    def sample_html(self, sample_id: str) -> str | None:
        row = self._row(sample_id)
        if row is None:
            return None
        prompt = f"<div class='prompt'><b>prompt</b> {_esc(str(row.get('prompt', '')))}</div>"
        return prompt + trace_html(row, open_=True, fields=FIELDS)

    def compare_html(self, prompt_id: str, reason: str = "", sample_id: str = "") -> str:
        """An accepted and a rejected sample of ``prompt_id``: the rejected one is ``sample_id`` when that is
        one, else the first carrying ``reason``, else the first rejected."""
        rows = self.df.filter(pl.col("prompt_id") == prompt_id)
        good = rows.filter(pl.col("accepted")).head(1).to_dicts()
        rejected = rows.filter(~pl.col("accepted"))
        order = [rejected.filter(pl.col("sample_id") == sample_id)]
        if reason:
            order.append(rejected.filter(pl.col("reject_reasons").list.contains(reason)))
        order.append(rejected)
        bad = next((f.head(1).to_dicts() for f in order if not f.is_empty()), [])
        if not good or not bad:
            have = "accepted" if good else "rejected" if bad else "no"
            return f"<p class='note'>prompt {_esc(prompt_id)} has only {have} samples: nothing to compare</p>"
        head = (
            f"<div class='compare-head'><span class='ok'>accepted</span> vs <span class='bad'>rejected</span>"
            f" · prompt {_esc(prompt_id)}</div>"
        )
        return head + side_by_side_html([good[0], bad[0]])


def _as_int(v: object) -> int:
    return int(v) if isinstance(v, (int, float)) else 0


def _esc(s: str) -> str:
    import html

    return html.escape(s)


def _handler(samples: Samples) -> type[BaseHTTPRequestHandler]:
    from curate.report.viewer_page import PAGE

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, code: int, body: str, ctype: str) -> None:
            data = body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", f"{ctype}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            url = urlparse(self.path)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                if url.path in ("/", "/index.html"):
                    self._send(200, PAGE.replace("__TITLE__", _esc(samples.ref)), "text/html")
                elif url.path == "/api/facets":
                    self._send(200, json.dumps(samples.facets()), "application/json")
                elif url.path == "/api/samples":
                    self._send(200, json.dumps(samples.query(q)), "application/json")
                elif url.path.startswith("/api/sample/"):
                    body = samples.sample_html(unquote(url.path.rsplit("/", 1)[1]))
                    self._send(200 if body else 404, body or "no such sample", "text/html")
                elif url.path == "/api/compare":
                    self._send(
                        200,
                        samples.compare_html(q.get("prompt", ""), q.get("reason", ""), q.get("sample", "")),
                        "text/html",
                    )
                else:
                    self._send(404, "not found", "text/plain")
            except UsageError as e:
                self._send(400, json.dumps({"error": str(e)}), "application/json")

    return Handler


def make_server(store: Store, ref: str, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``ref`` on 127.0.0.1 (port 0: any free port; ``server.server_address`` says which)."""
    samples = Samples.load(store, ref)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(samples))
    server.daemon_threads = True
    return server


@contextmanager
def serving(store: Store, ref: str, port: int = 0) -> Iterator[str]:
    """Serve in a background thread (tests, notebooks); yield the page's URL; shut down on exit."""
    server = make_server(store, ref, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


__all__ = ["Samples", "make_server", "serving"]
