"""The explorer's web server: a Starlette app over the exports of one PATH, served by uvicorn on 127.0.0.1 (or, with a
token, another address), behind guard.Guard (Host allow-list, Origin check, JSON-only bodies, token).

Every torch call runs on one render thread (exports load there too), so requests never race on a generator;
renders are coalesced per (client, panel): a request that a newer one of the same panel overtook while it waited
is answered `superseded` without rendering. Uploads (at most MAX_UPLOAD bytes, enforced while the body streams
in) are projected on the projection thread and deleted once projected. The page can add exports under the served
roots only (the PATH's folder, the storage path and --root folders). User errors, bad exports included, are
answered 422 as JSON {"error": "FILE: problem"}.
"""

import asyncio
import contextlib
import io
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import torch
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stylediscover.errors import InputError, StylediscoverError, from_validation_error, summary
from stylediscover.explore.engine import RENDER_THREADS, GeneratorPool, LoadedExport
from stylediscover.explore.guard import Guard, allowed_hosts, is_loopback
from stylediscover.explore.projection import Projector
from stylediscover.explore.recipe import Samples, make_recipe
from stylediscover.explore.sources import ExportRef, confined_exports
from stylediscover.generators.formats import MALFORMED
from stylediscover.imaging import grid, png_bytes, png_data_uri

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 20 << 20
MAX_REQUEST = 1 << 20
MAX_PIXELS = 40_000_000
MAX_STEPS = 5000
Multiple = Annotated[float, Field(allow_inf_nan=False)]


class RenderRequest(BaseModel):
    """One panel's state: an export, its sliders (multiples of recommended strengths) and the samples or upload."""

    model_config = ConfigDict(extra="forbid")

    export: str
    strengths: dict[int, Multiple] = {}
    samples: Samples | None = None
    upload: str | None = None
    client: str = Field("", max_length=64)
    panel: int = 0
    seq: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> "RenderRequest":
        if (self.samples is None) == (self.upload is None):
            raise ValueError("give exactly one of samples and upload")
        return self


class AddExport(BaseModel):
    path: str = Field(min_length=1, max_length=4096)


class Explorer:
    """The server's state: the exports (loaded on first use), the render thread, coalescing and projections."""

    def __init__(self, refs: list[ExportRef], storage_path: str, steps: int, roots: list[Path] | None = None):
        self.refs = {ref.id: ref for ref in refs}
        self.storage_path, self.steps = storage_path, steps
        self.roots = sorted({Path(storage_path).resolve(), *(roots or [])})
        self.pool = GeneratorPool()
        self.loaded: dict[str, LoadedExport] = {}
        self.latest: dict[tuple[str, int], int] = {}
        self.projector = Projector()
        self.render_thread = ThreadPoolExecutor(1, thread_name_prefix="render", initializer=torch.set_num_threads,
                                                initargs=(RENDER_THREADS,))

    def export(self, export_id: str) -> LoadedExport:
        """The loaded export (render thread only)."""
        if export_id not in self.loaded:
            if export_id not in self.refs:
                raise InputError("export", f"unknown export {export_id!r}")
            self.loaded[export_id] = LoadedExport(self.refs[export_id], self.pool)
        return self.loaded[export_id]

    async def on_render_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.render_thread, fn, *args)

    def images(self, body: RenderRequest) -> torch.Tensor:
        """The edited images [B, 3, R, R] of a panel's state (render thread only)."""
        export = self.export(body.export)
        if body.samples is not None:
            return export.render_seeds(body.samples.seeds, body.samples.truncation, body.strengths)
        job = self.projector.job(body.upload, export.generator.key)
        return export.render_latent(job.ws, job.noise, body.strengths)

    def tiles(self, body: RenderRequest) -> list[str] | None:
        """PNG data URIs of the panel's images, or None when a newer request of the same panel is waiting."""
        if body.seq < self.latest.get((body.client, body.panel), body.seq):
            return None
        return [png_data_uri(grid(image[None])) for image in self.images(body)]

    def recipe(self, body: RenderRequest) -> dict:
        """The edit recipe of a panel's state (render thread only)."""
        export = self.export(body.export)
        if body.samples is not None:
            return make_recipe(export, body.strengths, samples=body.samples.model_dump())
        job = self.projector.job(body.upload, export.generator.key)
        return make_recipe(export, body.strengths, latent=(job.name, job.latent))

    def add(self, path: str) -> list[dict]:
        """Registers the exports behind a path under the served roots (sources.confined_exports) once the first has
        loaded (render thread only); any problem is an InputError."""
        refs = confined_exports(path, self.storage_path, self.roots)
        prefix = f"added{len(self.refs)}-"
        refs = [ExportRef(prefix + ref.id, ref.label, ref.path) for ref in refs]
        try:
            self.loaded[refs[0].id] = LoadedExport(refs[0], self.pool)
        except MALFORMED as exc:
            raise InputError(refs[0].path, f"not a usable export ({summary(exc)})") from None
        self.refs |= {ref.id: ref for ref in refs}
        return [{"id": ref.id, "label": ref.label} for ref in refs]

    def close(self) -> None:
        self.projector.close()
        self.render_thread.shutdown(wait=True, cancel_futures=True)


async def parse(request: Request, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise from_validation_error("request", exc) from None


def create_app(explorer: Explorer, hosts: frozenset[str] = allowed_hosts("127.0.0.1"), port: int | None = None,
               token: str | None = None) -> Starlette:
    """The ASGI app: the page and its assets, and the JSON API the page's script calls, behind guard.Guard (Host
    allow-list `hosts`, Origin on `port`, JSON-only bodies, `token`)."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def config(request: Request) -> Response:
        return JSONResponse({"exports": [{"id": r.id, "label": r.label} for r in explorer.refs.values()],
                             "steps": explorer.steps, "max_steps": MAX_STEPS, "max_upload": MAX_UPLOAD})

    async def export_summary(request: Request) -> Response:
        export = await explorer.on_render_thread(explorer.export, request.path_params["export_id"])
        return JSONResponse(export.summary())

    async def add_export(request: Request) -> Response:
        body = await parse(request, AddExport)
        return JSONResponse({"exports": await explorer.on_render_thread(explorer.add, body.path)})

    async def render(request: Request) -> Response:
        body = await parse(request, RenderRequest)
        key = (body.client, body.panel)
        explorer.latest[key] = max(explorer.latest.get(key, body.seq), body.seq)
        start = time.perf_counter()
        tiles = await explorer.on_render_thread(explorer.tiles, body)
        if tiles is None:
            return JSONResponse({"seq": body.seq, "superseded": True})
        return JSONResponse({"seq": body.seq, "images": tiles, "ms": 1000 * (time.perf_counter() - start)})

    async def image(request: Request) -> Response:
        body = await parse(request, RenderRequest)
        images = await explorer.on_render_thread(explorer.images, body)
        return Response(png_bytes(grid(images)), media_type="image/png")

    async def recipe(request: Request) -> Response:
        body = await parse(request, RenderRequest)
        return JSONResponse(await explorer.on_render_thread(explorer.recipe, body))

    async def upload(request: Request) -> Response:
        name = Path(request.query_params.get("name", "upload")).name[:200] or "upload"
        try:
            steps = int(request.query_params.get("steps", explorer.steps))
        except ValueError:
            raise InputError(name, "steps must be a whole number", "steps") from None
        if not 1 <= steps <= MAX_STEPS:
            raise InputError(name, f"steps must be within 1..{MAX_STEPS}", "steps")
        export_ids = [e for e in request.query_params.get("exports", "").split(",") if e]
        if not export_ids:
            raise InputError(name, "no export to project it for", "exports")
        data = await request.body()
        try:
            with Image.open(io.BytesIO(data)) as probe:
                pixels = probe.width * probe.height
        except UnidentifiedImageError:
            raise InputError(name, "not an image (no format the image reader knows)") from None
        except (OSError, Image.DecompressionBombError) as exc:
            raise InputError(name, f"not a readable image ({summary(exc)})") from None
        if pixels > MAX_PIXELS:
            raise InputError(name, f"{pixels / 1e6:.0f} megapixels; at most {MAX_PIXELS / 1e6:.0f} are accepted")
        exports = [await explorer.on_render_thread(explorer.export, e) for e in export_ids]
        return JSONResponse({"upload": explorer.projector.submit(name, data, exports, steps)})

    async def upload_status(request: Request) -> Response:
        return JSONResponse(explorer.projector.status(request.path_params["upload_id"]))

    async def user_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=422)

    async def internal_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"internal error: {summary(exc)}"}, status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        explorer.close()

    small = {"max_body_size": MAX_REQUEST}
    routes = [
        Route("/", index),
        Route("/api/config", config),
        Route("/api/exports/{export_id}", export_summary),
        Route("/api/exports", add_export, methods=["POST"], **small),
        Route("/api/render", render, methods=["POST"], **small),
        Route("/api/image", image, methods=["POST"], **small),
        Route("/api/recipe", recipe, methods=["POST"], **small),
        Route("/api/upload", upload, methods=["POST"], max_body_size=MAX_UPLOAD),
        Route("/api/upload/{upload_id}", upload_status),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(Guard, hosts=hosts, port=port,
                                                                              token=token)],
                     exception_handlers={StylediscoverError: user_error, Exception: internal_error})


def listen(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound on host:port (0: a free port); a busy port is refused as an InputError.
    Its protocol is IPPROTO_TCP so that asyncio turns Nagle's algorithm off on each connection (with protocol 0, as
    socket.create_server leaves it, a response's body waits ~40 ms for the delayed ACK of its headers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError("--port", f"cannot listen on {host}:{port} ({exc.strerror})") from None
    return sock


def serve(refs: list[ExportRef], storage_path: str, port: int, steps: int, open_browser: bool,
          host: str = "127.0.0.1", token: str | None = None, roots: list[Path] | None = None,
          allow_hosts: tuple[str, ...] = ()) -> None:
    """Loads the first export (refusing a bad one before anything listens), then serves until interrupted; the page
    can add exports under `roots` and the storage path only. Listening beyond loopback needs a `token`."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise InputError("--host", f"listening on {host} (beyond this machine) needs a --token")
    torch.set_num_threads(RENDER_THREADS)
    explorer = Explorer(refs, storage_path, steps, roots)
    try:
        explorer.render_thread.submit(explorer.export, refs[0].id).result()
        sock = listen(port, host)
    except BaseException:
        explorer.close()
        raise
    bound = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/" + (f"?{urlencode({'token': token})}" if token else "")
    print(f"explorer: {url}  ({len(refs)} export{'s' * (len(refs) > 1)}; Ctrl-C stops it)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    app = create_app(explorer, allowed_hosts(host, allow_hosts), bound, token)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
