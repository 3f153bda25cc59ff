"""MariaDB: the unit of work and its repositories, group commit, reads, claims and sweeps."""
