"""The benchmark's app: the real service (`create_app`) plus a bare endpoint, for the benchmark only.

`POST /bench/bare/{service_id}` goes through the same middleware, the same JWT dependency, the same
body reader (size and time limits, orjson, JSON shape limits) as `POST /cds-services/{service_id}`,
then answers a fixed `{"cards": []}`: the hook endpoint's cost minus the decision itself. The
production app never has this route.

    uvicorn --factory bench.bare_app:create_bench_app
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from cds_service.app import create_app
from cds_service.routes.cds_hooks import read_json_body, service_client
from cds_service.settings import Settings, load_settings
from cds_service.trust.jwt_verifier import VerifiedClient

BARE_PATH = "/bench/bare/{service_id}"
_FIXED = orjson.dumps({"cards": []})


def create_bench_app(settings: Settings | None = None) -> FastAPI:
    app = create_app(settings or load_settings())

    @app.post(BARE_PATH, include_in_schema=False)
    async def bare(
        service_id: str, request: Request, _client: Annotated[VerifiedClient | None, Depends(service_client)]
    ) -> Response:
        body: Any = await read_json_body(request)
        if not isinstance(body, dict):
            return Response(status_code=400)
        return Response(content=_FIXED, media_type="application/json")

    return app
