"""/posts: list (paginated, optionally by author), get, create, update (PATCH), delete.

Each route is a thin async function; its body is the sync function below it, run by `Database.run`
on the request's Session or AsyncSession (project.app.api.deps).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from project.app.api.deps import (
    MAX_ID,
    DatabaseDep,
    Pagination,
    PaginationDep,
    commit_or_conflict,
    get_or_404,
    id_path,
)
from project.app.models import Post, User
from project.app.schemas import Page, PostCreate, PostRead, PostUpdate

router = APIRouter(prefix="/posts", tags=["posts"])
PostId = Annotated[int, id_path("post")]


@router.get("", response_model=Page[PostRead])
async def list_posts(
    db: DatabaseDep, page: PaginationDep,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Author.")] = None,
) -> dict:
    return await db.run(_list, page, user_id)


def _list(session: Session, page: Pagination, user_id: int | None) -> dict:
    query = select(Post)
    if user_id is not None:
        query = query.where(Post.user_id == user_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Post.id).limit(page.limit).offset(page.offset)).all()
    return {"items": rows, "total": total, "limit": page.limit, "offset": page.offset}


@router.post("", response_model=PostRead, status_code=status.HTTP_201_CREATED)
async def create_post(body: PostCreate, db: DatabaseDep) -> Post:
    return await db.run(_create, body)


def _create(session: Session, body: PostCreate) -> Post:
    # Checked first for a 422 that names the field; the foreign key (enforced on every engine) still
    # catches a user deleted in between, as a 409.
    if session.get(User, body.user_id) is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body", "user_id"], "msg": f"User {body.user_id} does not exist.", "type": "value_error"}],
        )
    post = Post(**body.model_dump())
    session.add(post)
    commit_or_conflict(session, "The post conflicts with existing data.")
    return post


@router.get("/{post_id}", response_model=PostRead)
async def get_post(post_id: PostId, db: DatabaseDep) -> Post:
    return await db.run(get_or_404, Post, post_id)


@router.patch("/{post_id}", response_model=PostRead)
async def update_post(post_id: PostId, body: PostUpdate, db: DatabaseDep) -> Post:
    return await db.run(_update, post_id, body)


def _update(session: Session, post_id: int, body: PostUpdate) -> Post:
    post = get_or_404(session, Post, post_id)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(post, field, value)
    commit_or_conflict(session, "The post conflicts with existing data.")
    return post


@router.delete("/{post_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_post(post_id: PostId, db: DatabaseDep) -> Response:
    await db.run(_delete, post_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _delete(session: Session, post_id: int) -> None:
    session.delete(get_or_404(session, Post, post_id))
    session.commit()
