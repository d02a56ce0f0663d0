"""A small sentiment data set written from templates, for the fine-tuning tutorial, its tests and
the fine-tuning benchmark (nothing is downloaded).

Each sentence is a template filled with a subject, a positive or negative word and sometimes an
intensifier: "the film was really wonderful" (1), "I found the service awful" (0). The templates
and the words of the held-out set (:func:`held_out_sentences`) are disjoint from the training
ones, so a model that scores well on it has learnt the sentiment of words it saw in other
sentences, or — for a pretrained model — of words it never saw in training at all.
"""

from __future__ import annotations

import random

TRAIN_TEMPLATES = (
    "the {s} was {i}{w}",
    "I found the {s} {i}{w}",
    "what a {i}{w} {s}",
    "honestly, the {s} is {i}{w}",
    "my friends said the {s} was {i}{w}",
    "this {s} felt {i}{w} to me",
)
HELD_OUT_TEMPLATES = (
    "everyone agrees that the {s} is {i}{w}",
    "in my opinion this {s} was {i}{w}",
    "we thought the {s} seemed {i}{w}",
)
SUBJECTS = ("film", "meal", "hotel", "book", "service", "concert", "game", "trip", "show",
            "class")
HELD_OUT_SUBJECTS = ("album", "restaurant", "phone", "lecture")
INTENSIFIERS = ("", "", "very ", "really ", "quite ", "truly ")
POSITIVE = ("good", "great", "wonderful", "excellent", "lovely", "delightful", "fantastic",
            "enjoyable")
NEGATIVE = ("bad", "awful", "terrible", "boring", "dreadful", "horrible", "disappointing",
            "poor")
HELD_OUT_POSITIVE = ("superb", "brilliant", "pleasant", "amazing")
HELD_OUT_NEGATIVE = ("dull", "miserable", "mediocre", "unpleasant")


def _sentences(n: int, seed: int, templates: tuple[str, ...], subjects: tuple[str, ...],
               positive: tuple[str, ...], negative: tuple[str, ...]) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for k in range(n):
        label = k % 2  # balanced classes
        word = rng.choice(positive if label else negative)
        text = rng.choice(templates).format(s=rng.choice(subjects), i=rng.choice(INTENSIFIERS),
                                            w=word)
        texts.append(text)
        labels.append(label)
    order = list(range(n))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


def sentiment_sentences(n: int = 256, seed: int = 0) -> tuple[list[str], list[int]]:
    """``n`` training sentences and their labels (1 positive, 0 negative), balanced, shuffled.

    Parameters
    ----------
    n : int
        How many sentences.
    seed : int
        Seeds the choice of template and words.

    Returns
    -------
    texts : list of str
    labels : list of int
    """
    return _sentences(n, seed, TRAIN_TEMPLATES, SUBJECTS, POSITIVE, NEGATIVE)


def held_out_sentences(n: int = 128, seed: int = 1,
                       unseen_words: bool = False) -> tuple[list[str], list[int]]:
    """Sentences from templates (and subjects) never used by :func:`sentiment_sentences`.

    Parameters
    ----------
    n : int
        How many sentences.
    seed : int
        Seeds the choice of template and words.
    unseen_words : bool
        Use sentiment words the training sentences never contain (a test of what a pretrained
        model brings); by default the training set's words, in new sentences.

    Returns
    -------
    texts : list of str
    labels : list of int
    """
    positive, negative = (HELD_OUT_POSITIVE, HELD_OUT_NEGATIVE) if unseen_words else (
        POSITIVE, NEGATIVE)
    return _sentences(n, seed, HELD_OUT_TEMPLATES, HELD_OUT_SUBJECTS, positive, negative)
