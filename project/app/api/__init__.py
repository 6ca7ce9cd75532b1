"""The REST API over the demo domain: /users and /posts."""

from fastapi import APIRouter

from project.app.api import posts, users

router = APIRouter()
router.include_router(users.router)
router.include_router(posts.router)
