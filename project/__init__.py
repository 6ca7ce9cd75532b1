"""Django's manage.py experience for a FastAPI + SQLAlchemy 2 application, on top of Alembic.

Imports here stay lazy: `python manage.py help` must not pull in SQLAlchemy, Alembic or FastAPI.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
