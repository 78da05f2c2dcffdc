"""The trainer: protocols, stopping rules, run folders, the paper's experiments."""

from .config import RunConfig
from .experiments import EXPERIMENTS, Experiment
from .model import SequenceModel, make_model
from .runs import RunDir
from .stopping import StopRule
from .trainer import evaluate, make_config, predictor, train, trial_model

__all__ = ["EXPERIMENTS", "Experiment", "RunConfig", "SequenceModel", "make_model", "RunDir",
           "StopRule", "evaluate", "make_config", "predictor", "train", "trial_model"]
