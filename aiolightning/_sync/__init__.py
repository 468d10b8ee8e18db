"""The blocking client: ``Lightning`` over the same async core, run on a loop it owns.

Rooms: :mod:`._portal` (the loop and who runs it), :mod:`._wrap` (the descriptors the
generated wrappers are made of), :mod:`._base` (lifecycle), and the generated
:mod:`._resources` and :mod:`._client` (``tools/syncgen.py``). This file imports nothing:
the generated API groups import :mod:`._wrap` without loading the whole client.
"""
