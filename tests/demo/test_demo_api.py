"""The demo application's REST API (users and posts), served by a real uvicorn process, on each engine."""

from __future__ import annotations

from pathlib import Path

from servers import uvicorn_app, wait_until_up


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
