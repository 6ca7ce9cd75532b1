"""The demo application: users and posts over SQLAlchemy 2, served by FastAPI.

Replace it with your own (docs/start.md); the tool in project.core knows it only
through the settings that name it.
"""
