"""Deployments (the jobs service's deployments): the route table of the rooms below.

- `_model`: deployment records, their replicas coming up and going away, and the store
- `_shapes`: the JSON of a deployment
- `_service`: create/get/getbyname/list/update/delete/status, with the service's checks
- `_endpoint`: the endpoint URL each deployment answers on, on the emulator's own listener
"""

from __future__ import annotations

from .._call import RouteTable
from . import _endpoint, _service

__all__ = ["endpoint_routes", "routes"]

routes = RouteTable()
routes.routes = [*_service.routes.routes]
#: not spec operations: the deployments' own endpoints (their URLs are in the answers)
endpoint_routes = _endpoint.routes
