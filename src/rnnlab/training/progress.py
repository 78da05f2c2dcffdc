"""A live progress line (rich) that does nothing when disabled, for the trainers."""

from __future__ import annotations


class LiveLine:
    """label, a bar toward ``total``, [done/total,] a free-text field, elapsed time."""

    def __init__(self, enabled: bool, total: float, label: str, *, count: bool = True) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = [TextColumn("[bold]{task.description}"), BarColumn()]
        if count:
            columns.append(MofNCompleteColumn())
        columns += [TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
        self.bar = Progress(*columns, transient=False)
        self.id = self.bar.add_task(label, total=total, info="")

    def __enter__(self):
        if self.enabled:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)

    def show(self, completed: float, info: str) -> None:
        if self.enabled:
            self.bar.update(self.id, completed=completed, info=info)

    def print(self, text: str) -> None:
        """A line above the live one (the live line stays at the bottom)."""
        self.bar.console.print(text, markup=False, highlight=False)
