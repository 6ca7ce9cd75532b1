"""The demo application (users and posts) on every driver and engine: its REST API round trip, the
validation that keeps what one engine would store silently out of every engine, and its models and
history agreeing with its schemas.

Moved from tests/test_drivers.py and tests/test_drivers_parity.py, where the tool's behaviour on each
driver is tested on tests/fixture_app; these go with the demo (docs/start.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from servers import uvicorn_app, wait_until_up
from sqlalchemy.engine import make_url
from test_demo_api import test_rest_api_round_trip as rest_round_trip
from test_drivers import ALL, drivers


@pytest.fixture
def url(db_url: str, driver: str) -> str:
    return make_url(db_url).set(drivername=driver).render_as_string(hide_password=False)


@drivers(ALL)
def test_rest_api_round_trip_on_the_driver(url: str, tmp_path: Path) -> None:
    # test_demo_api's round trip, status codes and all (201/404/409/422, the 409 from each driver's own error).
    rest_round_trip(url, tmp_path)


def test_the_api_refuses_what_one_engine_would_store_silently(db_url: str, tmp_path: Path) -> None:
    """Too long for its column (SQLite stores it), an id beyond 32 bits (PostgreSQL errors, the others
    find nothing): a 422 from validation on every engine, and nothing reaches the database."""
    with uvicorn_app(db_url, tmp_path, migrate_on_startup=True) as server:
        wait_until_up(server)
        with server.client() as http:
            ada = http.post("/users", json={"email": "ada@example.com"}).json()
            too_long = [
                ("POST", "/users", {"email": "a" * 250 + "@example.com"}),
                ("POST", "/users", {"email": "bo@example.com", "name": "n" * 201}),
                ("PATCH", f"/users/{ada['id']}", {"name": "n" * 201}),
                ("POST", "/posts", {"user_id": ada["id"], "title": "t" * 201}),
                ("POST", "/posts", {"user_id": ada["id"], "title": "t", "content": "c" * 16_384}),
                ("POST", "/posts", {"user_id": 2**31, "title": "t"}),
            ]
            for method, path, body in too_long:
                response = http.request(method, path, json=body)
                assert response.status_code == 422, (method, path, response.text)
            for path in (f"/users/{2**40}", f"/posts/{2**31}", f"/posts?user_id={2**33}", f"/users?offset={2**40}"):
                assert http.get(path).status_code == 422, path
            # At the limits, accepted everywhere (MySQL's TEXT holds 16,383 four-byte characters).
            widest = "\U0001F600" * 16_383
            fits = http.post("/posts", json={"user_id": ada["id"], "title": "t" * 200, "content": widest})
            assert fits.status_code == 201, fits.text
            assert http.get("/users").json()["total"] == 1
            assert http.get("/posts").json()["total"] == 1
    assert "Traceback" not in server.log


def test_schema_lengths_are_the_columns_lengths() -> None:
    """The API's limits and the columns' lengths cannot drift apart unnoticed."""
    from project.app import models, schemas

    for schema, model in [(schemas.UserCreate, models.User), (schemas.PostCreate, models.Post)]:
        for name, field in schema.model_fields.items():
            column = model.__table__.columns.get(name)
            if column is None or not isinstance(column.type, sa.String) or isinstance(column.type, sa.Enum):
                continue  # an Enum is a String with a length, but its values are validated instead
            length = column.type.length
            if length is None:
                continue
            limits = [m.max_length for m in field.metadata if getattr(m, "max_length", None)]
            if not limits:  # Optional[Annotated[...]]: the constraint sits on the inner type
                from typing import get_args

                limits = [m.max_length for arg in get_args(field.annotation)
                          for m in getattr(arg, "__metadata__", ()) if getattr(m, "max_length", None)]
            assert limits == [length], (schema.__name__, name, limits, length)


def test_data_migration_types_the_enum_column_as_the_schema_does() -> None:
    """0007's lightweight table must bind post_status, not VARCHAR: psycopg 3 and asyncpg send typed
    parameters, and PostgreSQL refuses a character varying for an enum column."""
    import importlib.util

    from conftest import ROOT

    path = ROOT / "migrations" / "versions" / "0007_publish_posts_with_content.py"
    spec = importlib.util.spec_from_file_location("rev0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    status = module.posts.c.status.type
    assert isinstance(status, sa.Enum) and status.name == "post_status"
    assert set(status.enums) == {"draft", "published"}
