"""`stylediscover explore PATH`: the direction explorer's command (registered in stylediscover.cli)."""

from pathlib import Path

import click

from stylediscover.errors import InputError, friendly_errors


@click.command()
@click.argument("path")
@click.option("--storage-path", default="runs/sweeps", show_default=True,
              help="Where sweeps live (when PATH is a sweep's name).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; beyond loopback (e.g. 0.0.0.0) a --token is required.")
@click.option("--token", envvar="STYLEDISCOVER_EXPLORER_TOKEN", default=None,
              help="Secret every request must present (the printed URL carries it) [env STYLEDISCOVER_EXPLORER_TOKEN].")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="Another name the page may be reached by (Host header), e.g. this machine's DNS name.")
@click.option("--root", "roots", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Another folder whose exports the page may add (besides PATH's folder and --storage-path).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
@click.option("--steps", type=click.IntRange(1, 5000), default=1000, show_default=True,
              help="Projection steps for uploaded images (the page can change it).")
@click.option("--static", "static_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a self-contained HTML file of precomputed frames instead of serving.")
@click.option("--force", is_flag=True, help="Overwrite an existing --static file.")
@friendly_errors
def explore(path: str, storage_path: str, port: int, host: str, token: str | None, allow_hosts: tuple[str, ...],
            roots: tuple[Path, ...], open_browser: bool, steps: int, static_out: Path | None, force: bool) -> None:
    """Serves a page to explore the directions of PATH: an export folder, a directions.safetensors file or a
    sweep (its name under --storage-path, or its folder), whose trials can be compared side by side.

    \b
    Examples:
      stylediscover explore evaluation/results/quickstart-best
      stylediscover explore quickstart-20261126-101500 --port 8800
      stylediscover explore runs/shapes-binary/best --static explorer.html
      stylediscover explore runs/sweeps --host 0.0.0.0 --token "$(openssl rand -hex 16)" --allow-host gpu01
    """
    from stylediscover.explore.sources import resolve_exports, served_root

    refs = resolve_exports(path, storage_path)
    if static_out is not None:
        from stylediscover.explore.static import write_static_explorer
        from stylediscover.outputs import check_outputs

        check_outputs([static_out], force, "--static")
        write_static_explorer(refs[0].path, static_out)
        click.echo(f"wrote {static_out} ({refs[0].label})")
        return
    from stylediscover.explore.server import serve

    if token is not None and len(token) < 16:
        raise InputError("--token", "use at least 16 characters (e.g. openssl rand -hex 16)")
    served = [served_root(path, storage_path), *(root.resolve() for root in roots)]
    serve(refs, storage_path, port, steps, open_browser, host, token, served, allow_hosts)
