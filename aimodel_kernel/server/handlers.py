"""REST handlers under ``/aimodel/api``: every verb authenticated and authorized, inputs checked.

``GET /aimodel/api/models?dir=D``          registered models and versions of D's store
``GET /aimodel/api/diff?dir=D&a=R1&b=R2``  the ``%diff`` report of two versions (nothing logged)

Errors are JSON (``{"message", "reason"}``): 400 for a bad request, 404 for an unknown model or
version, 409 for a model file that fails its checksum, 500 for a fault (logged with traceback).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ..config import Settings
from ..engine.core.errors import ChecksumError, InputError, NotFoundError
from ..engine.store.registry import parse_ref
from .catalog import diff_payload, list_models
from .store_location import reading_settings_for

MAX_REF_CHARS = 200


class _StoreHandler(APIHandler):
    """Common parts: the resource name for authorization, the store of ``dir``, error mapping."""

    auth_resource = "contents"  # reads files under the server's root, as the contents API does

    def _settings(self) -> Settings:
        rel = self.get_query_argument("dir", "")
        return reading_settings_for(self.settings.get("server_root_dir", "."), rel)

    def _ref(self, key: str) -> str:
        ref = self.get_query_argument(key, "")
        if not ref or len(ref) > MAX_REF_CHARS:
            raise InputError(f"query argument {key!r} must be a version reference such as name/3")
        parse_ref(ref)
        return ref

    async def _answer(self, work: Callable[..., Any], *args: Callable[[], Any]) -> None:
        """Check the request's arguments here, then run ``work`` on them in a thread (MLflow's
        calls block) and write its JSON; engine input errors become 4xx answers."""
        try:
            values = [arg() for arg in args]
            result = await asyncio.to_thread(work, *values)
        except NotFoundError as exc:
            raise tornado.web.HTTPError(404, str(exc)) from exc
        except ChecksumError as exc:
            raise tornado.web.HTTPError(409, str(exc)) from exc
        except InputError as exc:
            raise tornado.web.HTTPError(400, str(exc)) from exc
        self.finish(json.dumps(result, allow_nan=False))


class ModelsHandler(_StoreHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        await self._answer(list_models, self._settings)


class DiffHandler(_StoreHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        await self._answer(diff_payload, self._settings, lambda: self._ref("a"),
                           lambda: self._ref("b"))


def setup_handlers(web_app: Any) -> None:
    """Register the handlers under the server's base URL."""
    base = url_path_join(web_app.settings["base_url"], "aimodel", "api")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "models"), ModelsHandler),
        (url_path_join(base, "diff"), DiffHandler),
    ])
