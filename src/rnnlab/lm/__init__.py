"""Character-level language modelling (char-rnn on rnnlab's engine).

data: vocabulary, validation tail, stream batches · model: `CharLM` · trainer: the TBPTT loop and
run folders · sample: text generation · score: bits per character · corpora: the classic texts.
"""

from .data import StreamBatcher, Vocabulary, read_text, split
from .model import CharLM
from .sample import generate, sample_text
from .score import score
from .trainer import curve, load_model, make_config, train

__all__ = ["Vocabulary", "StreamBatcher", "read_text", "split", "CharLM", "generate",
           "sample_text", "score", "make_config", "train", "load_model", "curve"]
