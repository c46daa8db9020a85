"""Generate docs/api.md, the API reference, from the package's public modules.

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is not what the code gives

For every public module (one with ``__all__``), in the pipeline order of docs/architecture.md, each name
of ``__all__`` gets its signature and the first paragraph of its docstring; a class also lists its public
methods and properties. Names a package re-exports are documented once, under the package. The output is
deterministic (no addresses, no dates), so tests/test_examples.py can check that docs/api.md is current.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "spikeinterface_sero"
OUT = ROOT / "docs" / "api.md"

#: documented first, in this order (the pipeline order); any other public module follows alphabetically
ORDER = [
    "",
    "io",
    "snippets",
    "model",
    "features",
    "extension",
    "neo_bridge",
    "datasets",
    "training",
    "export",
    "report",
    "pipeline",
    "demo",
    "watch",
]
#: modules without ``__all__`` that users still need: their own public classes / UPPER_CASE constants
NO_ALL = {"errors": "classes", "constants": "constants"}
SKIP = {"cli", "_version"}  # the command line is described by `sero --help` and the docs, not here

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class _Raw:
    """An annotation shown as written (``from __future__ import annotations`` keeps them as strings)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`~?([^`]+)`")


def _markdown(text: str) -> str:
    """reStructuredText inline markup of the docstrings as Markdown."""
    return _ROLE.sub(r"`\1`", text).replace("``", "`")


def _first_paragraph(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return _markdown(doc.strip().split("\n\n")[0].strip())


def _is_api_object(obj) -> bool:
    """Classes, functions and other callables (not constants): documented once, linked elsewhere."""
    return callable(obj) and not isinstance(obj, (int, float, str, bytes, tuple, list, dict, set, frozenset))


def _clean_annotation(a):
    if a is inspect.Parameter.empty or a is inspect.Signature.empty:
        return a
    return _Raw(a if isinstance(a, str) else inspect.formatannotation(a))


def signature(obj, name: str) -> str:
    """``name(params) -> return`` with annotations as written; ``name(...)`` when Python cannot tell."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name}(...)"
    params = [p.replace(annotation=_clean_annotation(p.annotation)) for p in sig.parameters.values()]
    if params and params[0].name in ("self", "cls") and inspect.isclass(obj):
        params = params[1:]
    ret = _clean_annotation(sig.return_annotation)
    if inspect.isclass(obj):
        ret = inspect.Signature.empty
    text = f"{name}{sig.replace(parameters=params, return_annotation=ret)}"
    if _ADDRESS.search(text):
        raise RuntimeError(
            f"the signature of {name} shows a memory address ({text}); the output would not be "
            "deterministic. Give that default a stable repr."
        )
    return text


def _value(obj) -> str:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return f"numpy array, shape {obj.shape}, dtype {obj.dtype}"
    text = repr(obj)
    if _ADDRESS.search(text):
        return type(obj).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def _anchor(qualname: str) -> str:
    return f'<a id="{qualname}"></a>'


def _class_members(cls) -> list[tuple[str, object]]:
    """Public methods and properties defined in the class itself (in source order)."""
    out = []
    for n, v in cls.__dict__.items():
        if n.startswith("_"):
            continue
        if isinstance(v, property) or inspect.isfunction(v) or isinstance(v, (staticmethod, classmethod)):
            out.append((n, v))
    return out


def document(name: str, obj, module_name: str, lines: list[str]) -> None:
    home = getattr(obj, "__module__", None)
    qual = f"{module_name}.{name}"
    lines.append(_anchor(qual))
    if _is_api_object(obj):
        kind = "class" if inspect.isclass(obj) else "function"
        lines.append(f"### `{name}` ({kind})")
        lines.append("")
        lines.append("```python")
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            lines.append(f"class {name}({', '.join(b.__name__ for b in obj.__bases__)})")
        else:
            lines.append(signature(obj, name))
        lines.append("```")
        lines.append("")
        para = _first_paragraph(obj) if not inspect.isclass(obj) or obj.__doc__ else ""
        if para:
            lines.append(para)
            lines.append("")
        if home and home != module_name and home.startswith(PACKAGE):
            lines.append(f"*Defined in `{home}`.*")
            lines.append("")
        if inspect.isclass(obj) and home and home.startswith(PACKAGE):
            members = _class_members(obj)
            if members:
                lines.append("Members:")
                lines.append("")
                for mname, m in members:
                    if isinstance(m, property):
                        doc = _first_paragraph(m).replace("\n", " ")
                        lines.append(f"- `{mname}` (property)" + (f": {doc}" if doc else ""))
                    else:
                        fn = m.__func__ if isinstance(m, (staticmethod, classmethod)) else m
                        sig = signature(fn, mname)
                        first = "cls" if isinstance(m, classmethod) else "self"
                        sig = sig.replace(f"({first}, ", "(").replace(f"({first})", "()")
                        if isinstance(m, (staticmethod, classmethod)):
                            sig = f"{sig}  # {type(m).__name__}"
                        doc = _first_paragraph(fn).replace("\n", " ")
                        lines.append(f"- `{sig}`" + (f": {doc}" if doc else ""))
                lines.append("")
    else:
        lines.append(f"### `{name}`")
        lines.append("")
        lines.append(f"`{name} = {_value(obj)}`")
        lines.append("")


def public_modules() -> list[str]:
    """Module names relative to the package ("" = the package), in documentation order."""
    pkg = importlib.import_module(PACKAGE)
    found = {""}
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{PACKAGE}."):
        rel = info.name[len(PACKAGE) + 1 :]
        if any(part.startswith("_") for part in rel.split(".")) or rel.split(".")[0] in SKIP:
            continue
        found.add(rel)
    ordered = [m for m in ORDER if m in found]
    ordered += [m for m in sorted(found) if m not in ORDER and "." not in m]
    # submodules of documented packages: only the names their package does not re-export
    ordered += [m for m in sorted(found) if "." in m]
    return ordered


def render() -> str:
    """The text of docs/api.md."""
    sys.path.insert(0, str(ROOT))  # the package next to this file, not another installed copy
    try:
        modules = public_modules()
        sections: list[tuple[str, str, list[str]]] = []  # (module name, summary, lines)
        documented: dict[int, str] = {}  # id(object) -> qualified name where it is documented
        top = importlib.import_module(PACKAGE)
        for rel in modules:
            if not rel:
                continue  # the package itself: its names are linked to their modules below
            name = f"{PACKAGE}.{rel}"
            mod = importlib.import_module(name)
            if hasattr(mod, "__all__"):
                names = list(mod.__all__)
            elif rel in NO_ALL:
                if NO_ALL[rel] == "classes":
                    names = [
                        n
                        for n, v in vars(mod).items()
                        if inspect.isclass(v) and v.__module__ == name and not n.startswith("_")
                    ]
                else:
                    names = [n for n in vars(mod) if n.isupper()]
            else:
                continue
            parent = name.rsplit(".", 1)[0]
            if "." in rel:
                parent_all = set(getattr(importlib.import_module(parent), "__all__", []))
                names = [n for n in names if n not in parent_all]
                if not names:
                    continue
            lines: list[str] = []
            for n in names:
                obj = getattr(mod, n)
                key = id(obj)
                if _is_api_object(obj) and key in documented:
                    where = documented[key]
                    lines.append(f"- `{n}`: see [`{where}`](#{where}).")
                    lines.append("")
                    continue
                document(n, obj, name, lines)
                if _is_api_object(obj):
                    documented[key] = f"{name}.{n}"
            summary = _first_paragraph(mod)
            sections.append((name, summary, lines))

        out = [
            "# API reference",
            "",
            "<!-- Generated by docs/gen_api.py from the docstrings: do not edit by hand; run "
            "`python docs/gen_api.py`. -->",
            "",
            "Every public name of every public module: its signature and the first paragraph of its "
            "docstring (the full docstring is in the code, `help(obj)`). Start with the "
            "[tutorial](tutorial.md); the data flow between modules is in "
            "[architecture.md](architecture.md).",
            "",
            "**Models.** Wherever a model folder is optional (`model_folder=None`, no `--model`), the bundled "
            "*demonstration* model is used: it was trained on simulated recordings and is not for scientific "
            "conclusions.",
            "",
            "## Modules",
            "",
        ]
        out.append(f"- [`{PACKAGE}`](#{PACKAGE}): the names most workflows need, importable from the package.")
        for name, summary, _ in sections:
            first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(summary.split()))[0].rstrip(".:;,") if summary else ""
            out.append(f"- [`{name}`](#{name})" + (f": {first}" if first else ""))
        out.append("")
        # the top-level names, linked to where they are documented
        out.append(f'<a id="{PACKAGE}"></a>')
        out.append(f"## `{PACKAGE}`")
        out.append("")
        out.append(_first_paragraph(top))
        out.append("")
        out.append(f"`{PACKAGE}.__version__` is the package version.")
        out.append("")
        for n in top.__all__:
            obj = getattr(top, n)
            if n == "__version__":
                continue
            where = documented.get(id(obj))
            out.append(f"- [`{n}`](#{where})" if where else f"- `{n}`")
        out.append("")
        for name, summary, lines in sections:
            out.append(f'<a id="{name}"></a>')
            out.append(f"## `{name}`")
            out.append("")
            if summary:
                out.append(summary)
                out.append("")
            out.extend(lines)
        text = "\n".join(out).rstrip() + "\n"
        return re.sub(r"\n{3,}", "\n\n", text)
    finally:
        sys.path.remove(str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Generate docs/api.md from the docstrings.")
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if docs/api.md is out of date")
    p.add_argument("--out", default=str(OUT), help="where to write (default: docs/api.md)")
    args = p.parse_args(argv)
    text = render()
    out = Path(args.out)
    if args.check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
