"""What a run of the task trainer is, as one typed, frozen value: `RunConfig`.

`make_config` builds it (validated: a bad option raises before anything runs); a run folder
keeps it as config.json (`to_json`, `from_json` round-trip exactly); a shard of `reproduce` or
`sweep` is handed to a worker process or a Dask worker as one. Nothing amends it: a changed
setting is a new value (`dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run (the trainer's module docstring says what each does)."""

    task: str
    protocol: str = "minibatch"  # or "paper"
    task_params: dict = field(default_factory=dict)
    model: str = "lstm"
    hidden: int = 32
    model_options: dict = field(default_factory=dict)
    readout_bias: bool = True
    shortcut: bool = False
    optimizer: str = "adam"
    lr: float = 3e-3
    batch_size: int = 32
    clip: float = 1.0
    max_sequences: int = 200_000
    stop: dict | None = None  # a StopRule as a mapping; None: the task's default
    test_size: int = 2560
    seed: int = 0
    trials: int | None = None  # paper protocol: trials in lockstep
    first_trial: int = 0
    experiment: str | None = None
    experiment_options: dict = field(default_factory=dict)
    as_read: bool = False
    log_every: int = 2000
    checkpoint_seconds: float = 30.0
    version: str | None = None  # rnnlab's, recorded by make_config

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> RunConfig:
        """From config.json's content; a key it does not know is an error naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown run setting(s) {', '.join(unknown)} (config.json of "
                             f"another rnnlab version?)")
        return cls(**data)


#: the settings make_config fills in when they are not given
DEFAULTS = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING
                     else f.default)
            for f in dataclasses.fields(RunConfig) if f.name not in ("task", "version")}
