"""Small real models that do not take one float matrix, and their data, shared by the tests of
prediction, compression and diffs: a tiny random BERT (dict inputs), a two-input model (tuple
inputs), an Embedding + GRU over padded sequences, and an image CNN. Weights come from seeded
inits; nothing is downloaded."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

VOCAB = 100


def tiny_bert(num_labels: int = 3, seed: int = 0):
    """A random ``BertForSequenceClassification`` (2 layers, hidden 32), seeded, eval mode."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37, num_labels=num_labels,
                        max_position_embeddings=64)
    return BertForSequenceClassification(config).eval()


def token_batch(n: int = 48, length: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    """``input_ids`` (1..VOCAB-1, zero-padded at the end of each row) and ``attention_mask``."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (n, length), generator=g)
    lengths = torch.randint(length // 2, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


def labels_for(n: int, classes: int = 3, seed: int = 1) -> np.ndarray:
    """Labels covering every class (a random model's accuracy is what it is)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n) % classes).astype(np.int64)


class TwoInputs(nn.Module):
    """``forward(x_num, x_cat)``: numeric features beside a categorical code."""

    def __init__(self, n_num: int = 5, n_cat: int = 7, classes: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.cat = nn.Embedding(n_cat, 4)
        self.head = nn.Sequential(nn.Linear(n_num + 4, 16), nn.ReLU(), nn.Linear(16, classes))

    def forward(self, x_num, x_cat):
        return self.head(torch.cat([x_num, self.cat(x_cat)], dim=1))


class GRUClassifier(nn.Module):
    """Embedding + GRU over zero-padded token ids; the last hidden state classifies."""

    def __init__(self, vocab: int = 50, classes: int = 2):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(vocab, 16, padding_idx=0)
        self.gru = nn.GRU(16, 24, batch_first=True)
        self.head = nn.Linear(24, classes)

    def forward(self, x):
        h, _ = self.gru(self.emb(x))
        return self.head(h[:, -1])


class SmallCNN(nn.Module):
    """A (N, 1, 8, 8) image classifier."""

    def __init__(self, classes: int = 10):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Flatten(), nn.Linear(8 * 4 * 4, classes))

    def forward(self, x):
        return self.body(x)


class Sequences(torch.utils.data.Dataset):
    """Variable-length token sequences with a label each: ``(ids, label)`` items."""

    def __init__(self, n: int = 40, vocab: int = 50, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            length = int(torch.randint(3, 11, (1,), generator=g))
            self.items.append((torch.randint(1, vocab, (length,), generator=g), i % 2))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def pad_collate(items):
    """Zero-pad a batch of ``(ids, label)`` items to its longest sequence."""
    ids = nn.utils.rnn.pad_sequence([x for x, _ in items], batch_first=True)
    return ids, torch.tensor([y for _, y in items])


class DictItems(torch.utils.data.Dataset):
    """A Dataset of Hugging Face style dict items: ``input_ids``, ``attention_mask``, ``labels``."""

    def __init__(self, batch: dict[str, torch.Tensor], labels: np.ndarray):
        self.batch, self.labels = batch, torch.as_tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return {**{k: v[i] for k, v in self.batch.items()}, "labels": self.labels[i]}


def logits_of(model, inputs) -> np.ndarray:
    """The model's logits computed by hand (keyword inputs for a dict, positional else)."""
    with torch.no_grad():
        if isinstance(inputs, dict):
            out = model(**inputs)
        elif isinstance(inputs, tuple):
            out = model(*inputs)
        else:
            out = model(inputs)
    return getattr(out, "logits", out).double().numpy()
