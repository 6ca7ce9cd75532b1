"""/posts: list (paginated, optionally by author), get, create, update (PATCH), delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import func, select

from project.app.api.deps import PaginationDep, SessionDep, commit_or_conflict, get_or_404
from project.app.models import Post, User
from project.app.schemas import Page, PostCreate, PostRead, PostUpdate

router = APIRouter(prefix="/posts", tags=["posts"])


@router.get("", response_model=Page[PostRead])
def list_posts(
    session: SessionDep, page: PaginationDep, user_id: Annotated[int | None, Query(description="Author.")] = None
) -> dict:
    query = select(Post)
    if user_id is not None:
        query = query.where(Post.user_id == user_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Post.id).limit(page.limit).offset(page.offset)).all()
    return {"items": rows, "total": total, "limit": page.limit, "offset": page.offset}


@router.post("", response_model=PostRead, status_code=status.HTTP_201_CREATED)
def create_post(body: PostCreate, session: SessionDep) -> Post:
    # Checked here rather than left to the foreign key, which SQLite does not enforce by default.
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
def get_post(post_id: int, session: SessionDep) -> Post:
    post = get_or_404(session, Post, post_id)
    return post


@router.patch("/{post_id}", response_model=PostRead)
def update_post(post_id: int, body: PostUpdate, session: SessionDep) -> Post:
    post = get_or_404(session, Post, post_id)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(post, field, value)
    commit_or_conflict(session, "The post conflicts with existing data.")
    return post


@router.delete("/{post_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_post(post_id: int, session: SessionDep) -> Response:
    post = get_or_404(session, Post, post_id)
    session.delete(post)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
