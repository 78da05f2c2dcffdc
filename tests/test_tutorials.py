"""The tutorials (docs/tutorials/*.ipynb) run top to bottom in a fresh kernel within 90 s each,
and are saved with the outputs of a complete run (what the documentation site shows)."""

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "docs" / "tutorials").glob("*.ipynb"))


def test_there_are_four_tutorials_saved_with_their_outputs():
    assert [p.name[0] for p in TUTORIALS] == ["1", "2", "3", "4"]
    for path in TUTORIALS:
        cells = [c for c in nbformat.read(path, 4).cells if c.cell_type == "code"]
        assert all(c.execution_count for c in cells), path.name  # every cell was run
        assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), path.name
        assert not any(o.output_type == "error" for c in cells for o in c.outputs), path.name


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_top_to_bottom(path, tmp_path, monkeypatch):
    # char-rnn trains for RNNLAB_TUTORIAL_MINUTES (0.5 as saved): a few seconds prove it runs
    monkeypatch.setenv("RNNLAB_TUTORIAL_MINUTES", "0.1")
    notebook = nbformat.read(path, 4)
    started = time.perf_counter()
    # the kernel's working folder is tmp_path: the run folders a tutorial writes land there
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - started
    assert seconds <= 90, f"{path.name} took {seconds:.0f} s"
    assert any(c.outputs for c in notebook.cells if c.cell_type == "code")
