"""Training runs, one room per job:

- ``fit``: a whole single run (``python -m training.train``), resume and epochs;
- ``packed``: one run per seed trained packed in one process (``--seeds``);
- ``packed_step``: the packed runs' vmapped epoch;
- ``loop``: one epoch of a single run, its batches and statistics, and the test evaluation;
- ``graphs``: the training step replayed as one CUDA graph (``--cuda-graphs``);
- ``run``: one run's model, objective, optimizer and checkpoint state, its teacher and config.json record;
- ``prepare``: what every run needs before its first step (splits, teacher, ``--init``, run directories);
- ``publish``: what each epoch leaves behind (metrics.jsonl, checkpoints, tensorboard);
- ``console``: what a run shows on stderr (banner, progress bar, epoch lines);
- ``init``: runs started from a checkpoint (``--init``, ``--regressor-init``);
- ``schedules``: the pruning x KD schedules of the pruning study.
"""
