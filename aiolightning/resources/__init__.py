"""Hand-written, typed resources on top of the generated API.

* ``teamspaces.py`` -- ``client.teamspaces``: resolve a name / ``owner/name`` / id to a
  :class:`~aiolightning.resources.teamspaces.Teamspace` (cached per client), list them.
* ``machines.py`` -- the :class:`~aiolightning.resources.machines.Machine` slugs, validated
  before any request; ``client.machines.list(teamspace)``.
* ``studios/`` -- ``client.studios``: create/get/list/start/stop/switch/run/delete, and
  ``start_many`` / ``stop_many`` / ``delete_many`` for fleets.
* ``jobs/`` -- ``client.jobs``: submit/get/list/status/wait/stop/delete/logs, and
  ``submit_many`` / ``poll`` / ``watch`` for fleets.
* ``storage/`` -- ``client.storage``: upload/download files and folders in parts, list, stat, delete.

Bulk helpers are built on :mod:`aiolightning.fanout`. Modules here are imported lazily by
the client's properties, so ``import aiolightning`` stays light.
"""
