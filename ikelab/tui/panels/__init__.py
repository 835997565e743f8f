"""The panels of the lesson screen; each one draws itself from the trace and nothing else."""
