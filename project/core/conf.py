"""Settings: plain Python modules chosen per environment, as in Django.

`--settings=prod`, `--settings=settings.prod` or any importable module; otherwise the
`SETTINGS_MODULE` environment variable; otherwise `dev`. A `.env` file at the project root is
read first; variables already in the environment win.

The tool knows the application only through settings: BASE_DIR, MIGRATIONS_DIR, TARGET_METADATA,
ASGI_APPLICATION and COMMAND_PACKAGES name what it needs, as Django's settings do.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, overload

ENVIRONMENT_VARIABLE = "SETTINGS_MODULE"
DEFAULT_SETTINGS = "dev"
SETTINGS_PACKAGE = "settings"


class ImproperlyConfigured(Exception):
    """The selected settings cannot be used as they are."""


def available_settings() -> list[str]:
    """Names of the environment modules in the settings package (base excluded)."""
    package = importlib.import_module(SETTINGS_PACKAGE)
    names = (m.name for m in pkgutil.iter_modules(package.__path__))
    return sorted(n for n in names if n != "base" and not n.startswith("_"))


def resolve_module_name(name: str) -> str:
    """`prod` -> `settings.prod`; a dotted path or any importable module is taken as it is."""
    if "." not in name and _module_exists(f"{SETTINGS_PACKAGE}.{name}"):
        return f"{SETTINGS_PACKAGE}.{name}"
    if _module_exists(name):
        return name
    raise ImproperlyConfigured(
        f"Unknown settings '{name}'. Available: {', '.join(available_settings())} "
        f"(or a dotted path to an importable module)."
    )


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def project_dir() -> Path:
    """The folder that holds the settings package: the project root (where manage.py and .env live).

    Only what runs before any settings are loaded needs this; everything else reads BASE_DIR.
    """
    spec = importlib.util.find_spec(SETTINGS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return Path.cwd()
    return Path(list(spec.submodule_search_locations)[0]).resolve().parent


def base_dir(settings: Any = None) -> Path:
    """BASE_DIR of `settings`, else the project root."""
    value = settings.get("BASE_DIR") if settings is not None else None
    return Path(value) if value else project_dir()


def migrations_dir(settings: Any = None) -> Path:
    """MIGRATIONS_DIR of `settings` (Alembic's script location), else `<BASE_DIR>/migrations`."""
    value = settings.get("MIGRATIONS_DIR") if settings is not None else None
    return Path(value) if value else base_dir(settings) / "migrations"


def cache_dir(settings: Any = None) -> Path:
    """Where check and the scratch database keep what they can recompute (git-ignored, safe to delete)."""
    return base_dir(settings) / ".cache"


def write_cache_file(path: Path, data: Any) -> None:
    """Write `data` as JSON to a cache file atomically (a concurrent reader sees the old file or the new one);
    a cache that cannot be written (a read-only checkout) is skipped: it only saves time."""
    import json
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass


def import_path_module(path: str) -> str:
    """The module an import_string path names ("package.models:Base.metadata" -> "package.models")."""
    return path.partition(":")[0] if ":" in path else path.rpartition(".")[0]


def import_string(path: str) -> Any:
    """`package.module:attr.attr` (or `package.module.attr`) -> the object, as Django's import_string."""
    module_name, sep, attrs = path.partition(":")
    if not sep:
        module_name, _, attrs = path.rpartition(".")
    if not module_name or not attrs:
        raise ImproperlyConfigured(f"'{path}' is not a dotted path such as 'package.module:name'.")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ImproperlyConfigured(f"Cannot import '{module_name}' (named by '{path}'): no such module.") from None
        raise
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ImproperlyConfigured(f"'{module_name}' has no attribute '{attrs}' (named by '{path}').") from None
    return obj


def read_dotenv() -> None:
    # override=False: a variable set in the real environment beats the file.
    from dotenv import load_dotenv

    load_dotenv(project_dir() / ".env", override=False)


class Settings:
    """The UPPERCASE names of one settings module, read-only."""

    def __init__(self, module: ModuleType, name: str, environment: dict[str, tuple[str | None, Any]] | None = None):
        self._module = module
        self.name = name
        self.module_name = module.__name__
        # What env() read while the module loaded: variable -> (its value, or None when unset; the default).
        self._environment = environment or {}

    def __getattr__(self, key: str) -> Any:
        if not key.isupper():
            raise AttributeError(key)
        try:
            return getattr(self._module, key)
        except AttributeError:
            raise AttributeError(f"Setting {key} is not defined in {self.module_name}") from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self._module, key, default)

    def variable_for(self, key: str) -> str:
        """What to check when setting `key` is wrong, for messages: the environment variable its value came from
        (`PROD_DATABASE_URL`), also when it is unset and the module's default is used (that said); the
        setting's own name when no variable gave it."""
        value = self.get(key)
        if value is None:
            return key
        # Among variables with the same value, the one named after the setting (PROD_DATABASE_URL rather than
        # PROD_MIGRATION_DATABASE_URL for DATABASE_URL).
        candidates = sorted(self._environment.items(), key=lambda item: (not item[0].endswith(f"_{key}"),
                                                                          len(item[0])))
        for variable, (given, _default) in candidates:
            if given is not None and given == value:
                return variable
        for variable, (given, default) in candidates:
            if given is None and default is not None and default == value:
                return f"{variable} (unset, so {self.module_name}'s default)"
        return key

    def __repr__(self) -> str:
        return f"<Settings {self.module_name}>"


def load_settings(name: str | None = None) -> Settings:
    """Import the settings module picked by `name`, $SETTINGS_MODULE or the default."""
    read_dotenv()
    name = name or os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_SETTINGS
    module_name = resolve_module_name(name)
    _forget_settings_modules(module_name)
    _environment_reads.clear()
    before = set(sys.modules)
    module = importlib.import_module(module_name)
    _imported_by_settings.update(_project_modules(set(sys.modules) - before))
    return Settings(module, name.rsplit(".", 1)[-1], dict(_environment_reads))


# Modules of the user's own (not a package, not the standard library's, an installed one's or the tool's) that a
# settings load imported first: a settings module may star-import another package's settings
# (`from myapp.settings.dev import *`), which read the environment when imported, so they are imported afresh at
# the next load too. Packages stay: re-importing one would drop its loaded submodules' attributes.
_imported_by_settings: set[str] = set()


def _project_modules(names: set[str]) -> set[str]:
    import sysconfig

    installed = tuple(str(Path(sysconfig.get_paths()[key]).resolve()) for key in ("stdlib", "purelib", "platlib"))
    kept = set()
    for name in names:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if (path and not hasattr(module, "__path__") and not name.startswith("project.")
                and not str(Path(path).resolve()).startswith(installed)):
            kept.add(name)
    return kept


def _forget_settings_modules(module_name: str) -> None:
    """Drop every imported module of the settings package, and `module_name`, from sys.modules.

    Loading again must see the environment as it is now, whole: the next import runs the chain
    afresh, base first (prod does `from settings.base import *`). Reloading only the chosen module
    would keep the values base.py read the first time (MIGRATE_LOCK_TIMEOUT, SQL_ECHO...).
    """
    # The project's settings package, and the package of a settings module that lives elsewhere
    # (`myapp.settings.prod` with its own `myapp.settings.base`).
    prefixes = {f"{SETTINGS_PACKAGE}."}
    if "." in module_name:
        prefixes.add(module_name.rpartition(".")[0] + ".")
    stale = {n for n in sys.modules if n == module_name or n.startswith(tuple(prefixes))} | _imported_by_settings
    for name in stale & set(sys.modules):
        del sys.modules[name]
    _imported_by_settings.clear()


def shared_settings() -> Settings:
    """The settings every environment shares (`settings.base`): the project's paths and what the tool
    needs from the app, for commands that never touch a database when the chosen environment cannot
    load (prod without its URL, say)."""
    return load_settings(f"{SETTINGS_PACKAGE}.base")


@overload
def env(name: str, default: str) -> str: ...
@overload
def env(name: str, default: None = None) -> str | None: ...
def env(name: str, default: str | None = None) -> str | None:
    """An environment variable, empty counted as unset."""
    value = os.environ.get(name) or None
    _environment_reads[name] = (value, default)
    return value if value else default


# The variables env() read while the settings module loaded, so that a message about a setting can name the
# variable the user set (Settings.variable_for): "is PROD_DATABASE_URL right?", not "is DATABASE_URL right?".
_environment_reads: dict[str, tuple[str | None, Any]] = {}


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    """A number from the environment (seconds, say); anything else is one clear ImproperlyConfigured."""
    value = env(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < minimum:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a number of at least {minimum:g}: set it to e.g. {name}={default:g}, "
            "or unset it for the default."
        )
    return number


def require_env(name: str, example: str) -> str:
    value = env(name)
    if value is None:
        raise ImproperlyConfigured(
            f"{name} is not set: these settings need it (e.g. {name}={example}); "
            f"set it in the environment or in .env."
        )
    return value
