"""The FastAPI application served by a real uvicorn process, on each engine: REST API, health, runserver."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import run_manage
from servers import ROOT, app_env, find_free_port, serve, uvicorn_app, version_rows, wait_until_up
from sqlalchemy.engine import make_url


def test_rest_api_round_trip(db_url: str, tmp_path: Path) -> None:
    with uvicorn_app(db_url, tmp_path, migrate_on_startup=True) as server:
        wait_until_up(server)
        with server.client() as http:
            # create: 201, email normalised so uniqueness is the same on every engine
            created = http.post("/users", json={"email": " Ada@Example.com ", "name": "Ada"})
            assert created.status_code == 201, created.text
            ada = created.json()
            assert ada["email"] == "ada@example.com" and ada["is_active"] is True

            # duplicate email: 409 whatever the driver's own error is
            dup = http.post("/users", json={"email": "ADA@example.com"})
            assert dup.status_code == 409, dup.text
            assert "ada@example.com" in dup.json()["detail"]

            bob = http.post("/users", json={"email": "bob@example.com", "name": "Bob"}).json()
            http.post("/users", json={"email": "cy@example.com"}).raise_for_status()

            # read and paginate
            assert http.get(f"/users/{ada['id']}").json() == ada
            first = http.get("/users", params={"limit": 2}).json()
            assert first["total"] == 3 and [u["email"] for u in first["items"]] == ["ada@example.com",
                                                                                   "bob@example.com"]
            last = http.get("/users", params={"limit": 2, "offset": 2}).json()
            assert [u["email"] for u in last["items"]] == ["cy@example.com"]

            # update: PATCH changes only what is given; a taken email is a conflict too
            renamed = http.patch(f"/users/{bob['id']}", json={"name": "Robert"})
            assert renamed.status_code == 200 and renamed.json()["name"] == "Robert"
            assert renamed.json()["email"] == "bob@example.com"
            assert http.patch(f"/users/{bob['id']}", json={"email": "ada@example.com"}).status_code == 409
            assert http.get(f"/users/{bob['id']}").json()["email"] == "bob@example.com"

            # posts belong to users
            post = http.post("/posts", json={"user_id": ada["id"], "title": "Hello", "content": "First"})
            assert post.status_code == 201, post.text
            post_id = post.json()["id"]
            assert post.json()["status"] == "draft"
            published = http.patch(f"/posts/{post_id}", json={"status": "published"})
            assert published.status_code == 200 and published.json()["status"] == "published"
            by_ada = http.get("/posts", params={"user_id": ada["id"]}).json()
            assert by_ada["total"] == 1 and by_ada["items"][0]["title"] == "Hello"
            assert http.get("/posts", params={"user_id": bob["id"]}).json()["total"] == 0

            # 404s
            for method, path in [("GET", "/users/999999"), ("PATCH", "/users/999999"),
                                 ("DELETE", "/users/999999"), ("GET", "/posts/999999"),
                                 ("DELETE", "/posts/999999")]:
                response = http.request(method, path, json={} if method == "PATCH" else None)
                assert response.status_code == 404, (method, path, response.text)

            # 422s: invalid input never reaches the database
            assert http.post("/users", json={"email": "not-an-email"}).status_code == 422
            assert http.post("/users", json={"name": "no email"}).status_code == 422
            assert http.post("/users", json={"email": "x@example.com", "role": "admin"}).status_code == 422
            assert http.patch(f"/users/{ada['id']}", json={"email": None}).status_code == 422
            assert http.get("/users", params={"limit": 0}).status_code == 422
            assert http.post("/posts", json={"user_id": ada["id"], "title": ""}).status_code == 422
            assert http.post("/posts", json={"user_id": ada["id"], "title": "x", "status": "gone"}).status_code == 422
            assert http.post("/posts", json={"user_id": 999999, "title": "orphan"}).status_code == 422

            # delete: 204, then gone, with the user's posts
            assert http.delete(f"/users/{ada['id']}").status_code == 204
            assert http.get(f"/users/{ada['id']}").status_code == 404
            assert http.get(f"/posts/{post_id}").status_code == 404
            assert http.get("/users").json()["total"] == 2

            # the interactive docs are served
            assert http.get("/docs").status_code == 200
            assert "/users/{user_id}" in http.get("/openapi.json").json()["paths"]
    assert "Traceback" not in server.log


def test_ready_reports_pending_migrations_until_migrate(db_url: str, tmp_path: Path) -> None:
    env = {"DEV_DATABASE_URL": db_url, "SETTINGS_MODULE": "dev"}
    with uvicorn_app(db_url, tmp_path, migrate_on_startup=False) as server:
        wait_until_up(server)
        with server.client() as http:
            # Empty database: alembic_version does not exist yet, on every engine.
            empty = http.get("/health/ready")
            assert empty.status_code == 503
            assert empty.json() | {"status": None} == {"current": None, "head": "0008", "pending": 8, "status": None}
            assert http.get("/health").status_code == 200  # liveness never looks at the database

            assert run_manage("migrate", "0005", env=env).returncode == 0
            halfway = http.get("/health/ready")
            assert halfway.status_code == 503
            assert (halfway.json()["current"], halfway.json()["pending"]) == ("0005", 3)

            done = run_manage("migrate", env=env)
            assert done.returncode == 0, done.stderr
            ready = http.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ready", "current": "0008", "head": "0008", "pending": 0}
    assert version_rows(db_url) == ["0008"]


def test_ready_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql+psycopg2://app:s3cret-pw@127.0.0.1:{find_free_port()}/app"
    with uvicorn_app(url, tmp_path, migrate_on_startup=False) as server:
        wait_until_up(server)
        with server.client() as http:
            assert http.get("/health").status_code == 200
            response = http.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "database unavailable" and body["head"] == "0008"
    assert "detail" not in body and "Cannot reach" in server.log  # the cause goes to the log only
    assert "s3cret-pw" not in response.text


def _runserver(db_url: str, tmp_path: Path, *args: str, migrate_on_startup: bool = False):
    port = find_free_port()
    argv = [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", *args]
    return serve(argv, app_env(db_url, migrate_on_startup), tmp_path / "runserver.log", port)


def test_runserver_banner_warns_about_unapplied_migrations(db_url: str, tmp_path: Path) -> None:
    with _runserver(db_url, tmp_path, "--noreload") as server:
        wait_until_up(server)
        with server.client() as http:
            assert http.get("/health/ready").json()["pending"] == 8
    log = server.log
    assert "Settings: settings.dev" in log
    assert f"Database: {make_url(db_url).render_as_string(hide_password=True)}" in log
    assert "You have 8 unapplied migration(s)." in log
    assert "Run 'python manage.py migrate' to apply them." in log
    assert "reload off" in log
    password = make_url(db_url).password
    if password:
        assert password not in log


def test_runserver_migrates_at_startup_with_reload_in_dev(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'dev.db'}"
    # DEBUG is on in dev, so the reloader runs: the app lives in a child process that must see the settings.
    with _runserver(db_url, tmp_path, migrate_on_startup=True) as server:
        wait_until_up(server)
        with server.client() as http:
            assert http.get("/health/ready").status_code == 200
    assert "reload on" in server.log
    assert "8 unapplied migration(s) will be applied at start-up (MIGRATE_ON_STARTUP)." in server.log
    assert "You have" not in server.log
    assert version_rows(db_url) == ["0008"]


def test_runserver_serves_even_when_the_database_is_down(tmp_path: Path) -> None:
    url = f"mysql+pymysql://app:s3cret-pw@127.0.0.1:{find_free_port()}/app"
    with _runserver(url, tmp_path, "--noreload") as server:
        wait_until_up(server)
    warnings = [line for line in server.log.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "Cannot reach" in warnings[0]
    assert "s3cret-pw" not in server.log


@pytest.mark.parametrize(
    "args, message",
    [
        (["runserver", "localhost:http"], "is not a valid port number or address:port pair"),
        (["runserver", "70000"], "is not a valid port number or address:port pair"),
        (["runserver", "--reload", "--workers", "2"], "cannot be combined"),
        (["runserver", "--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_runserver_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = run_manage(*args, env={"SETTINGS_MODULE": "dev"})
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
