"""``curate view REF``: read a version's samples in a local web page (127.0.0.1 only)."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.cli.app import app, err, store_from


@app.command("view")
def view_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A version with samples: NAME@VERSION (e.g. checked@2)")],
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one)")] = 0,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the page in a browser")] = False,
) -> None:
    """Filter samples by reason, prompt, pass rate and length; read whole traces with their flagged spans;
    compare accepted and rejected samples of one prompt. Ctrl-C stops it."""
    from curate.report.viewer import make_server

    server = make_server(store_from(ctx), ref, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    err.print(f"curate view: {ref} on {url} (Ctrl-C stops)", markup=False, highlight=False, soft_wrap=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        err.print("curate view: stopped")
    finally:
        server.server_close()
