"""Every command, fed a bad value for each of its options: one line, exit 2, no traceback,
nothing written (neither where it runs nor in the run folder it reads)."""

import shlex
import sys

import pytest

from rnnlab import cli

TASK = "train adding -p T=10 --hidden 4 --max-sequences 32 --test-size 16"
PAPER = "train adding --protocol paper --max-sequences 32 --test-size 16"
LM = "lm train {text} --hidden 8 --layers 1 --embedding 4 --steps 1 --val-every 1"
BAD = {
    "train": [
        f"{TASK} --hidden 0", f"{TASK} --hidden -3", f"{TASK} --hidden abc",
        f"{TASK} --batch-size 0", f"{TASK} --lr nan", f"{TASK} --lr inf", f"{TASK} --lr -1",
        f"{TASK} --lr 0", f"{TASK} --clip nan", f"{TASK} --clip inf", f"{TASK} --clip 0",
        f"{TASK} --max-sequences 0", f"{TASK} --test-size 0", f"{TASK} --model bogus",
        f"{TASK} --protocol bogus", f"{TASK} --optimizer bogus", f"{TASK} --seed abc",
        f"{TASK} -o peephole=maybe", f"{TASK} -o peephole=2", f"{TASK} -o bogus=1",
        f"{TASK} -o dropout=nan", f"{TASK} -o dropout=1.5", f"{TASK} -o nonlinearity=tanh",
        f"{TASK} --model gru -o reset_after=perhaps", f"{TASK} --model rnn -o nonlinearity=x",
        f"{TASK} -p T=abc", f"{TASK} -p T=-5", f"{TASK} -p T=nan", f"{TASK} -p bogus=3",
        f"{TASK} -p T", "train bogus-task", "train", "train --resume {missing}",
        f"{PAPER} --trials 0", f"{PAPER} --first-trial -1", f"{PAPER} --set lr=nan",
        f"{PAPER} --set lr=inf", f"{PAPER} --set lr=-0.1", f"{PAPER} --set bogus=1",
        f"{PAPER} --set sequential=maybe", f"{PAPER} --experiment nope",
        f"{TASK} --set lr=0.1", f"{TASK} --as-read",
    ],
    "eval": ["eval {missing}", "eval {task_run} --n 0", "eval {task_run} --n -1",
             "eval {task_run} --n abc", "eval {lm_run}"],
    "reproduce": [
        "reproduce bogus-row", "reproduce 2c-q50-p50 --trials 0", "reproduce 2c-q50-p50 --jobs 0",
        "reproduce 2c-q50-p50 --budget nan", "reproduce 2c-q50-p50 --budget inf",
        "reproduce 2c-q50-p50 --budget 0", "reproduce 2c-q50-p50 --modern -1",
        "reproduce 2c-q50-p50 --set lr=inf", "reproduce 2c-q50-p50 --set bogus=1",
        "reproduce 2c-q50-p50 --set output_bias=maybe",
    ],
    "sweep": [
        "sweep bogus --grid lr=1 --trials 1 --out sw", "sweep 6a --grid lr --trials 1 --out sw",
        "sweep 6a --grid lr=1,,2 --trials 1 --out sw", "sweep 6a --grid lr=nan --trials 1 --out sw",
        "sweep 6a --grid bogus=1 --trials 1 --out sw", "sweep 6a --grid lr=1 --trials 0 --out sw",
        "sweep 6a --grid lr=1 --trials 1 --jobs 0 --out sw",
        "sweep 6a --grid lr=1 --trials 1 --budget inf --out sw",
        "sweep 6a --grid sequential=maybe --trials 1 --out sw",
        "sweep adding --grid lr=1 --trials 1 --max-sequences 0 --out sw",
        "sweep adding --grid hidden=0 --trials 1 --out sw",
        "sweep adding --grid lr=0.1 --set bogus=1 --trials 1 --out sw",
        "sweep 6a --grid lr=1 --trials 1",
    ],
    "analyze": ["analyze {missing}", "analyze {task_run} --what bogus",
                "analyze {task_run} --steps 0", "analyze {task_run} --batch 0",
                "analyze {task_run} --batch -2", "analyze {lm_run} --steps 1000000"],
    "figures": ["figures --only bogus"],
    "report": ["report {missing}", "report {task_run} --cells 3", "report {lm_run} --cells abc",
               "report {lm_run} --cells 999", "report {task_run} --out x.txt"],
    "lm train": [
        LM + " --layers 0", LM + " --hidden 0", LM + " --embedding -1", LM + " --dropout 1.5",
        LM + " --dropout nan", LM + " --output-dropout nan", LM + " --output-dropout -0.1",
        LM + " -o peephole=maybe", LM + " -o bogus=1", LM + " --backend bogus",
        LM + " --val-fraction 1", LM + " --val-fraction nan", LM + " --seq-len 0",
        LM + " --batch 0", LM + " --optimizer bogus", LM + " --lr inf", LM + " --lr nan",
        LM + " --lr 0", LM + " --schedule bogus", LM + " --min-lr nan", LM + " --min-lr 2",
        LM + " --decay-from inf", LM + " --decay-from 1", LM + " --clip inf",
        LM + " --clip nan", LM + " --minutes inf", LM + " --minutes nan", LM + " --minutes 0",
        LM + " --steps 0", LM + " --val-every 0", LM + " --sample-length 0",
        LM + " --temperature nan", LM + " --temperature -1", LM + " --temperature inf",
        LM + " --model bogus", "lm train {missing}", "lm train --resume {missing}",
        LM + " --log-every 0", LM + " --checkpoint-seconds 0", LM + " --checkpoint-seconds nan",
    ],
    "lm sample": ["lm sample {lm_run} --length 0", "lm sample {lm_run} --temperature nan",
                  "lm sample {lm_run} --temperature inf", "lm sample {lm_run} --temperature -1",
                  "lm sample {lm_run} --top-k 0", "lm sample {lm_run} --top-k -3",
                  "lm sample {missing}", "lm sample {task_run}"],
    "lm score": ["lm score {lm_run} {text} --streams 0", "lm score {lm_run} {text} --seq-len 0",
                 "lm score {lm_run} {missing}", "lm score {missing} {text}"],
    "lm plot": ["lm plot {missing}"],
    "corpus get": ["corpus get bogus"],
}
CASES = [(command, line) for command, lines in BAD.items() for line in lines]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished task run and a finished char-LM run, for the commands that read one."""
    root = tmp_path_factory.mktemp("runs")
    text = root / "text.txt"
    text.write_text("the cat sat on the mat and the dog ran off to see it\n" * 40)
    where = {"text": text, "task_run": root / "task", "lm_run": root / "lm",
             "missing": root / "no-such-thing"}
    for line in (f"{TASK} --out {where['task_run']}",
                 LM.format(text=text) + f" --out {where['lm_run']}"):
        assert _main(line) == 0
    return where


def _main(line: str) -> int:
    argv = sys.argv
    sys.argv = ["rnnlab", *shlex.split(line)]
    try:
        cli.main()
    except SystemExit as e:
        return e.code or 0
    finally:
        sys.argv = argv
    return 0


def _snapshot(root):
    return sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*"))


@pytest.mark.parametrize("command,line", CASES, ids=[c[1] for c in CASES])
def test_a_bad_value_is_one_line_and_exit_2(command, line, runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = _snapshot(runs["task_run"].parent)
    capsys.readouterr()
    assert _main(line.format(**runs)) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    assert not list(tmp_path.iterdir())  # nothing written where it ran ...
    assert _snapshot(runs["task_run"].parent) == before  # ... nor in the runs it read


def test_every_command_is_in_the_table():
    import typer.main

    group = typer.main.get_command(cli.app)
    names = set()
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None)
        names |= {f"{name} {s}" for s in subs} if subs else {name}
    exempt = {"tasks", "demo", "version", "corpus list"}  # they take no values
    assert names - exempt == set(BAD)
