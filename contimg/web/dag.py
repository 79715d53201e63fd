"""A workflow's tasks drawn as a DAG in SVG on the server: one column per dependency depth, one box per
step coloured by its state, an arrow per dependency. No JavaScript."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 170, 46, 60, 18, 12
EMPTY = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="30"><text x="4" y="20">no steps</text></svg>'
)
STATE_CLASS = {
    "completed": "st-completed",
    "running": "st-running",
    "pending": "st-pending",
    "waiting": "st-waiting",
    "sleeping": "st-sleeping",
    "failed": "st-failed",
    "cancelled": "st-cancelled",
}


def _depths(tasks: Sequence[dict[str, Any]]) -> dict[str, int]:
    by_step = {t["step_name"]: t for t in tasks}
    depth: dict[str, int] = {}

    def walk(step: str, seen: frozenset[str]) -> int:
        if step in depth:
            return depth[step]
        parents = [p for p in by_step[step]["depends_on"] if p in by_step and p not in seen]
        depth[step] = 1 + max((walk(p, seen | {step}) for p in parents), default=-1)
        return depth[step]

    for step in by_step:
        walk(step, frozenset())
    return depth


def dag_svg(tasks: Sequence[dict[str, Any]]) -> str:
    """The SVG markup of a workflow's task rows (``step_name``, ``depends_on``, ``state``, ``id``)."""
    tasks = [t for t in tasks if t.get("step_name")]
    if not tasks:
        return EMPTY
    depth = _depths(tasks)
    columns: dict[int, list[dict[str, Any]]] = {}
    for t in sorted(tasks, key=lambda t: (depth[t["step_name"]], t["step_name"])):
        columns.setdefault(depth[t["step_name"]], []).append(t)
    pos: dict[str, tuple[int, int]] = {}
    for col, members in columns.items():
        for row, t in enumerate(members):
            pos[t["step_name"]] = (PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    width = PAD * 2 + len(columns) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max(len(m) for m in columns.values()) * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="workflow steps">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for t in tasks:
        x, y = pos[t["step_name"]]
        for parent in t["depends_on"]:
            if parent in pos:
                px, py = pos[parent]
                parts.append(
                    f'<line x1="{px + BOX_W}" y1="{py + BOX_H / 2}" x2="{x}" y2="{y + BOX_H / 2}" '
                    'stroke="#555" marker-end="url(#arrow)"/>'
                )
    for t in tasks:
        x, y = pos[t["step_name"]]
        state = str(t["state"]) + (" · DLQ" if t.get("in_dlq") else "")
        parts.append(
            f'<a href="/tasks/{int(t["id"])}"><g class="node {STATE_CLASS.get(t["state"], "")}">'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6"/>'
            f'<text x="{x + 8}" y="{y + 19}" class="step">{escape(str(t["step_name"]))[:24]}</text>'
            f'<text x="{x + 8}" y="{y + 36}" class="state">{escape(state)}</text></g></a>'
        )
    parts.append("</svg>")
    return "".join(parts)
