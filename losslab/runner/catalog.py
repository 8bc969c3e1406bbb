"""The loss catalogue behind ``losslab losses``, generated from the config tree and
the loss classes' docstrings so that it cannot drift from the code.

It reads the config tree and imports each ``_target_``, so it belongs to the
runner; the loss library itself knows nothing of the config tree.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import get_object
from omegaconf import OmegaConf

LOSS_CONF = Path(__file__).resolve().parent.parent / "conf" / "loss"
_HIDDEN_KEYS = {"_target_", "_recursive_", "_partial_", "_convert_", "terms", "weights"}


@dataclass(frozen=True)
class LossEntry:
    """One ``loss=<token>`` option."""

    token: str
    target: str
    family: str
    parameters: dict[str, object]
    description: str
    reference: str
    #: the declared search space of losslab study (``conf/space/loss/<token>.yaml``), shown
    space: str = ""


def _space(token: str) -> str:
    """``q {0.05, 0.7, 0.95}`` for the loss's declared search space; "" without one."""
    from losslab.runner.study.spaces import describe, load_space

    space = load_space([LOSS_CONF.parent], "loss", token, "loss")
    return "; ".join(f"{key} {describe(values)}" for key, values in space.params.items())


def _first_comment(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    return ""


def short_reference(doc: str) -> str:
    """``First-author [et al.] YEAR, arXiv:ID`` from a docstring's References entry."""
    match = re.search(r"References:\s*\n(.*?)(?:\n\s*\n|\Z)", doc, flags=re.S)
    if not match:
        return ""
    entry = " ".join(match.group(1).split())
    authors = [a.strip() for a in entry.split(". ")[0].split(",")]
    name = (
        authors[0]
        if len(authors) == 1
        else " & ".join(authors)
        if len(authors) == 2
        else f"{authors[0]} et al."
    )
    year = re.search(r"\b(19|20)\d\d\b", entry)
    arxiv = re.search(r"arXiv:\s*([\w.]+\d)", entry)
    parts = [name + (f" {year.group(0)}" if year else "")]
    if arxiv:
        parts.append(f"arXiv:{arxiv.group(1)}")
    return ", ".join(parts)


def catalog(conf_dir: Path = LOSS_CONF) -> list[LossEntry]:
    """Every loss token with its family, parameters (defaults), description and reference."""
    entries = []
    for path in sorted(conf_dir.glob("*.yaml")):
        text = path.read_text()
        cfg = OmegaConf.create(text)
        cls = get_object(cfg._target_)
        params = {
            k: v
            for k, v in OmegaConf.to_container(cfg, resolve=False).items()
            if k not in _HIDDEN_KEYS
        }
        for term_name, term in (cfg.get("terms") or {}).items():
            params.update(
                {f"terms.{term_name}.{k}": v for k, v in term.items() if k not in _HIDDEN_KEYS}
            )
        doc = inspect.getdoc(cls) or ""
        references = [short_reference(doc)] if "terms" not in cfg else []
        for term in (cfg.get("terms") or {}).values():
            references.append(short_reference(inspect.getdoc(get_object(term._target_)) or ""))
        entries.append(
            LossEntry(
                token=path.stem,
                target=cfg._target_,
                family=getattr(cls, "family", "other"),
                parameters=params,
                description=_first_comment(text) or doc.split("\n")[0],
                reference="; ".join(dict.fromkeys(r for r in references if r)),
                space=_space(path.stem),
            )
        )
    return entries


def main(argv: list[str]) -> int:
    """``losslab losses [--markdown]``: print the catalogue as a table."""
    entries = catalog()
    if argv and argv[0] in ("-h", "--help"):
        print(
            "usage: losslab losses [--markdown]\n\nList every loss token with its family, "
            "parameters (defaults), the search space of losslab study (conf/space/loss/), "
            "description and reference."
        )
        return 0
    if argv and argv[0] == "--markdown":
        print("| token | family | parameters | search space | description | reference |")
        print("|---|---|---|---|---|---|")
        for e in entries:
            params = ", ".join(f"`{k}={v}`" for k, v in e.parameters.items())
            desc = e.description.replace("|", "\\|")
            space = f"`{e.space}`" if e.space else ""
            print(f"| `{e.token}` | {e.family} | {params} | {space} | {desc} | {e.reference} |")
        return 0
    if argv:
        print(f"losslab losses: unknown argument '{argv[0]}'. Valid: --markdown, --help")
        return 2
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=f"{len(entries)} losses (choose with loss=TOKEN, set parameters with loss.NAME=VALUE)",
        title_justify="left",
        show_lines=False,
    )
    for column in ("token", "family", "parameters", "search space", "description", "reference"):
        table.add_column(column, overflow="fold")
    for e in entries:
        params = " ".join(f"{k}={v}" for k, v in e.parameters.items())
        cells = (e.token, e.family, params, e.space or "-", e.description, e.reference)
        table.add_row(*(escape(v) for v in cells))
    Console(highlight=False).print(table)
    return 0
