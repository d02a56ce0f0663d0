"""``%train --devices N`` / ``--nodes N`` / ``--export-script``: the launch on a warm worker
pool (``launch``, ``pool``), several nodes (``nodes``), what each worker runs (``worker``),
Dataset sharding (``data``), rank 0's outcome (``outcome``) and ``torchrun`` scripts
(``export``)."""
