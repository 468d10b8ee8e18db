"""Jobs (the v2 jobs service): the route table of the rooms below, in the order they register.

- `_model`: job records, their lazily computed states and the store
- `_shapes`: the JSON of a job
- `_tags`: workload tags and their routes
- `_service`: submit/get/find/list/update/delete
- `_mmt_model`, `_mmt`: multi-machine jobs over per-machine jobs, and their routes
- `_logs`: a job's log lines and the `page-logs` route
"""

from __future__ import annotations

from .._call import RouteTable
from . import _logs, _mmt, _service, _tags

__all__ = ["routes"]

routes = RouteTable()
routes.routes = [
    *_service.routes.routes,
    *_mmt.routes.routes,
    *_tags.routes.routes,
    *_logs.routes.routes,
]
