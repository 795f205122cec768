"""Running ganlab workers as a SLURM job array on a shared queue.

``script``: the batch script ``ganlab slurm submit`` writes (and ``--dry-run`` prints);
``paths``: the checks that the database and the runs folder are shared;
``commands``: sbatch, squeue, scancel and scontrol, run as subprocesses;
``env``: what a worker learns from the environment SLURM gives its job.
"""
