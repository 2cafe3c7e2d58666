"""The one Blueprint class every resource uses: its body parsed once, cursor pages' header."""

from __future__ import annotations

import json
from typing import Any

import flask_smorest

from gigco.web.body import BodyParser
from gigco.web.pagination import KEYSET


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint whose arguments come from the body ``_check_body`` parsed
    once, and whose cursor pages say ``X-Pagination: {"has_more": …}`` instead of a total."""

    ARGUMENTS_PARSER = BodyParser()

    def _set_pagination_metadata(self, page_params: Any, result: Any, headers: Any) -> Any:
        if page_params.item_count != KEYSET:
            return super()._set_pagination_metadata(page_params, result, headers)
        headers = headers or {}
        headers[self.PAGINATION_HEADER_NAME] = json.dumps(
            {"has_more": getattr(page_params, "has_more", False)}
        )
        return result, headers
