"""`embodied serve`: a local web app to look at runs and evaluations and to curate the skill library.

FastAPI + Jinja2 (autoescaped) + htmx (vendored in ``static/``; nothing is loaded from outside the machine).
Every state-changing request carries the page's CSRF token; with ``token`` (required to bind beyond
127.0.0.1) every request must carry it too. Paths under ``runs`` are resolved and must stay inside it. The
library is opened per request, so what `embodied learn` adds to the same file (SQLite WAL) shows at once."""

from __future__ import annotations

import difflib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request  # FastAPI reads annotations: module names
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from embodied.library.store import SkillStore
from embodied.world.errors import EmbodiedError

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_COOKIE = "embodied_token"


class Jobs:
    """Background verification jobs: progress per seed, then the result."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def start(self, library: Path, name: str, seeds: int, videos: Path) -> str:
        job_id = uuid.uuid4().hex[:12]
        with self.lock:
            self.jobs[job_id] = {"id": job_id, "skill": name, "seeds": seeds, "done": [], "state": "running",
                                 "result": None}
        threading.Thread(target=self._verify, args=(job_id, library, name, seeds, videos), daemon=True).start()
        return job_id

    def _verify(self, job_id: str, library: Path, name: str, k: int, videos: Path) -> None:
        """Verify on ``k`` fresh tables, filming each (``videos``/NAME/TIME-seedN.mp4), and log the run."""
        from embodied.runtime.verify import fresh_seeds, verify
        from envs.tabletop import TabletopEnv
        from envs.video import VideoRecorder

        job = self.jobs[job_id]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = videos / name
        folder.mkdir(parents=True, exist_ok=True)
        film: dict[str, Any] = {}

        def camera(seed: int, task: Any) -> VideoRecorder:
            film["recorder"] = VideoRecorder(env, size=(240, 320), caption=f"verify {name}, seed {seed}")
            return film["recorder"]

        def seed_done(seed: int, ok: bool, why: str) -> None:
            path = folder / f"{stamp}-seed{seed}.mp4"
            film["recorder"].finish("ok" if ok else f"failed: {why}")
            film["recorder"].save(path)
            job["done"].append({"seed": seed, "ok": ok, "why": why, "video": str(path.relative_to(videos.parent))})

        try:
            with SkillStore(library, create=False) as store:
                record = store.get(name)
                env = TabletopEnv(image_size=(64, 64))
                try:
                    check = verify(record, env, fresh_seeds(record, k), on_seed=seed_done, film=camera)
                finally:
                    env.close()
                record = store.record_verification(name, check.attempts, check.successes)
                store.log_verification(name, {"seeds": check.seeds, "successes": check.successes,
                                              "attempts": check.attempts, "runs": job["done"]})
            job.update(state="done", result=f"{check.successes}/{check.attempts} this time; "
                                            f"{record.successes}/{record.attempts} in all")
        except Exception as e:  # noqa: BLE001 - the page shows why
            log.exception("verification of %s failed", name)
            job.update(state="failed", result=f"{type(e).__name__}: {e}")

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self.jobs.get(job_id)


def _inside(root: Path, *parts: str) -> Path | None:
    """``root/parts`` when it resolves inside ``root`` (no ``..``, no links out), else None."""
    try:
        path = root.joinpath(*parts).resolve()
    except (OSError, ValueError):
        return None
    return path if path == root or root in path.parents else None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a torn last line of a run still being written
    return rows


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def list_runs(runs: Path) -> list[dict[str, Any]]:
    """Every evaluation (report.json or results.jsonl) and run (summary.json) folder under ``runs``, newest first."""
    out = []
    if not runs.is_dir():
        return out
    for folder in sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True):
        if (folder / "results.jsonl").is_file():
            report = _read_json(folder / "report.json")
            config = _read_json(folder / "config.json")
            out.append({"kind": "eval", "name": folder.name, "n": report.get("n", len(_read_jsonl(folder / "results.jsonl"))),
                        "success": report.get("execution_success"), "planner": config.get("planner", "?"),
                        "state": config.get("state", "?"), "complete": report.get("complete")})
        elif (folder / "summary.json").is_file():
            summary = _read_json(folder / "summary.json")
            out.append({"kind": "run", "name": folder.name, "instruction": summary.get("instruction", ""),
                        "outcome": summary.get("outcome"), "planner": summary.get("planner", "?")})
    return out


def _diffs(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each version with the unified diff of its code against the one before."""
    out, previous = [], ""
    for v in versions:
        code = v.get("code") or ""
        diff = "\n".join(difflib.unified_diff(previous.splitlines(), code.splitlines(), f"v{v['version'] - 1}",
                                              f"v{v['version']}", lineterm="")) if previous else ""
        out.append({**v, "diff": diff})
        previous = code
    return out


def create_app(runs: Path, library: Path, token: str | None = None) -> FastAPI:
    """The app over ``runs`` (a folder of run and eval folders) and the skill ``library`` (SQLite)."""
    from embodied.library.store import LibraryError

    runs, library = Path(runs).resolve(), Path(library)
    csrf = secrets.token_urlsafe(24)
    jobs = Jobs()
    embedder: list[Any] = []
    async def require_csrf(request: Request) -> None:
        """Every change carries the page's CSRF token: htmx sends it as a header, forms as a field."""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        sent = request.headers.get("x-csrf-token")
        if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            sent = (await request.form()).get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, csrf):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")

    app = FastAPI(title="embodied", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(require_csrf)])
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        """The access token (when one is set) on every request (CSRF: `require_csrf`)."""
        if token is not None:
            given = (request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)
                     or request.headers.get("authorization", "").removeprefix("Bearer ").strip())
            if not given or not hmac.compare_digest(given, token):
                return Response("a token is required (open the link `embodied serve` printed)", status_code=401)
        response = await call_next(request)
        if token is not None and request.query_params.get("token") == token:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        response.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self' 'unsafe-inline'; " \
                                                      "media-src 'self'; img-src 'self' data:"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def page(request: Request, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, template, {"csrf": csrf, **context}, status_code=http_status)

    def store(write: bool = False) -> SkillStore | None:
        if not library.exists():
            return None
        return SkillStore(library, create=False, readonly=not write)

    def not_found(request: Request, what: str) -> HTMLResponse:
        return page(request, "error.html", 404, message=what)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return page(request, "index.html", runs=list_runs(runs), root=str(runs), library=str(library))

    @app.get("/eval/{name}", response_class=HTMLResponse)
    def eval_page(request: Request, name: str) -> HTMLResponse:
        folder = _inside(runs, name)
        if folder is None or not (folder / "results.jsonl").is_file():
            return not_found(request, f"no evaluation {name!r} under {runs}")
        return page(request, "eval.html", name=name, report=_read_json(folder / "report.json"),
                    config=_read_json(folder / "config.json"), rows=_read_jsonl(folder / "results.jsonl"))

    @app.get("/eval/{name}/episode/{task_id}", response_class=HTMLResponse)
    def eval_episode(request: Request, name: str, task_id: str) -> HTMLResponse:
        folder = _inside(runs, name)
        rows = _read_jsonl(folder / "results.jsonl") if folder else []
        row = next((r for r in rows if r.get("id") == task_id), None)
        if row is None:
            return not_found(request, f"no episode {task_id!r} in {name!r}")
        return page(request, "episode.html", name=name, summary=row, trace=[], video=None, back=f"/eval/{name}")

    @app.get("/run/{name}", response_class=HTMLResponse)
    def run_page(request: Request, name: str) -> HTMLResponse:
        folder = _inside(runs, name)
        if folder is None or not (folder / "summary.json").is_file():
            return not_found(request, f"no run {name!r} under {runs}")
        video = f"/media/{name}/video.mp4" if (folder / "video.mp4").is_file() else None
        return page(request, "episode.html", name=name, summary=_read_json(folder / "summary.json"),
                    trace=_read_jsonl(folder / "trace.jsonl"), video=video, back="/")

    @app.get("/media/{rel:path}")
    def media(request: Request, rel: str) -> Any:
        path = _inside(runs, rel)
        if path is None or path.suffix not in (".mp4", ".png") or not path.is_file():
            return Response("not found", status_code=404)
        return FileResponse(path, media_type="video/mp4" if path.suffix == ".mp4" else "image/png")

    @app.get("/library", response_class=HTMLResponse)
    def library_page(request: Request, q: str = "") -> HTMLResponse:
        s = store()
        if s is None:
            return page(request, "library.html", skills=[], q=q, path=str(library), statuses={})
        try:
            if q.strip():
                if not embedder:
                    from embodied.library.embed import default_embedder

                    embedder.append(default_embedder())
                hits = s.search(embedder[0]([q])[0], k=10, deprecated=True)
                skills = [(r, round(sim, 3)) for r, sim in hits]
            else:
                skills = [(r, None) for r in s.all()]
            statuses = s.statuses()
        finally:
            s.close()
        return page(request, "library.html", skills=skills, q=q, path=str(library), statuses=statuses)

    @app.get("/skill/{name}", response_class=HTMLResponse)
    def skill_page(request: Request, name: str) -> HTMLResponse:
        s = store()
        try:
            record = s.get(name) if s else None
            versions = _diffs(s.versions(name)) if s else []
            status = s.status(name) if s else "new"
            history = s.verifications(name) if s else []
        except LibraryError:
            record = None
        finally:
            if s:
                s.close()
        if record is None:
            return not_found(request, f"no skill {name!r} in {library}")
        return page(request, "skill.html", r=record, versions=versions, status=status, history=history)

    def _change(name: str, action: Any) -> Any:
        s = store(write=True)
        if s is None:
            raise EmbodiedError(f"no library at {library}")
        try:
            return action(s)
        finally:
            s.close()

    @app.post("/skill/{name}/status")
    async def set_status(request: Request, name: str) -> Any:
        status = str((await request.form()).get("status", ""))
        try:
            _change(name, lambda s: s.set_status(name, status))
        except EmbodiedError as e:
            return Response(str(e), status_code=400)
        return RedirectResponse(f"/skill/{name}", status_code=303)

    @app.post("/skill/{name}/description")
    async def set_description(request: Request, name: str) -> Any:
        import dataclasses

        text = str((await request.form()).get("description", "")).strip()
        if not text or len(text) > 500:
            return Response("a description of 1 to 500 characters", status_code=400)
        if not embedder:
            from embodied.library.embed import default_embedder

            embedder.append(default_embedder())

        def edit(s: SkillStore) -> None:
            record = dataclasses.replace(s.get(name), description=text)
            s.put(record, embedder[0]([record.embed_text()])[0], embedder[0].name,
                  note="description edited")

        try:
            _change(name, edit)
        except EmbodiedError as e:
            return Response(str(e), status_code=400)
        return RedirectResponse(f"/skill/{name}", status_code=303)

    @app.post("/skill/{name}/delete")
    def delete(name: str) -> Any:
        try:
            _change(name, lambda s: s.remove(name))
        except EmbodiedError as e:
            return Response(str(e), status_code=400)
        return RedirectResponse("/library", status_code=303)

    @app.post("/skill/{name}/verify", response_class=HTMLResponse)
    def start_verify(request: Request, name: str, seeds: int = 3) -> HTMLResponse:
        if not 1 <= seeds <= 20:
            return HTMLResponse("seeds must be 1 to 20", status_code=400)
        return page(request, "job.html", job=jobs.get(jobs.start(library, name, seeds, runs / "verify")))

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job(request: Request, job_id: str) -> HTMLResponse:
        found = jobs.get(job_id)
        if found is None:
            return HTMLResponse("no such job", status_code=404)
        return page(request, "job.html", job=found)

    @app.get("/library/export")
    def export() -> Any:
        s = store()
        data = [r.to_export(s.versions(r.name)) for r in s.all()] if s else []
        if s:
            s.close()
        return JSONResponse(data, headers={"Content-Disposition": 'attachment; filename="skills.json"'})

    @app.post("/library/import", response_class=HTMLResponse)
    async def import_(request: Request) -> HTMLResponse:
        import tempfile

        from embodied.library.transfer import import_library

        upload = (await request.form()).get("file")
        if upload is None or isinstance(upload, str):
            return HTMLResponse("choose a file to import", status_code=400)
        data = await upload.read()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "skills.json"
            path.write_bytes(data)
            try:
                report = _change("", lambda s: import_library(s, path)) if library.exists() else None
                if report is None:
                    with SkillStore(library) as s:
                        report = import_library(s, path)
            except EmbodiedError as e:
                return page(request, "imported.html", 400, error=str(e), report=None)
        return page(request, "imported.html", error=None, report=report)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "time": time.time()}

    return app


def check_bind(host: str, token: str | None) -> None:
    """Beyond loopback only with a token: anyone who can reach the port could curate the library."""
    if host not in LOOPBACK and not token:
        raise EmbodiedError(f"binding to {host} needs --token (anyone who reaches the port could change the "
                            "library); the default 127.0.0.1 does not")
