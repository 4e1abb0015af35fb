"""Training (paper §1, §3, Appendix A): the loop, EMA, training states for exact resume, DDP set-up.

Public entry points (imported lazily by their modules, so ``import vdm.train`` stays cheap):

* ``vdm.train.loop.train(cfg, workdir, export_path) -> {"step", "samples_seen"}`` and ``Trainer``;
* ``vdm.train.ema.EMA``; ``vdm.train.checkpoint`` (``save_state``, ``load_latest``, ``list_states``);
* ``vdm.train.distributed.setup()`` (gloo on CPU, NCCL on GPU);
* ``vdm.artifacts.export.save_export`` / ``load_export`` (the training output that sampling reads).

The command line is ``vdm train`` (``vdm/train/cli.py`` over ``vdm/train/launch.py``).
"""
