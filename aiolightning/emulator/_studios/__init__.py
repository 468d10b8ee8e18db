"""Studios (cloudspaces): the route table of the rooms below, in the order they register.

- `_model`: studio records, the `codestatus` state machine and the store
- `_shapes`: the JSON of a studio, its codestatus and codeconfig
- `_lookup`: the studio a call names, and checked machine/flag fields
- `_cloudspaces`: create/get/list/update/delete and runs
- `_lifecycle`: start/stop, codestatus/codeconfig, machine switch, keep-alive, sleep config
- `_execute`: command execution and its NDJSON output stream
"""

from __future__ import annotations

from .._call import RouteTable
from . import _cloudspaces, _execute, _lifecycle

__all__ = ["routes"]

routes = RouteTable()
routes.routes = [*_cloudspaces.routes.routes, *_lifecycle.routes.routes, *_execute.routes.routes]
