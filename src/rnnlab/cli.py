"""The `rnnlab` command: thin; parses, calls the library, prints."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="rnnlab: a lab for recurrent neural networks.")


@app.command()
def demo() -> None:
    """An LSTM and a tanh RNN learn the adding problem; the losses are printed as they fall."""
    from . import demo as _demo

    _demo.main()


@app.command()
def version() -> None:
    """Print the rnnlab and torch versions."""
    import torch

    from . import __version__

    typer.echo(f"rnnlab {__version__} (torch {torch.__version__})")


if __name__ == "__main__":
    app()
