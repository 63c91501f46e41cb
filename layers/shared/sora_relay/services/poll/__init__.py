"""Poll: the scheduled sweep over the jobs whose next status check is due."""
