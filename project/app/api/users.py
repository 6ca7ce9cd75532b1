"""/users: list (paginated), get, create, update (PATCH), delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import func, select

from project.app.api.deps import PaginationDep, SessionDep, commit_or_conflict, get_or_404
from project.app.models import User
from project.app.schemas import Page, UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=Page[UserRead])
def list_users(session: SessionDep, page: PaginationDep) -> dict:
    total = session.scalar(select(func.count()).select_from(User))
    rows = session.scalars(select(User).order_by(User.id).limit(page.limit).offset(page.offset)).all()
    return {"items": rows, "total": total, "limit": page.limit, "offset": page.offset}


@router.post("", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep) -> User:
    user = User(**body.model_dump())
    session.add(user)
    commit_or_conflict(session, f"A user with email {body.email} already exists.")
    return user


@router.get("/{user_id}", response_model=UserRead)
def get_user(user_id: int, session: SessionDep) -> User:
    user = get_or_404(session, User, user_id)
    return user


@router.patch("/{user_id}", response_model=UserRead)
def update_user(user_id: int, body: UserUpdate, session: SessionDep) -> User:
    user = get_or_404(session, User, user_id)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    commit_or_conflict(session, f"A user with email {body.email} already exists.")
    return user


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(user_id: int, session: SessionDep) -> Response:
    user = get_or_404(session, User, user_id)
    # The relationship cascades: the user's posts go too, on every engine (SQLite does not
    # enforce foreign keys unless told to, so the ORM does it).
    session.delete(user)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
