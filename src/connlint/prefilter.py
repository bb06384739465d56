"""The text prefilter: can a file acquire anything the catalog knows, judged from its text alone?

Used by ``connlint check`` (runner), the project index and the flake8 plugin, so that all of them skip
the same files. It imports nothing heavy: the flake8 plugin runs it on every file flake8 checks.
"""

from __future__ import annotations

import re

from connlint.catalog import Catalog


class Prefilter:
    """Cheap text test: can this file acquire anything the catalog knows?

    A call acquires only when its callee resolves through an import to a catalog name, so a file that can
    acquire spells, somewhere, a dotted name starting with a catalog module (``sqlite3``, ``django.db``)
    that is a prefix of a catalog name or extends one. ``from django.utils import timezone`` names
    nothing that can reach ``django.db.connection``, so a module whose every mention of a catalog module
    is like that is not parsed at all. Anything this does not understand counts as a mention: it may let
    through a file that cannot acquire, never the other way round.
    """

    def __init__(self, catalog: Catalog) -> None:
        names: set[str] = set()
        names.update(catalog.resources, catalog.constructors, catalog.values, catalog.types)
        names.update(catalog.type_aliases, catalog.type_aliases.values())
        names.update(catalog.item_types, catalog.item_types.values())
        names.update(owner for owner, _ in catalog.methods)
        names.update(catalog.registries)
        self.names = frozenset(names)
        self.prefixes = frozenset(
            ".".join(parts[:i]) for parts in (n.split(".") for n in names) for i in range(1, len(parts) + 1)
        )
        self.roots = tuple(sorted(catalog.root_modules))
        # names a call must spell to acquire: the last part of every acquiring function, constructor
        # and registry, and the acquiring methods; and the types whose values are called to acquire
        # (a parameter annotated "maker: sessionmaker" is called as "maker()")
        self.call_words = frozenset(
            {n.rpartition(".")[2] for n in (*catalog.resources, *catalog.constructors, *catalog.registries)}
            | {method for _, method in catalog.methods}
        ) - {"__call__"}
        self._call = re.compile(r"\b(?:" + "|".join(sorted(self.call_words, key=len, reverse=True)) + r")\s*\(")
        self.callable_types = frozenset(
            name.rpartition(".")[2] for name in (*catalog.types, *catalog.type_aliases)
            if (catalog.canonical_type(name), "__call__") in catalog.methods
        )

    def compatible(self, dotted: str) -> bool:
        """Is ``dotted`` a prefix of a catalog name, or a catalog name followed by more attributes?"""
        if dotted in self.prefixes:
            return True
        parts = dotted.split(".")
        return any(".".join(parts[:i]) in self.names for i in range(1, len(parts)))

    def may_acquire(self, text: str) -> bool:
        """Does the text name a catalog module in a way that can reach something that acquires, and
        call something by a name that can acquire (or an alias, or a type whose values are called)?"""
        return self.names_catalog(text) and self.calls_acquirer(text)

    def calls_acquirer(self, text: str) -> bool:
        """Is something called by a name that can acquire: ``connect(``, ``.cursor(``, a name imported
        ``as`` an alias, or is a type named whose values acquire when called?"""
        if self._call.search(text):
            return True
        aliases = set(self._ALIAS.findall(text))
        if aliases and re.search(r"\b(?:" + "|".join(sorted(aliases)) + r")\s*\(", text):
            return True
        return any(name in text for name in self.callable_types)

    _ALIAS = re.compile(r"\bas[ \t]+([A-Za-z_][A-Za-z0-9_]*)")

    def names_catalog(self, text: str) -> bool:
        """Does the text spell a catalog module's name in a way that can reach a catalog name? (What
        a module needs to provide factories or helpers to other modules.)"""
        for root in self.roots:
            start = text.find(root)
            while start >= 0:  # str.find is far faster than a regex scan of the whole text
                if self._mention_may_acquire(text, root, start):
                    return True
                start = text.find(root, start + len(root))
        return False

    def _mention_may_acquire(self, text: str, root: str, start: int) -> bool:
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
            return False  # part of a longer name (mysqlite3)
        found = self._DOTTED.match(text, start + len(root))
        assert found is not None  # the pattern matches the empty string
        if found.group("more") is not None:
            return False  # part of a longer name (sqlite3x)
        dotted = root + found.group(0).replace(" ", "").replace("\t", "")
        if not self.compatible(dotted):
            return False  # from django.utils import x / django.conf.settings: nothing to acquire there
        if not self._FROM.search(text, max(0, start - 40), start):
            return True
        return self._imports_compatible(text, found.end(), dotted)

    # what follows a root module's name: more attributes, or (group "more") the rest of a longer name
    _DOTTED = re.compile(r"(?P<more>\w)?(?(more)|(?:[ \t]*\.[ \t]*[A-Za-z_]\w*)*)")
    _FROM = re.compile(r"\bfrom[ \t]+\Z")
    _IMPORTED = re.compile(r"[ \t]+import[ \t]*(?:\((?P<paren>[^)]*)\)|(?P<line>[^\n;#\\(]*)(?P<end>[\n;#]|\Z))")

    def _imports_compatible(self, text: str, pos: int, module: str) -> bool:
        """``from django.db import models, connection``: does one imported name reach the catalog?"""
        if module in self.names or any(module.startswith(name + ".") for name in self.names):
            return True
        found = self._IMPORTED.match(text, pos)
        if found is None:
            return True  # a backslash continuation or something odd: count it as a mention
        names = found.group("paren") if found.group("paren") is not None else found.group("line")
        if "#" in names:
            return True  # a comment inside the parentheses may hide a ")": do not guess
        for item in names.replace("\n", ",").split(","):
            name = item.split("#", 1)[0].strip().split(" ", 1)[0].strip()
            if name == "*" or (name and self.compatible(f"{module}.{name}")):
                return True
        return False


_PREFILTERS: dict[int, tuple[Catalog, Prefilter]] = {}


def prefilter(catalog: Catalog) -> Prefilter:
    """The prefilter of a catalog, built once per catalog object."""
    cached = _PREFILTERS.get(id(catalog))
    if cached is None or cached[0] is not catalog:
        cached = _PREFILTERS[id(catalog)] = (catalog, Prefilter(catalog))
    return cached[1]
