"""Bad input, faults and untrusted files (issue 5): the README table, SIGKILL trials, full disks, fuzzing."""
