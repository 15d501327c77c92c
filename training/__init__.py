"""orthokd training: everything a run needs, and the ground floor the analyses share (docs/reference.md "Layout").

Rooms, bottom floor first (a room imports only from its own floor or below; tests/test_import_rule.py checks it):

- ``errors``, ``log``: the error types every package raises, and one stderr line;
- ``runtime/``: device choice, torch.distributed and SyncBN, numeric backends, CPU threads, optional imports;
  ``models/``: the registry and one module per family (ResNet, network-slimming VGG/DenseNet/PreResNet,
  PyramidNet); ``data/``: datasets (with the embedded CIFAR-10 subset), augmentation, the seeded batches;
- ``config``: every default of a run (TrainConfig); ``objectives``: Scratch, CutMix, label KD (eq. 1), feature KD
  (eq. 2);
- ``store/``: files (atomic writes, hashes, provenance), the checkpoint schema, run directories, locks, which runs
  may be pooled into one table;
- ``pruning/``: L1-norm filters, network slimming, weight magnitude, checkpoint -> pruned checkpoint;
  ``external/``: models and data from outside orthokd, for the analyses;
- ``engine/``: the epoch loop, a whole run (fit), packed seeds, CUDA graphs, --init, the pruning x KD schedules;
  ``cli/``: the commands' error contract and flag types;
- the commands: ``python -m training.train``, ``training.prune``, ``training.prune_schedule``.

``training.checkpoint`` keeps the documented ``training.checkpoint.load_model``.
"""
