"""Bad input, faults and untrusted files (issue 5): the bad-input tables (docs/errors.md), SIGKILLs, full disks."""
