"""Every error Lakelet raises on purpose descends from :class:`LakeletError`.

A user error (bad input, bad config, unknown name) carries ``exit_code = 2`` for the
CLI and a 4xx ``http_status`` for HTTP; anything else is a fault of the system
(exit 1, HTTP 500). Messages name the file, key, table or line and say what to do,
so the CLI prints them without a traceback.
"""

from __future__ import annotations


class LakeletError(Exception):
    """Root of every deliberate Lakelet error."""

    exit_code: int = 1
    http_status: int = 500

    @property
    def is_user_error(self) -> bool:
        return self.exit_code == 2


class UserError(LakeletError):
    """The input, the configuration or a name given by the user is wrong."""

    exit_code = 2
    http_status = 400


class NotFoundError(UserError):
    """A named thing (object, table, job, crawler, run) does not exist."""

    http_status = 404


class ConflictError(UserError):
    """The request contradicts the current state (e.g. a table already exists)."""

    http_status = 409


# --- configuration ------------------------------------------------------------------


class ConfigError(UserError):
    """``lakelet.toml``, an environment variable or a flag is invalid."""


class MissingExtraError(UserError):
    """An optional dependency of a backend is not installed."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the Python package {package!r}; "
            f"install it with: pip install 'lakelet[{extra}]'"
        )


# --- storage ------------------------------------------------------------------------


class StorageError(LakeletError):
    """The object store failed (I/O, network, permissions)."""


class InvalidKeyError(UserError):
    """A bucket name or object key is not acceptable."""


class ObjectNotFoundError(NotFoundError):
    """No object at that bucket and key."""


# --- catalog ------------------------------------------------------------------------


class CatalogError(LakeletError):
    """The catalog failed."""


class TableNotFoundError(NotFoundError):
    """No table by that name in the catalog or the warehouse."""


class TableSchemaError(UserError):
    """Data does not fit a table's schema (types Iceberg cannot widen, clashing names)."""


class InvalidTableNameError(UserError):
    """A table name is not of the form ``database.table``."""


# --- crawler ------------------------------------------------------------------------


class CrawlError(LakeletError):
    """A crawl could not complete."""


class CrawlerNotFoundError(NotFoundError):
    """No crawler by that name in ``lakelet.toml``."""


# --- jobs and SQL -------------------------------------------------------------------


class JobError(LakeletError):
    """A job run failed for a reason other than its SQL."""


class JobNotFoundError(NotFoundError):
    """No job by that name in ``lakelet.toml``."""


class SqlError(UserError):
    """A SQL statement does not parse, names something unknown or fails to run."""


# --- warehouse ----------------------------------------------------------------------


class WarehouseError(LakeletError):
    """The warehouse failed."""


class LoadError(UserError):
    """A load request is invalid (mode, keys, incompatible schema)."""
