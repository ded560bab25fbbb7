"""`embodied serve` in a real browser (Playwright driving Debian's Chromium) over real runs and a real
library: open an eval and an episode, play a video, search, verify with progress, approve, deprecate,
delete with confirmation, export and import; and the security rules (token, CSRF, paths, bind)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from embodied.cli import main
from embodied.library.abstraction import abstract_plan
from embodied.library.store import SkillRecord, SkillStore
from embodied.planners.oracle import plan
from embodied.planners.prompting import initial_state
from embodied.world.errors import EmbodiedError
from embodied.world.tasks import save_tasks
from envs.generator import generate

pytest.importorskip("fastapi")
CHROMIUM = "/usr/bin/chromium"
FAST = ["--planner", "oracle", "--state", "ground-truth", "--affordance", "analytic", "--success", "analytic",
        "--no-library"]
# screenshots of the main pages go to $EMBODIED_SCREENSHOTS (to look at them), else a temporary folder
SCREENSHOTS = Path(os.environ.get("EMBODIED_SCREENSHOTS") or tempfile.mkdtemp(prefix="embodied-screens-"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_library(path: Path, families: tuple[str, ...] = ("stack_two", "block_in_bowl", "all_in_bowl")) -> list[str]:
    """A library of real skills (abstracted from oracle plans), embedded by the real model."""
    from embodied.library.embed import default_embedder

    embed = default_embedder()
    names = []
    with SkillStore(path) as store:
        for seed, family in enumerate(families, 1):
            task = generate(family, seed)
            draft = abstract_plan(task.goal, plan(initial_state(task), task.goal), initial_state(task), family)
            record = SkillRecord(draft.name, draft.description, draft.params, draft.code, draft.postcondition,
                                 {"instruction": task.instruction})
            store.put(record, embed([record.embed_text()])[0], embed.name)
            names.append(draft.name)
    return names


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Runs (an eval of two tasks, a run with its video) and a library, served on 127.0.0.1."""
    import uvicorn

    from embodied.web.app import create_app

    root = tmp_path_factory.mktemp("web")
    runs = root / "runs"
    save_tasks([generate("block_in_bowl", 1), generate("stack_two", 2)], root / "t.jsonl")
    assert main(["eval", "--tasks", str(root / "t.jsonl"), *FAST, "--out", str(runs / "eval-small")]) == 0
    assert main(["run", "--generate", "block_in_bowl", "--seed", "3", *FAST, "--video", "--out",
                 str(runs / "run-video")]) == 0
    names = make_library(root / "skills.db")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runs, root / "skills.db"), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not server.started and time.monotonic() < end:
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "root": root, "runs": runs, "skills": names}
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (`make setup` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


@pytest.mark.slow
def test_open_an_eval_an_episode_and_play_a_video(site, browser) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(site["url"]) else None)
    page.goto(site["url"])
    assert page.locator("#runs").inner_text().count("eval-small") == 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "runs.png"))
    page.click("text=eval-small")
    page.wait_for_selector("#episodes")
    assert page.locator("#success").inner_text() == "1.000"
    assert page.locator("#episodes tbody tr").count() == 2
    page.screenshot(path=str(SCREENSHOTS / "eval.png"))
    page.click("text=block_in_bowl-1")
    assert page.locator("#outcome").inner_text() == "success"
    assert "ok" in page.locator("#steps").inner_text()
    page.goto(site["url"])
    page.click("text=run-video")
    page.wait_for_selector("#video")
    playing = page.evaluate("""async () => { const v = document.querySelector('#video'); v.muted = true;
        await v.play(); await new Promise(r => setTimeout(r, 800));
        return {t: v.currentTime, d: v.duration, w: v.videoWidth}; }""")
    assert playing["t"] > 0 and playing["d"] > 0 and playing["w"] > 0
    assert page.locator("details").count() >= 1  # the decisions with their options and scores
    assert "true (mm)" in page.locator("table.objects").first.inner_text()  # perceived against true objects
    page.screenshot(path=str(SCREENSHOTS / "episode.png"), full_page=True)
    assert outside == []  # nothing loaded from outside the machine
    page.close()


@pytest.mark.slow
def test_search_verify_approve_deprecate_delete_export_import(site, browser, tmp_path) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(site["url"] + "/library")
    assert page.locator("#skills tbody tr").count() == 3
    page.fill("#search", "put a block on another block")
    page.wait_for_selector("#skills th:has-text('similarity')")  # the page's CSP forbids eval'd waits
    first = page.locator("#skills tbody tr").first.inner_text()
    assert site["skills"][0] in first  # the stacking skill is the closest
    page.screenshot(path=str(SCREENSHOTS / "library.png"))
    name = site["skills"][0]
    page.click(f"text={name}")
    page.click("#verify")
    page.wait_for_selector("#job-state", timeout=120_000)
    assert page.locator("#job-state").inner_text() == "done"
    assert page.locator("#progress").inner_text() == "3/3"
    page.screenshot(path=str(SCREENSHOTS / "skill.png"), full_page=True)
    page.reload()
    assert page.locator("#verified").inner_text().endswith("/3")
    assert page.locator("#history video").count() == 3  # each fresh table filmed, kept with the run
    width = page.evaluate("""async () => { const v = document.querySelector('#history video');
        v.preload = 'auto'; v.load(); await new Promise(r => v.onloadedmetadata = r); return v.videoWidth; }""")
    assert width == 320
    page.click("#approve")
    assert page.locator("#status").inner_text() == "approved"
    page.click("#deprecate")
    assert page.locator("#status").inner_text() == "deprecated"
    with page.expect_download() as download:
        page.goto(site["url"] + "/library")
        page.click("#export")
    exported = tmp_path / "skills.json"
    download.value.save_as(exported)
    assert {s["name"] for s in json.loads(exported.read_text())} == set(site["skills"])
    page.click(f"text={site['skills'][1]}")
    page.on("dialog", lambda d: d.accept() if "cannot be undone" in d.message else d.dismiss())
    page.click("#delete")
    page.wait_for_url("**/library")
    assert site["skills"][1] not in page.locator("#skills").inner_text()
    page.set_input_files("#import input[type=file]", str(exported))
    page.click("#import button")
    assert "imported 1 new" in page.locator("#import-result").inner_text()
    page.goto(site["url"] + "/library")
    assert page.locator("#skills tbody tr").count() == 3
    page.close()


def test_changes_need_the_csrf_token_and_paths_stay_inside(site) -> None:
    from fastapi.testclient import TestClient

    from embodied.web.app import create_app

    client = TestClient(create_app(site["runs"], site["root"] / "skills.db"))
    name = site["skills"][2]
    assert client.post(f"/skill/{name}/status", data={"status": "approved"}).status_code == 403
    assert client.post(f"/skill/{name}/delete", headers={"X-CSRF-Token": "guess"}).status_code == 403
    for path in ("/media/..%2F..%2F..%2Fetc/passwd", "/media/run-video/..%2F..%2Fskills.db", "/run/..%2F..",
                 "/eval/..%2Fweb", "/media/run-video/summary.json"):
        assert client.get(path).status_code == 404, path
    assert client.get("/media/run-video/video.mp4").status_code == 200


def test_a_token_is_required_when_set_and_beyond_loopback(site) -> None:
    from fastapi.testclient import TestClient

    from embodied.web.app import check_bind, create_app

    client = TestClient(create_app(site["runs"], site["root"] / "skills.db", token="s3cret"))
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    assert client.get("/?token=s3cret").status_code == 200  # and a cookie for what follows
    assert client.get("/library").status_code == 200
    with pytest.raises(EmbodiedError, match="needs --token"):
        check_bind("0.0.0.0", None)
    check_bind("127.0.0.1", None)
    assert main(["serve", "--host", "0.0.0.0"]) == 2


def test_the_app_sees_what_another_process_adds_without_restart(site) -> None:
    from fastapi.testclient import TestClient

    from embodied.web.app import create_app

    lib = site["root"] / "second.db"
    shutil.copyfile(site["root"] / "skills.db", lib)
    client = TestClient(create_app(site["runs"], lib))
    before = client.get("/library").text.count("/skill/")
    make_library(lib, ("stack_three",))
    assert client.get("/library").text.count("/skill/") == before + 1
