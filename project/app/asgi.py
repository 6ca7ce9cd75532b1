"""The ASGI entry point: `uvicorn project.app.asgi:app --workers 4`, no manage.py needed.

The settings come from $SETTINGS_MODULE (default dev), as for manage.py; runserver exports it,
so its reloader and worker processes build the same app.
"""

from project.app.main import create_app
from project.core.conf import load_settings

app = create_app(load_settings())
