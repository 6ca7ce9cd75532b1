"""keystone.common.sql.core's column types, as keystone 30.0.0 defines them (Apache-2.0)."""

import datetime
import json

import sqlalchemy as sql
from sqlalchemy import types as sql_types

Text = sql.Text


class JsonBlob(sql_types.TypeDecorator):
    impl = sql.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return json.dumps(value)

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


class DateTimeInt(sql_types.TypeDecorator):
    """A datetime stored as microseconds since the epoch (BIGINT)."""

    impl = sql.BigInteger
    epoch = datetime.datetime.fromtimestamp(0, tz=datetime.timezone.utc)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return value
        value = value.astimezone(datetime.timezone.utc) if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        return int((value - self.epoch).total_seconds() * 1000000)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return (self.epoch + datetime.timedelta(microseconds=value)).replace(tzinfo=None)
