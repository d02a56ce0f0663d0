"""The large-model options of ``TrainConfig`` (issue 15) refuse what cannot work in one line,
before anything starts, naming the flag to change."""

from __future__ import annotations

import pytest

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig, flags_for


@pytest.mark.parametrize(("options", "message"), [
    ({"precision": "fp8"}, r"^--precision must be one of 32, bf16-mixed, bf16-true, 16-mixed"),
    ({"precision": "16-mixed", "device": "cpu"}, r"16-mixed needs a GPU .* use --precision "
                                                 r"bf16-mixed$"),
    ({"grad_accum": 0}, r"^--grad-accum must be a positive integer"),
    ({"grad_accum": 8, "batch_size": 4}, r"^--grad-accum 8 splits each step's --batch-size 4 "
                                         r"into micro-batches of under one row; use "
                                         r"--grad-accum 4 or fewer"),
    ({"grad_accum": 4, "batch_size": 6, "devices": 2},
     r"under one row per process \(2 processes\); use --grad-accum 3 or fewer"),
    ({"strategy": "fsdp"}, r"^--strategy fsdp shards the model over worker processes; add "
                           r"--devices N"),
    ({"strategy": "zero3", "devices": 2}, r"^--strategy must be one of ddp, fsdp"),
    ({"cpu_offload": True, "devices": 2}, r"^--cpu-offload applies to --strategy fsdp$"),
    ({"reshard_after_forward": False}, r"^--no-reshard-after-forward applies to --strategy "
                                       r"fsdp$"),
    ({"blocks": "BertLayer"}, r"^--blocks names what --strategy fsdp shards and "
                              r"--activation-checkpointing wraps"),
    ({"eager_fallback": True}, r"^--eager-fallback applies to --compile$"),
])
def test_what_cannot_work_is_refused_in_one_line(options, message):
    with pytest.raises(InputError, match=message) as exc:
        TrainConfig(**options)
    assert "\n" not in str(exc.value)


def test_the_options_that_fit_together_are_accepted_and_written_back_as_flags():
    config = TrainConfig(precision="bf16-mixed", grad_accum=4, batch_size=32, devices=2,
                         strategy="fsdp", blocks="BertLayer", cpu_offload=True,
                         activation_checkpointing=True, compile=True, eager_fallback=True)
    tokens = flags_for(config)
    assert tokens[tokens.index("--precision"):] == [
        "--precision", "bf16-mixed", "--grad-accum", "4", "--strategy", "fsdp", "--blocks",
        "BertLayer", "--cpu-offload", "--activation-checkpointing", "--compile",
        "--eager-fallback"]
    assert TrainConfig(activation_checkpointing=True, blocks="Block").blocks == "Block"
