"""A dataset version as a Hugging Face dataset folder: ``data/*.parquet`` + a ``README.md`` dataset card.

``datasets.load_dataset(DIR)`` reads exactly that version (the card's YAML ``configs`` names the files,
so nothing else in the folder is picked up). The card tells a reader what they hold: the funnel with
each reason's meaning and its share of the input, the lineage back to the first inputs, the source
checkpoints and sampling parameters, the config and the licenses recorded along the way. The folder is
written beside ``--out`` and renamed into place; a folder left by a killed export is swept next time.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from curate.errors import UsageError
from curate.io.files import TMP_MARK, sweep_tmp_beside

if TYPE_CHECKING:
    from curate.store import DatasetVersion, Store


def lineage(store: Store, dv: DatasetVersion) -> Iterator[tuple[int, str, str]]:
    """(depth, ref, description) for every ancestor, depth-first; missing ones are said to be missing."""
    seen: set[str] = set()

    def walk(refs: tuple[str, ...], depth: int) -> Iterator[tuple[int, str, str]]:
        for ref in refs:
            if ref in seen:
                continue
            seen.add(ref)
            try:
                parent = store.get(ref)
            except Exception:  # noqa: BLE001 - a file path or a removed version: named, not followed
                yield depth, ref, "not in this store"
                continue
            m = parent.manifest
            yield depth, ref, f"{m.kind}, {m.rows:,} rows, {m.created_at}"
            yield from walk(m.parents, depth + 1)

    return walk(dv.manifest.parents, 0)


def licenses(store: Store, dv: DatasetVersion, extra: str | None) -> list[str]:
    found = [extra] if extra else []
    chain = [dv] + [store.get(r) for _, r, d in lineage(store, dv) if d != "not in this store"]
    for v in chain:
        for where in (v.manifest.source, v.manifest.config, v.manifest.extra):
            for key in ("license", "licenses"):
                val = where.get(key) if isinstance(where, dict) else None
                for item in [val] if isinstance(val, str) else (val or []):
                    if item not in found:
                        found.append(str(item))
    return found


def config_name(m: Any) -> str:
    """``<name>-v<N>-<digest>``: unique to one published version."""
    return f"{m.name}-v{m.version}-{(m.digest or m.content_key())[:10]}"


def card(store: Store, dv: DatasetVersion, license: str | None = None) -> str:
    from curate.checks.funnel import Funnel
    from curate.schema import reason_codes

    m = dv.manifest
    lic = licenses(store, dv, license)
    header: dict[str, Any] = {
        # A config named after the exact version: `datasets` caches a local folder by its base name and
        # config name, not by its files, so two exports to folders of the same name would otherwise
        # load whichever was cached first.
        "configs": [
            {
                "config_name": config_name(m),
                "default": True,
                "data_files": [{"split": "train", "path": "data/*.parquet"}],
            }
        ],
        "license": lic[0] if len(lic) == 1 else "other",
        "tags": ["curate", m.kind, "reasoning"],
        "pretty_name": m.ref,
    }
    out = [
        "---",
        yaml.safe_dump(header, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {m.ref}",
        "",
        f"A `{m.kind}` dataset published by curate {m.code_version} on {m.created_at}: {m.rows:,} rows, "
        f"schema `{m.schema}`, config hash `{m.config_hash[:16]}`.",
        "",
    ]
    funnel = Funnel.from_dict(m.funnel)
    if m.funnel:
        meanings = reason_codes()
        out += [
            "## Funnel",
            "",
            f"{funnel.total:,} rows went in, {funnel.accepted:,} were accepted; shares are of "
            "the input. A row can carry several reasons.",
            "",
            "| reason | rows | share | meaning |",
            "| --- | ---: | ---: | --- |",
        ]
        out += [f"| `{r.reason}` | {r.rows:,} | {r.share:.1%} | {meanings.get(r.reason, '')} |" for r in funnel.rows()]
        out.append("")
    out += ["## Lineage", ""]
    chain = list(lineage(store, dv))
    out += [f"{'  ' * d}- `{ref}`: {desc}" for d, ref, desc in chain] or ["No parent versions recorded."]
    out += ["", "## Source checkpoints and sampling", ""]
    checkpoints = m.source.get("checkpoints") or ([m.source["checkpoint"]] if m.source.get("checkpoint") else [])
    out += [f"- checkpoint `{c}`" for c in checkpoints] or ["- no checkpoint recorded"]
    for p in m.source.get("sampling_params") or []:
        out.append(f"- sampling: `{p}`")
    out += ["", "## Licenses", ""]
    out += [f"- {x}" for x in lic] or [
        "No license was recorded by the sources of this dataset; check the licenses "
        "of the prompt sets and of the model that wrote the responses before use."
    ]
    out += [
        "",
        "## Config",
        "",
        "```yaml",
        yaml.safe_dump(dict(m.config), sort_keys=True).rstrip(),
        "```",
        "",
        "## Files (as published)",
        "",
    ]
    out += [f"- `{f.path}`: {f.rows:,} rows, sha256 `{f.sha256}`" for f in m.files]
    return "\n".join(out) + "\n"


def export_hf(store: Store, dv: DatasetVersion, out: Path, license: str | None = None) -> Path:
    """Write ``out/data/*.parquet`` and ``out/README.md`` atomically; refuses a non-empty ``out``."""
    dv.check()
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not empty: choose another --out or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    sweep_tmp_beside(out)
    tmp = out.with_name(f".{out.name}{TMP_MARK}{socket.gethostname()}-{os.getpid()}")
    try:
        (tmp / "data").mkdir(parents=True)
        n = len(dv.parts)
        for i, part in enumerate(dv.parts):
            dest = tmp / "data" / f"train-{i:05d}-of-{n:05d}.parquet"
            if hasattr(dv, "fs"):  # object storage
                dv.fs.get_file(str(part), str(dest))
            else:
                shutil.copyfile(part, dest)
        (tmp / "README.md").write_text(card(store, dv, license), encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def upload_plan(folder: Path, repo_id: str) -> list[tuple[str, str]]:
    """(local file, path in the repo) for every file ``--push`` uploads, in order."""
    return [(str(p), p.relative_to(folder).as_posix()) for p in sorted(folder.rglob("*")) if p.is_file()]


def require_token() -> None:
    """Refuse ``--push`` before any work when no Hugging Face token is configured."""
    try:
        from huggingface_hub import get_token
    except ImportError as e:  # pragma: no cover - datasets depends on huggingface_hub
        raise UsageError("--push needs huggingface_hub (pip install huggingface_hub)") from e
    if not get_token():
        raise UsageError("--push needs a Hugging Face token: run `hf auth login` or set HF_TOKEN")


def push(folder: Path, repo_id: str, private: bool = True) -> str:
    """Upload an exported folder to the Hub as a dataset repo; needs a configured token."""
    from huggingface_hub import HfApi

    require_token()
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="dataset",
        commit_message=f"curate export ({len(upload_plan(folder, repo_id))} files)",
    )
    return str(getattr(info, "commit_url", info))
