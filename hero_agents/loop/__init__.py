"""The closed training loop and the commands around it.

- `config`: the YAML settings of a run (`TrainConfig`) and of a comparison (`CompareConfig`);
- `warmup`: the supervised warm start on train-split demonstrations (``hero warmup``);
- `runner`: `TrainingRun`, iterations of rollout, reflection, distillation, sync and
  evaluation in a resumable folder (`run_dir`), with per-iteration figures
  (`iteration_metrics`, `tracking`);
- `compare`, `report`: ``hero compare``'s runs and table, the tables and plots of a run and of
  a comparison; `figures`: an evaluation's figures read back with their 95% intervals, pooled
  over seeds.
"""
