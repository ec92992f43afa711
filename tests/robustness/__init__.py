"""Bad input, faults and untrusted files (issue 5): the bad-input table (docs/errors.md), SIGKILL trials, full disks, fuzzing."""
