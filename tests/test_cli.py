"""The `rnnlab` command: user errors are one line and exit 2; the commands run."""

import json
import sys

import pytest

from rnnlab import cli


def run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["rnnlab", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("args,message", [
    (["train", "addding"], "unknown task 'addding'"),
    (["train", "adding", "--param", "T=-3"], "T must be an int"),
    (["train", "adding", "--param", "T"], "key=value"),
    (["train", "adding", "--model", "lstm2"], "unknown model 'lstm2'"),
    (["train", "adding", "--model", "gru", "--option", "peephole=true"], "peephole"),
    (["train", "adding", "--batch-size", "0"], "batch_size"),
    (["train", "adding", "--no-such-flag"], "No such option"),
    (["train", "adding", "--lr", "fast"], "Invalid value for '--lr'"),
    (["train"], "give a TASK"),
    (["train", "--resume", "/no/such/run"], "no run folder"),
    (["eval", "/no/such/run"], "no run folder"),
    (["reproduce", "9z"], "unknown experiment"),
    (["nonsense"], "No such command"),
])
def test_user_errors_are_one_line_and_exit_2(monkeypatch, capsys, args, message):
    code, out, err = run(monkeypatch, capsys, *args)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_corrupt_run_folder(monkeypatch, capsys, tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    code, _, err = run(monkeypatch, capsys, "eval", str(tmp_path))
    assert code == 2 and "not valid JSON" in err


def test_tasks_and_reproduce_list(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "tasks")
    assert code == 0 and "adding-1997" in out and "reber" in out
    code, out, _ = run(monkeypatch, capsys, "reproduce", "--list")
    assert code == 0 and "4-T100" in out and "74,000" in out


def test_set_takes_dotted_keys_into_the_experiments_mappings(monkeypatch, capsys, tmp_path):
    """--set lstm.input_gate_bias=… changes one network option (as setup_text shows it)."""
    out = tmp_path / "rep"
    code, _, err = run(monkeypatch, capsys, "reproduce", "6a", "--trials", "1", "--budget",
                       "0.001", "--modern", "0", "--jobs", "1", "--as-read", "--set",
                       "lstm.input_gate_bias=[-1,-3]", "--set", "output=linear", "--out",
                       str(out))
    assert code == 0, err
    config = json.loads((out / "runs" / "6a" / "trials-0-0" / "config.json").read_text())
    assert config["experiment_options"] == {"lstm": {"input_gate_bias": [-1, -3]},
                                            "output": "linear"}
    code, _, err = run(monkeypatch, capsys, "reproduce", "6a", "--set", "lr=1",
                       "--set", "lr.x=2", "--out", str(tmp_path / "bad"))
    assert code == 2 and "both as a value and as a mapping" in err


def test_train_then_eval(monkeypatch, capsys, tmp_path):
    folder = tmp_path / "run"
    code, out, err = run(monkeypatch, capsys, "train", "binary-addition", "-p", "bits=3",
                         "--hidden", "8", "--lr", "0.02", "--max-sequences", "3000",
                         "--out", str(folder))
    assert code == 0, err
    assert "binary-addition(bits=3) with lstm" in out
    code, out, err = run(monkeypatch, capsys, "eval", str(folder), "--n", "200")
    assert code == 0 and "wrong of 200" in out, err
    (folder / "checkpoint.safetensors").write_bytes(b"garbage")
    code, _, err = run(monkeypatch, capsys, "eval", str(folder))
    assert code == 2 and "not a valid rnnlab checkpoint" in err


@pytest.mark.parametrize("command", [["tasks"], ["reproduce", "--list"], ["corpus", "list"]])
def test_tables_fit_80_columns_and_never_wrap_a_name(command, monkeypatch, capsys):
    from rnnlab.lm.corpora import CORPORA
    from rnnlab.tasks import TASKS
    from rnnlab.training.experiments import EXPERIMENTS

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys, "argv", ["rnnlab", *command])
    cli.main()
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80
    names = {"tasks": TASKS, "reproduce": EXPERIMENTS, "corpus": CORPORA}[command[0]]
    firsts = {line.split()[0] for line in lines if line and not line.startswith(" ")}
    assert set(names) <= firsts  # each name whole, at the start of its row


def _commands(group, prefix=()):
    """(path, click command) of every command, sub-commands included."""
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group (lm, corpus)
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_help_reads_as_sentences_at_80_columns():
    """No line break inside a sentence: every command's and option's help is one flowed text
    per paragraph (the terminal wraps it), and a help that a docstring once broke mid-sentence
    renders whole at 80 columns."""
    import typer
    from typer.testing import CliRunner

    from rnnlab import cli

    root = typer.main.get_command(cli.app)
    found = list(_commands(root))
    assert len(found) >= 15
    for path, cmd in found:
        texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        for text in texts:
            assert "\n" not in text.replace("\n\n", ""), (path, text)
    out = CliRunner().invoke(cli.app, ["--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("a task (minibatch protocol); write sweep.json" in line for line in lines)
