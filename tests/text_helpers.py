"""Offline pieces for the text tests: tokenizers trained here on the real offline text (seconds, small
vocabularies so tiny models stay tiny), and overrides that build tiny random-weight transformers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, List

from conftest import SHARED_DATA

VOCAB = 800


def _agnews_text() -> Iterator[str]:
    with open(SHARED_DATA / "ag_news" / "test.csv", newline="") as f:
        for _label, title, description in csv.reader(f):
            yield f"{title} {description}"


def _quotes_text() -> Iterator[str]:
    with open(SHARED_DATA / "english_quotes" / "english_quotes.csv", newline="") as f:
        for row in csv.DictReader(f):
            yield row["quote"]


def wordpiece_tokenizer(directory: Path) -> Path:
    """A BERT-style (WordPiece, [CLS] ... [SEP]) tokenizer trained on the AG News articles."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(_agnews_text(), trainers.WordPieceTrainer(vocab_size=VOCAB, special_tokens=special))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(str(directory))
    return directory


def bpe_tokenizer(directory: Path) -> Path:
    """A GPT-style byte-level BPE tokenizer (one <|endoftext|> token) trained on the quotes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(_quotes_text(), trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
                                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                            unk_token="<|endoftext|>").save_pretrained(str(directory))
    return directory


TINY_CONFIGS = {
    "distilbert": dict(dim=32, hidden_dim=64, n_layers=2, n_heads=2, max_position_embeddings=64),
    "gpt_neo": dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                    attention_types=[[["global", "local"], 1]], max_position_embeddings=64, window_size=8),
}


def save_tiny_pretrained(model_type: str, tokenizer: Path, directory: Path) -> Path:
    """A tiny model with seeded random weights saved as a hub model would be: DistilBERT as its bare
    encoder (a classifier built from it gets a new head), GPT-Neo as a causal LM (its head is tied)."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer))
    config = AutoConfig.for_model(model_type, vocab_size=len(tok), **TINY_CONFIGS[model_type])
    torch.manual_seed(0)
    auto = AutoModelForCausalLM if model_type == "gpt_neo" else AutoModel
    auto.from_config(config).save_pretrained(str(directory))
    tok.save_pretrained(str(directory))
    return directory


def tiny_model(model: str, tokenizer: Path) -> List[str]:
    """Overrides for a tiny random-weight `model` (distilbert | gpt_neo) with a local tokenizer."""
    fields = ", ".join(f"{k}: {v!r}" for k, v in TINY_CONFIGS[model].items())
    return [f"model={model}", "model.pretrained=false", f"model.tokenizer={tokenizer}", f"+model.config_overrides={{{fields}}}"]


# Small slices of the real offline files: enough rows to be real, few enough for seconds on 2 cores.
AGNEWS_TINY = ["dataset=agnews_offline", f"dataset.data_files.test={SHARED_DATA / 'ag_news' / 'test.csv'}", "dataset.max_length=24", "distill.seq_len=12",
               "dataset.train_split=\"test[:400]\"", "dataset.val_split=\"test[400:480]\"",
               "dataset.test_split=\"test[6400:6600]\""]
QUOTES_TINY = ["dataset=english_quotes_offline",
               f"dataset.data_files.train={SHARED_DATA / 'english_quotes' / 'english_quotes.csv'}", "dataset.max_length=24", "distill.seq_len=8",
               "dataset.train_split=\"train[:400]\"", "dataset.val_split=\"train[400:480]\"",
               "dataset.test_split=\"train[2000:2200]\""]
TEXT_TINY = ["logger=none", "distill.iterations=3", "distill.batch_size=16", "eval.nets=2", "eval.val_nets=1",
             "eval.tune_nets=1", "eval.baselines=[random_real]", "eval.lr_grid=[0.1]", "eval.batch_size=128",
             "distill.steps=2", "distill.epochs=1", "eval.every=3", "device=cpu"]
