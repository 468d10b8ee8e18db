"""The emulator's stores stay linear: a list page seeks its cursor instead of scanning from
the first item, names are found through an index (operations counted, never timed)."""

from __future__ import annotations

import itertools

from aiolightning.emulator._paging import encode_token, page
from aiolightning.emulator._store import ProjectStore


class Item:
    reads = 0  # how many times any item's seq was read

    def __init__(self, seq: int) -> None:
        self.id = f"id-{seq}"
        self._seq = seq
        self.project_id = "p" if seq % 3 else "q"
        self.name = f"n-{seq}"

    @property
    def seq(self) -> int:
        Item.reads += 1
        return self._seq


def test_a_page_costs_the_same_wherever_it_is() -> None:
    store: ProjectStore[Item] = ProjectStore()
    for _ in range(20_000):
        store.add(Item(store.new_seq()))
    for seq in range(2, 20_001, 2):  # delete every other one
        store.remove(store.by_id[f"id-{seq}"])
    Item.reads = 0
    token = encode_token(19_000)
    items, nxt = page(store.after(token), lambda x: x.seq, token, 10, 100)
    assert [x.seq for x in items] == list(range(19_001, 19_021, 2))
    assert nxt == encode_token(19_019)
    assert Item.reads < 100  # a binary search and the page, not the 19,000 before it


def test_holes_are_compacted_and_a_walk_sees_every_survivor_once() -> None:
    store: ProjectStore[Item] = ProjectStore()
    for _ in range(3_000):
        store.add(Item(store.new_seq()))
    for seq in range(1, 2_901):
        store.remove(store.by_id[f"id-{seq}"])
    assert len(store._order) <= 2 * len(store.by_id) + 1
    seen: list[int] = []
    token = ""
    for _ in itertools.count():
        items, token = page(store.after(token), lambda x: x.seq, token, 7, 100)
        seen += [x.seq for x in items]
        if not token:
            break
    assert seen == list(range(2_901, 3_001))


def test_names_are_indexed() -> None:
    store: ProjectStore[Item] = ProjectStore()
    a, b = Item(store.new_seq()), Item(store.new_seq())
    store.add(a)
    store.add(b)
    assert store.by_name[(a.project_id, "n-1")] == a.id
    store.rename(a, "renamed")
    a.name = "renamed"
    assert (a.project_id, "n-1") not in store.by_name
    store.remove(a)
    assert (a.project_id, "renamed") not in store.by_name
    assert store.by_name == {(b.project_id, "n-2"): b.id}
