"""A whole map-style Dataset, DataLoader or Hugging Face ``datasets.Dataset`` as one in-memory
batch, for the steps that need every row at once (``%compress --check``: each variant runs on
the same rows, in onnxruntime as well as in PyTorch).

The items are collated in one call by the loader's own ``collate_fn`` (a padding collate pads
to the longest item of the whole set), by torch's ``default_collate`` for a Dataset. The batch
is split into inputs and target by the shared contract (:func:`.batches.split_item`). torch is
imported inside the function.
"""

from __future__ import annotations

from typing import Any

from .batches import describe, split_item
from .data import check_data, is_loader
from .errors import InputError


def collate_all(X: Any, *, x_name: str = "X", y_name: str = "y") -> tuple[Any, Any]:
    """``(inputs, target)`` of every item of ``X`` collated into one batch.

    Parameters
    ----------
    X : Dataset, DataLoader or ``datasets.Dataset``
        Map-style, items ``(inputs, target)`` or dicts with ``labels`` (the batch contract).
    x_name, y_name : str
        The user's names, for messages.

    Returns
    -------
    (inputs, target)
        A tensor, tuple or dict of tensors with one row per item, and the target tensor
        (``None`` when the items hold none).

    Raises
    ------
    InputError
        An iterable-style or empty dataset, or items the collate function cannot stack into one
        batch (variable-length items without a padding ``collate_fn``).
    """
    from torch.utils.data import default_collate

    data = check_data(X, None, numeric=True, require_y=False, x_name=x_name, y_name=y_name)
    dataset = data.X.dataset if is_loader(data.X) else data.X
    collate = data.X.collate_fn if is_loader(data.X) else default_collate
    items = [dataset[i] for i in range(len(dataset))]
    try:
        batch = collate(items)
    except (RuntimeError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"the items of {x_name} cannot be stacked into one batch ({first}); "
                         "pass a DataLoader whose collate_fn pads them to one length") from None
    inputs, target = split_item(batch)
    if isinstance(inputs, list) and not inputs:
        raise InputError(f"{x_name}'s items hold no inputs ({describe(batch)})")
    return inputs, target
