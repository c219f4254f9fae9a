"""Start a run, in either mode: the in-process runner, the multi-process
supervisor, and the run summary both of them write."""
