"""pytest-alembic's built-in migration tests, on each of the three engines."""

import pytest
from pytest_alembic.config import Config
from pytest_alembic.tests import (  # noqa: F401 - collected as tests of this module
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

from project.core.db import create_engine_for
from project.core.history.scripts import alembic_config as project_alembic_config


@pytest.fixture
def alembic_config() -> Config:
    # The project's own Config: env.py then takes pytest-alembic's connection from its attributes.
    return Config.from_raw_config(project_alembic_config())


@pytest.fixture
def alembic_engine(db_url: str):
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()
