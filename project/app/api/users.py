"""/users: list (paginated), get, create, update (PATCH), delete.

Each route is a thin async function; its body is the sync function below it, run by `Database.run`
on the request's Session or AsyncSession (project.app.api.deps).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from project.app.api.deps import DatabaseDep, Pagination, PaginationDep, commit_or_conflict, get_or_404, id_path
from project.app.models import User
from project.app.schemas import Page, UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])
UserId = Annotated[int, id_path("user")]


@router.get("", response_model=Page[UserRead])
async def list_users(db: DatabaseDep, page: PaginationDep) -> dict:
    return await db.run(_list, page)


def _list(session: Session, page: Pagination) -> dict:
    total = session.scalar(select(func.count()).select_from(User))
    rows = session.scalars(select(User).order_by(User.id).limit(page.limit).offset(page.offset)).all()
    return {"items": rows, "total": total, "limit": page.limit, "offset": page.offset}


@router.post("", response_model=UserRead, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, db: DatabaseDep) -> User:
    return await db.run(_create, body)


def _create(session: Session, body: UserCreate) -> User:
    user = User(**body.model_dump())
    session.add(user)
    commit_or_conflict(session, f"A user with email {body.email} already exists.")
    return user


@router.get("/{user_id}", response_model=UserRead)
async def get_user(user_id: UserId, db: DatabaseDep) -> User:
    return await db.run(get_or_404, User, user_id)


@router.patch("/{user_id}", response_model=UserRead)
async def update_user(user_id: UserId, body: UserUpdate, db: DatabaseDep) -> User:
    return await db.run(_update, user_id, body)


def _update(session: Session, user_id: int, body: UserUpdate) -> User:
    user = get_or_404(session, User, user_id)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    commit_or_conflict(session, f"A user with email {body.email} already exists.")
    return user


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: UserId, db: DatabaseDep) -> Response:
    await db.run(_delete, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _delete(session: Session, user_id: int) -> None:
    user = get_or_404(session, User, user_id)
    # The relationship cascades: the user's posts go too (the foreign key has no ON DELETE, and
    # every engine, SQLite included, enforces it: deleting a user with posts by SQL is refused).
    session.delete(user)
    session.commit()
