"""A small helper that builds node trees from Python (geometry and shader trees alike).

``Tree.node(type, *inputs, **props)`` makes a node, sets its properties first (so sockets that
depend on ``data_type``/``operation`` are enabled), then feeds its inputs in order: a socket is
linked, anything else is written to ``default_value``, ``None`` is left alone. Sockets are
picked by position among the *enabled* ones, or by name (first enabled socket of that name), so
nodes with several same-named sockets (Random Value, Switch) are addressed correctly.
"""

from __future__ import annotations


def socket(sockets, key):
    """The enabled socket at position ``key`` (int) or named ``key`` (str) in ``sockets``."""
    live = [s for s in sockets if s.enabled]
    if isinstance(key, int):
        return live[key]
    for s in live:
        if s.name == key or s.identifier == key:
            return s
    raise KeyError(f"no enabled socket {key!r} among {[s.name for s in live]}")


class Tree:
    """Wraps a ``bpy.types.NodeTree`` (cleared on construction) for terse node building."""

    def __init__(self, tree):
        self.tree = tree
        tree.nodes.clear()
        self._x = 0

    def node(self, bl_idname: str, *inputs, named: dict | None = None, **props):
        """Add a node; ``inputs`` fill enabled inputs in order, ``named`` by name; returns it."""
        n = self.tree.nodes.new(bl_idname)
        for k, v in props.items():
            setattr(n, k, v)
        n.location = (self._x, 0)
        self._x += 180
        for key, value in [*enumerate(inputs), *(named or {}).items()]:
            if value is not None:
                self.feed(socket(n.inputs, key), value)
        return n

    def feed(self, dst, value):
        """Link ``value`` into input socket ``dst`` (a node: its first enabled output)."""
        if hasattr(value, "outputs") and hasattr(value, "bl_idname"):
            value = socket(value.outputs, 0)
        if hasattr(value, "is_output"):
            self.tree.links.new(value, dst)
        else:
            dst.default_value = value

    @staticmethod
    def out(node, key=0):
        """Output socket ``key`` (position among enabled outputs, or name) of ``node``."""
        return socket(node.outputs, key)
