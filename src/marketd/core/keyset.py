"""Prebuilt keyset pages, newest first: a query's first page and its page after a cursor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, or_


@dataclass(frozen=True)
class NewestFirst:
    """Both pages built once, with bind parameters (see markets.repository): `limit`, and
    after a cursor `after_at` / `after_id`, the (moment, id) of the page's last row. Rows with
    the same moment are ordered by id, so a page never repeats or skips one."""

    first: Select[Any]
    after: Select[Any]

    @classmethod
    def of(
        cls, query: Select[Any], moment: ColumnElement[Any], key: ColumnElement[Any]
    ) -> NewestFirst:
        older = or_(
            moment < bindparam("after_at"),
            and_(moment == bindparam("after_at"), key < bindparam("after_id")),
        )
        order, limit = (moment.desc(), key.desc()), bindparam("limit", type_=Integer)
        return cls(
            first=query.order_by(*order).limit(limit),
            after=query.where(older).order_by(*order).limit(limit),
        )

    def page(
        self, limit: int, after: tuple[datetime, uuid.UUID] | None, **params: Any
    ) -> tuple[Select[Any], dict[str, Any]]:
        """The statement and its parameters for `limit` rows after the cursor's (moment, id);
        `params` binds the query's own parameters."""
        if after is None:
            return self.first, {**params, "limit": limit}
        return self.after, {
            **params,
            "limit": limit,
            "after_at": after[0],
            "after_id": after[1],
        }
