"""`rnnlab reproduce --merge`: one table from reproductions run separately, part by part."""

import copy
import itertools
import json
from pathlib import Path

import pytest
from test_cli import run

from rnnlab.training import reproduce as rp
from rnnlab.training.merge import merge, merge_into

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _docs() -> dict:
    return json.loads((DOCS / "reproduce.json").read_text())


def _row(key: str) -> dict:
    return copy.deepcopy(next(r for r in _docs()["rows"] if r["experiment"] == key))


def _table(*rows, continual=(), unfinished=(), seed=0) -> dict:
    return {"seed": seed, "version": "x", "rows": list(rows), "continual": list(continual),
            "unfinished": list(unfinished)}


def _variants():
    """4-T100 (its found set-up: a linear output unit) as three runs would give it: found
    with the bias-0 modern column, as read, and --trials 1 --fair-modern."""
    found = _row("4-T100")
    assert found["options"] == {"output": "linear"}
    found["modern"].pop("fair")
    found["as_read"] = None
    as_read = dict(_row("4-T100"), options={}, solved=3, mean_sequences=90_000.0, ratio=2.5,
                   wall_seconds=77.0, modern={"runs": 0})
    as_read["as_read"] = rp.summary(as_read) | {"source": "the same runs"}
    fair = dict(_row("4-T100"), trials=1, solved=1, as_read=None)
    return found, as_read, fair


def test_each_part_of_a_row_comes_from_its_own_run_whatever_the_order():
    found, as_read, fair = _variants()
    for order in itertools.permutations([found, as_read, fair]):
        (row,) = merge([_table(r) for r in order])["rows"]
        assert (row["trials"], row["solved"], row["options"]) == (10, found["solved"],
                                                                  {"output": "linear"})
        assert row["as_read"] == rp.summary(as_read) | {"source": "a separate as-read run",
                                                        "wall_seconds": 77.0}
        assert row["modern"] == fair["modern"] and row["modern"]["fair"]


def test_most_trials_win_and_the_later_source_on_a_tie():
    found, _, fair = _variants()
    again = dict(found, solved=4, mean_sequences=1.0)
    assert merge([_table(found), _table(again)])["rows"][0]["solved"] == 4
    assert merge([_table(again), _table(found)])["rows"][0]["solved"] == found["solved"]
    # the later fair modern column, whichever row it came with
    other = dict(fair, modern=dict(fair["modern"], fair=dict(fair["modern"]["fair"], lr=0.5)))
    assert merge([_table(fair), _table(other)])["rows"][0]["modern"]["fair"]["lr"] == 0.5
    assert merge([_table(other), _table(fair)])["rows"][0]["modern"] == fair["modern"]
    # the current set-up before an ablation or a superseded one, however many trials it has
    ablation = dict(found, options={"output": "linear", "lr": 0.1}, trials=30)
    assert merge([_table(found), _table(ablation)])["rows"][0]["options"] == found["options"]
    assert merge([_table(ablation)])["rows"][0]["trials"] == 30  # alone, it is the row
    # a one-trial run (for its modern column) never stands for the 1997 row
    assert merge([_table(found), _table(fair)])["rows"][0]["trials"] == 10
    # an as-read run alone: no row as run yet, so no row
    _, as_read, _ = _variants()
    assert merge([_table(as_read)])["rows"] == []


def test_a_row_with_the_papers_settings_is_its_own_as_read_result_and_rows_keep_table_order():
    plain, found = _row("6a"), _variants()[0]
    plain["as_read"] = None
    rows = merge([_table(found, plain)])["rows"]
    assert [r["experiment"] for r in rows] == ["4-T100", "6a"]  # the table's order
    assert rows[1]["as_read"] == rp.summary(plain) | {"source": "the same runs"}
    assert rows[0]["as_read"] is None  # a set-up and no as-read run: "—" in the table
    assert rp.as_read_text(rows[0]) == "—"


def test_continual_rows_take_the_most_networks_and_unfinished_rows_stay_listed():
    docs = _docs()
    decay = next(r for r in docs["continual"] if r["experiment"] == "cerg-forget-decay")
    more = dict(decay, trials=decay["trials"] + 10, perfect=50.0)
    behind = {"experiment": "2a-p100", "trials": 18, "trials_finished": 3, "solved_so_far": 0,
              "running_at": 10, "budget": 100}
    data = merge([_table(continual=[more], unfinished=[behind]), _table(continual=[decay])])
    assert data["continual"] == [more]
    assert data["unfinished"] == [behind]
    plain = _row("2a-p100")
    assert merge([_table(unfinished=[behind]), _table(plain)])["unfinished"] == []
    # a one-trial run (for its modern column) does not hide a full run under way
    one = dict(plain, trials=1)
    assert merge([_table(unfinished=[behind]), _table(one)])["unfinished"] == [behind]


def test_tables_that_do_not_belong_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="different seeds"):
        merge([_table(_row("6a")), _table(_row("6b"), seed=1)])
    with pytest.raises(ValueError, match="different seeds"):
        merge([_table(_row("6a")), _table(_row("6b"), seed=None)])
    with pytest.raises(ValueError, match="unknown experiment"):
        merge([_table(dict(_row("6a"), experiment="7z"))])
    with pytest.raises(ValueError, match="nothing to merge"):
        merge([])
    (tmp_path / "x.json").write_text('{"runs": []}')
    with pytest.raises(ValueError, match="not a reproduction table"):
        merge_into([tmp_path / "x.json"], tmp_path / "out")


def test_the_docs_table_is_what_the_merge_writes(monkeypatch, capsys, tmp_path):
    """docs/reproduce.md is generated: merging docs/reproduce.json gives it back, byte for
    byte (a note or a column changed in the code without regenerating the docs fails here)."""
    code, out, err = run(monkeypatch, capsys, "reproduce", "--merge", str(DOCS), "--out",
                         str(tmp_path), "--figure", "figures/reproduce_curves.png")
    assert code == 0, err
    assert "merged 1 reproduction(s): 31 row(s), 4 continual" in out
    assert (tmp_path / "reproduce.md").read_text() == (DOCS / "reproduce.md").read_text()
    assert json.loads((tmp_path / "reproduce.json").read_text()) == _docs()


@pytest.mark.parametrize("args,message", [
    (["--merge", "docs/reproduce.json"], "--merge needs --out"),
    (["6a", "--merge", "docs/reproduce.json", "--out", "x"], "experiments cannot go"),
    (["--merge", "a.json", "--out", "x", "--trials", "3", "--fair-modern"],
     "--trials, --fair-modern cannot go with it"),
    (["--figure", "a.png", "6a"], "--figure goes with --merge"),
    (["--merge", "/no/such/table.json", "--out", "x"], "does not exist"),
])
def test_merge_user_errors_are_one_line(monkeypatch, capsys, tmp_path, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(monkeypatch, capsys, "reproduce", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
